//! Places as customers name them (a city, a country's code, its people)
//! mapped to the words the articles use, as data: `places.yaml` in the
//! knowledge folder, or the shipped one. "Is delivery free to Rotterdam?"
//! is searched as "… Rotterdam (the Netherlands)?", so retrieval and the
//! sentence picker find the sentence about the Netherlands.

use std::path::Path;

use serde::Deserialize;

use super::data_file::{TextsError, read_optional};

const SHIPPED: &str = include_str!("../../knowledge/places.yaml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Place {
    /// How the articles name it.
    place: String,
    /// Matched in any case, as whole words.
    #[serde(default)]
    names: Vec<String>,
    /// Matched only as written: "IT" is Italy, "it" is not.
    #[serde(default)]
    codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Places {
    places: Vec<Place>,
}

impl Places {
    /// `places.yaml` from `knowledge_dir`, or the shipped list.
    pub fn load(knowledge_dir: &Path) -> Result<Places, TextsError> {
        let path = knowledge_dir.join("places.yaml");
        match read_optional(&path)? {
            Some(text) => {
                Places::parse(&text).map_err(|source| TextsError::Invalid { path, source })
            }
            None => Ok(Places::shipped()),
        }
    }

    pub fn shipped() -> Places {
        Places::parse(SHIPPED).expect("the shipped places.yaml is valid")
    }

    fn parse(text: &str) -> Result<Places, serde_yaml_ng::Error> {
        let mut places: Vec<Place> = serde_yaml_ng::from_str(text)?;
        for p in &mut places {
            for n in &mut p.names {
                *n = n.to_lowercase();
            }
        }
        Ok(Places { places })
    }

    /// The text with the article's name for each place it mentions added
    /// in brackets after the first mention, or `None` when it names none
    /// (or names each only as the articles do).
    pub fn annotate(&self, text: &str) -> Option<String> {
        let lower = text.to_lowercase();
        if lower.len() != text.len() {
            // Offsets found in the lowercase text would not fit the original.
            return None;
        }
        // (byte offset after the mention, what to insert)
        let mut inserts: Vec<(usize, &str)> = Vec::new();
        for p in &self.places {
            if lower.contains(&p.place.to_lowercase()) {
                continue;
            }
            let by_name = p.names.iter().find_map(|n| word_at(&lower, n));
            let by_code = || p.codes.iter().find_map(|c| word_at(text, c));
            if let Some(end) = by_name.or_else(by_code) {
                inserts.push((end, &p.place));
            }
        }
        if inserts.is_empty() {
            return None;
        }
        inserts.sort();
        let mut out = String::with_capacity(text.len() + 32);
        let mut from = 0;
        for (end, place) in inserts {
            out.push_str(&text[from..end]);
            out.push_str(" (");
            out.push_str(place);
            out.push(')');
            from = end;
        }
        out.push_str(&text[from..]);
        Some(out)
    }

    /// Whether `word` names a place (a city, a country, its people or code).
    pub fn is_place(&self, word: &str) -> bool {
        let lower = word.to_lowercase();
        self.places.iter().any(|p| {
            p.place.eq_ignore_ascii_case(word)
                || p.names
                    .iter()
                    .any(|n| n.split(' ').any(|part| part == lower))
                || p.codes.iter().any(|c| c == word)
        })
    }

    /// `text` without what [`Places::annotate`] added: the meaning of a
    /// question is judged on the customer's words, so naming a country does
    /// not make every passage about that country look relevant.
    pub fn strip(&self, text: &str) -> String {
        let mut out = text.to_string();
        for p in &self.places {
            out = out.replace(&format!(" ({})", p.place), "");
        }
        out
    }
}

/// The end of the first whole-word occurrence of `word` in `text`.
fn word_at(text: &str, word: &str) -> Option<usize> {
    let boundary = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
    text.match_indices(word).find_map(|(at, _)| {
        let end = at + word.len();
        (boundary(text[..at].chars().next_back()) && boundary(text[end..].chars().next()))
            .then_some(end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cities_codes_and_people_are_named_as_the_articles_do() {
        let p = Places::shipped();
        assert_eq!(
            p.annotate("is delivery free to Rotterdam?").as_deref(),
            Some("is delivery free to Rotterdam (the Netherlands)?")
        );
        assert_eq!(
            p.annotate("from what amount is shipping free in NL")
                .as_deref(),
            Some("from what amount is shipping free in NL (the Netherlands)")
        );
        assert_eq!(
            p.annotate("I live in Antwerp, is it free for Belgians too")
                .as_deref(),
            Some("I live in Antwerp (Belgium), is it free for Belgians too")
        );
        assert_eq!(
            p.annotate("do you deliver to canada").as_deref(),
            Some("do you deliver to canada (outside Europe)")
        );
        let text = "from Antwerp or Berlin?";
        assert_eq!(p.strip(&p.annotate(text).unwrap()), text);
    }

    #[test]
    fn a_place_is_known_by_any_of_its_names_or_its_code() {
        let p = Places::shipped();
        for place in ["Tenerife", "york", "Utrecht", "NL", "the Netherlands"] {
            assert!(p.is_place(place), "{place}");
        }
        // Codes only in capitals: "be" is an English word.
        for word in ["be", "hotel", "bitcoin"] {
            assert!(!p.is_place(word), "{word}");
        }
    }

    #[test]
    fn words_that_only_look_like_places_stay() {
        let p = Places::shipped();
        assert_eq!(p.annotate("is it free to return it?"), None);
        assert_eq!(p.annotate("can it be delivered on Saturday"), None);
        assert_eq!(p.annotate("Do you ship to Belgium?"), None);
        assert_eq!(p.annotate("my nicest plate broke"), None);
        assert_eq!(p.annotate("the parcel is at the depot"), None);
    }

    #[test]
    fn a_shops_own_list_replaces_the_shipped_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("places.yaml"),
            "- place: Belgium\n  names: [gent]\n",
        )
        .unwrap();
        let p = Places::load(dir.path()).unwrap();
        assert_eq!(p.annotate("to Gent").as_deref(), Some("to Gent (Belgium)"));
        assert_eq!(p.annotate("to Rotterdam"), None);
        std::fs::write(dir.path().join("places.yaml"), "- country: x\n").unwrap();
        assert!(Places::load(dir.path()).is_err());
    }
}
