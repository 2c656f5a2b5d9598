//! Typos in questions ("retrun", "pasword", "cancle my oder") corrected
//! against the words the knowledge base itself uses, before searching:
//! BM25 matches words exactly, and a misspelt key word also pulls the
//! sentence embedding off its topic.

use std::collections::HashMap;

/// Every word of the knowledge base with how often it occurs.
#[derive(Debug, Default, Clone)]
pub struct Vocabulary {
    counts: HashMap<String, u32>,
}

/// Words shorter than this are left alone: too many short words are one
/// edit apart.
const MIN_LEN: usize = 4;

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
}

impl Vocabulary {
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vocabulary {
        let mut counts: HashMap<String, u32> = HashMap::new();
        for text in texts {
            for w in words(text) {
                *counts.entry(w.to_lowercase()).or_default() += 1;
            }
        }
        Vocabulary { counts }
    }

    /// The text with each word that is neither the knowledge base's nor a
    /// word `is_word` knows (a dictionary: the encoder's whole-word tokens)
    /// replaced by the closest knowledge-base word (one edit, two for long
    /// words; same first letter; the most frequent wins a tie), or `None`
    /// when nothing changed. "cracked" stays "cracked", though the articles
    /// only say "checked".
    pub fn correct(&self, text: &str, is_word: impl Fn(&str) -> bool) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let mut rest = text;
        while let Some(start) = rest.find(char::is_alphabetic) {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(tail.len());
            let word = &tail[..end];
            let known = is_word(&word.to_lowercase());
            match self.suggest(word).filter(|_| !known) {
                Some(better) => {
                    out.push_str(&better);
                    changed = true;
                }
                None => out.push_str(word),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }

    fn suggest(&self, word: &str) -> Option<String> {
        let lower = word.to_lowercase();
        let len = lower.chars().count();
        if len < MIN_LEN || self.counts.contains_key(&lower) {
            return None;
        }
        let first = lower.chars().next()?;
        let most = if len >= 8 { 2 } else { 1 };
        self.counts
            .iter()
            .filter(|(w, _)| w.starts_with(first) && w.chars().count().abs_diff(len) <= most)
            .map(|(w, n)| (strsim::osa_distance(&lower, w), *n, w))
            .filter(|(d, _, _)| *d <= most)
            .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)))
            .map(|(_, _, w)| w.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny dictionary of real words the knowledge base does not use.
    fn is_word(w: &str) -> bool {
        ["cracked", "answers", "mind", "news", "candles", "copper"].contains(&w)
    }

    fn vocabulary() -> Vocabulary {
        Vocabulary::from_texts([
            "You can return an order within 30 days. Reset your password with Forgot password.",
            "Cancel an order. Delivery to Germany. The warranty is valid. Refund, refunds.",
        ])
    }

    #[test]
    fn typos_are_corrected_to_words_the_knowledge_base_uses() {
        let v = vocabulary();
        assert_eq!(
            v.correct_with("retrun policy??").as_deref(),
            Some("return policy??")
        );
        assert_eq!(
            v.correct_with("how do i cancle my oder").as_deref(),
            Some("how do i cancel my order")
        );
        assert_eq!(
            v.correct_with("i forgt my pasword").as_deref(),
            Some("i forgot my password")
        );
        assert_eq!(
            v.correct_with("delivry time to germny").as_deref(),
            Some("delivery time to germany")
        );
        assert_eq!(v.correct_with("waranty").as_deref(), Some("warranty"));
    }

    impl Vocabulary {
        fn correct_with(&self, text: &str) -> Option<String> {
            self.correct(text, is_word)
        }
    }

    #[test]
    fn known_short_and_unrelated_words_stay() {
        let v = vocabulary();
        assert_eq!(v.correct_with("my skillet cracked, mind you"), None);
        assert_eq!(v.correct_with("How do I return an order?"), None);
        assert_eq!(v.correct_with("copper pan"), None);
        assert_eq!(v.correct_with("Do you sell induction hobs?"), None);
    }
}
