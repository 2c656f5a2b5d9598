//! Demand extraction: which of the shop's products and which aspects of
//! them (price, quality, delivery speed, …) a message raises, each with its
//! own sentiment ("the towels barely absorb anything" → bath towel, quality,
//! negative).
//!
//! The products and aspects are data a shop edits (`knowledge/catalogue/`);
//! matching is by words, singular or plural, longest phrase first. The
//! sentiment of a mention is that of its clause when the message has
//! several clauses that raise different things ("lovely throw, but way
//! overpriced"), else the message's.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::sentiment::SentimentLabel;

#[derive(Debug, thiserror::Error)]
pub enum DemandCatalogueError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid {path}: {source}")]
    Parse {
        path: String,
        source: serde_yaml_ng::Error,
    },
    #[error("invalid {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductsFile {
    categories: Vec<CategorySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorySpec {
    key: String,
    name: String,
    #[serde(default)]
    words: Vec<String>,
    products: Vec<ProductSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductSpec {
    key: String,
    name: String,
    words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AspectsFile {
    aspects: Vec<AspectSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AspectSpec {
    key: String,
    name: String,
    words: Vec<String>,
    /// Words that raise the aspect only beside a product ("lovely" says
    /// something about quality in "lovely mugs", not in "lovely, thanks").
    #[serde(default)]
    with_product: Vec<String>,
}

/// What one message raises: its kind, and the products and aspects it
/// mentions. Stored with the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    pub kind: Option<super::kind::MessageKind>,
    /// 0–1; a heuristic's confidence.
    #[serde(default)]
    pub kind_confidence: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Mention>,
}

/// What a mention is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MentionKind {
    Product,
    /// A category named without one of its products ("your cookware").
    Category,
    Aspect,
}

/// One product, category or aspect a message raises, with its sentiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    pub kind: MentionKind,
    pub key: String,
    pub sentiment: SentimentLabel,
    /// −1 … 1, as the message's sentiment score.
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Product(usize),
    Category(usize),
    Aspect { index: usize, needs_product: bool },
}

#[derive(Debug)]
struct Phrase {
    words: Vec<String>,
    target: Target,
}

/// A name to show for a key.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub key: String,
    pub name: String,
}

/// The shop's products, categories and aspects, ready to match.
#[derive(Debug, Default)]
pub struct DemandCatalogue {
    products: Vec<(Named, usize)>,
    categories: Vec<Named>,
    aspects: Vec<Named>,
    /// Longest first, so the most specific phrase wins.
    phrases: Vec<Phrase>,
    /// The material aspect's index: a material word right before a product
    /// is part of its name ("oak chair"), not a remark about material.
    material: Option<usize>,
}

/// A phrase found in a message: its target and the clause it sits in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    target: Target,
    pub clause: usize,
}

impl DemandCatalogue {
    /// Reads `products.yaml` and `aspects.yaml` from `dir`; a missing
    /// folder is an empty catalogue (nothing is extracted).
    pub fn load_dir(dir: &Path) -> Result<DemandCatalogue, DemandCatalogueError> {
        if !dir.is_dir() {
            return Ok(DemandCatalogue::default());
        }
        let products: ProductsFile = read_yaml(&dir.join("products.yaml"))?;
        let aspects: AspectsFile = read_yaml(&dir.join("aspects.yaml"))?;
        DemandCatalogue::build(products, aspects).map_err(|message| DemandCatalogueError::Invalid {
            path: dir.display().to_string(),
            message,
        })
    }

    fn build(products: ProductsFile, aspects: AspectsFile) -> Result<DemandCatalogue, String> {
        let mut catalogue = DemandCatalogue::default();
        let mut keys = HashSet::new();
        for (c, category) in products.categories.into_iter().enumerate() {
            if !keys.insert(category.key.clone()) {
                return Err(format!("key `{}` is used twice", category.key));
            }
            for words in &category.words {
                catalogue.add_phrase(words, Target::Category(c));
            }
            catalogue.categories.push(Named {
                key: category.key,
                name: category.name,
            });
            for product in category.products {
                if !keys.insert(product.key.clone()) {
                    return Err(format!("key `{}` is used twice", product.key));
                }
                let p = catalogue.products.len();
                for words in &product.words {
                    catalogue.add_phrase(words, Target::Product(p));
                }
                catalogue.products.push((
                    Named {
                        key: product.key,
                        name: product.name,
                    },
                    c,
                ));
            }
        }
        for (a, aspect) in aspects.aspects.into_iter().enumerate() {
            for words in &aspect.words {
                catalogue.add_phrase(
                    words,
                    Target::Aspect {
                        index: a,
                        needs_product: false,
                    },
                );
            }
            for words in &aspect.with_product {
                catalogue.add_phrase(
                    words,
                    Target::Aspect {
                        index: a,
                        needs_product: true,
                    },
                );
            }
            if aspect.key == "material" {
                catalogue.material = Some(a);
            }
            catalogue.aspects.push(Named {
                key: aspect.key,
                name: aspect.name,
            });
        }
        // Longest first; among equals, products before categories before
        // aspects (the order they were added in).
        catalogue
            .phrases
            .sort_by_key(|p| std::cmp::Reverse(p.words.len()));
        Ok(catalogue)
    }

    fn add_phrase(&mut self, words: &str, target: Target) {
        let words = normalise(words);
        if !words.is_empty() {
            self.phrases.push(Phrase { words, target });
        }
    }

    /// `text` in normalised words with each product and category it names
    /// replaced by "item"; `None` when it names none.
    pub fn without_products(&self, text: &str) -> Option<String> {
        let words = normalise(text);
        let mut out: Vec<&str> = Vec::with_capacity(words.len());
        let mut named = false;
        let mut i = 0;
        while i < words.len() {
            let product = self.phrases.iter().find(|p| {
                matches!(p.target, Target::Product(_) | Target::Category(_))
                    && words[i..].starts_with(&p.words)
            });
            match product {
                Some(p) => {
                    // "cast iron skillet" is one item, not two.
                    if out.last() != Some(&"item") {
                        out.push("item");
                    }
                    named = true;
                    i += p.words.len();
                }
                None => {
                    out.push(&words[i]);
                    i += 1;
                }
            }
        }
        named.then(|| out.join(" "))
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// The products' keys and names, for reports.
    pub fn product_names(&self) -> impl Iterator<Item = &Named> {
        self.products.iter().map(|(n, _)| n)
    }

    pub fn category_names(&self) -> &[Named] {
        &self.categories
    }

    pub fn aspect_names(&self) -> &[Named] {
        &self.aspects
    }

    /// The products, categories and aspects `text` raises, each once, with
    /// the clause (of `clauses(text)`) it was found in.
    pub fn find(&self, text: &str) -> Vec<(MentionKind, String, usize)> {
        let clauses = clauses(text);
        let mut found: Vec<(usize, usize, Found)> = Vec::new();
        let mut offset = 0;
        for (c, clause) in clauses.iter().enumerate() {
            let words = normalise(clause);
            // Products and categories take their words from each other, and
            // aspects from aspects and products: "linen" may be both the
            // category and the material, "towel" is not an aspect.
            let mut items = vec![false; words.len()];
            let mut aspects = vec![false; words.len()];
            for phrase in &self.phrases {
                let n = phrase.words.len();
                if n > words.len() {
                    continue;
                }
                for start in 0..=words.len() - n {
                    let span = start..start + n;
                    let is_aspect = matches!(phrase.target, Target::Aspect { .. });
                    let blocked = if is_aspect {
                        aspects[span.clone()].iter().any(|t| *t)
                    } else {
                        items[span.clone()].iter().any(|t| *t)
                    };
                    if blocked || words[span.clone()] != phrase.words[..] {
                        continue;
                    }
                    let is_product = matches!(phrase.target, Target::Product(_));
                    for i in span {
                        if is_aspect {
                            aspects[i] = true;
                        } else {
                            items[i] = true;
                            if is_product {
                                aspects[i] = true;
                            }
                        }
                    }
                    found.push((
                        offset + start,
                        offset + start + n,
                        Found {
                            target: phrase.target,
                            clause: c,
                        },
                    ));
                }
            }
            offset += words.len();
        }
        found.sort_by_key(|(start, _, _)| *start);
        let products_at: Vec<usize> = found
            .iter()
            .filter(|(_, _, f)| matches!(f.target, Target::Product(_)))
            .map(|(start, _, _)| *start)
            .collect();
        let any_product = found
            .iter()
            .any(|(_, _, f)| matches!(f.target, Target::Product(_) | Target::Category(_)));
        let named_categories: HashSet<usize> = found
            .iter()
            .filter_map(|(_, _, f)| match f.target {
                Target::Product(p) => Some(self.products[p].1),
                _ => None,
            })
            .collect();
        let mut out: Vec<(MentionKind, String, usize)> = Vec::new();
        let mut push = |kind: MentionKind, key: &str, clause: usize| {
            if !out
                .iter()
                .any(|(k, existing, _)| *k == kind && existing == key)
            {
                out.push((kind, key.to_string(), clause));
            }
        };
        for (_, end, f) in &found {
            // A word that names the product it stands before (or one word
            // before) is part of its name: "linen throw", "cast-iron
            // skillet", "oak dining chairs".
            let before_product = products_at.iter().any(|p| *p == *end || *p == end + 1);
            match f.target {
                Target::Product(p) => push(MentionKind::Product, &self.products[p].0.key, f.clause),
                Target::Category(c) => {
                    if !before_product && !named_categories.contains(&c) {
                        push(MentionKind::Category, &self.categories[c].key, f.clause);
                    }
                }
                Target::Aspect {
                    index,
                    needs_product,
                } => {
                    if needs_product && !any_product {
                        continue;
                    }
                    if Some(index) == self.material && before_product {
                        continue;
                    }
                    push(MentionKind::Aspect, &self.aspects[index].key, f.clause);
                }
            }
        }
        out
    }
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DemandCatalogueError> {
    let text = std::fs::read_to_string(path).map_err(|source| DemandCatalogueError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_yaml_ng::from_str(&text).map_err(|source| DemandCatalogueError::Parse {
        path: path.display().to_string(),
        source,
    })
}

/// The message cut into clauses: at sentence ends and semicolons, and
/// before a contrasting word.
pub fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sentence in text.split(['.', '!', '?', ';', '\n']) {
        let mut current: Vec<&str> = Vec::new();
        for word in sentence.split_whitespace() {
            let bare = word
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            if crate::language::words()
                .understanding
                .contrasts
                .contains(&bare)
                && !current.is_empty()
            {
                out.push(current.join(" "));
                current.clear();
            }
            current.push(word);
        }
        if !current.is_empty() {
            out.push(current.join(" "));
        }
    }
    out.retain(|c| c.chars().any(char::is_alphanumeric));
    out
}

/// Lower-case words, hyphens as spaces, each in its singular form, so
/// "Cast-iron skillets" and "cast iron skillet" match.
pub fn normalise(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['’', '‘'], "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '€'))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(super::words::singular)
        .collect()
}

/// Each mention with a sentiment: the clause's where `clause_sentiment`
/// gives one, else the message's.
pub fn with_sentiment(
    found: Vec<(MentionKind, String, usize)>,
    message: (SentimentLabel, f32),
    clause_sentiment: impl Fn(usize) -> Option<(SentimentLabel, f32)>,
) -> Vec<Mention> {
    found
        .into_iter()
        .map(|(kind, key, clause)| {
            let (sentiment, score) = clause_sentiment(clause).unwrap_or(message);
            Mention {
                kind,
                key,
                sentiment,
                score,
            }
        })
        .collect()
}

/// Whether the clauses of the found mentions differ, so each needs its
/// own sentiment.
pub fn needs_clause_sentiment(found: &[(MentionKind, String, usize)]) -> bool {
    found.iter().any(|(_, _, c)| *c != found[0].2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> DemandCatalogue {
        let products: ProductsFile = serde_yaml_ng::from_str(
            "categories:
  - key: linen
    name: Linen
    words: [linen, bedding]
    products:
      - key: throw
        name: Linen throw
        words: [throw, blanket]
      - key: tea-towel
        name: Tea towel
        words: [tea towel]
      - key: bath-towel
        name: Bath towel
        words: [towel, bath towel]
  - key: cast-iron
    name: Cast iron
    words: [cast iron]
    products:
      - key: skillet
        name: Skillet
        words: [skillet, pan]",
        )
        .unwrap();
        let aspects: AspectsFile = serde_yaml_ng::from_str(
            "aspects:
  - key: price
    name: Price
    words: [expensive, overpriced, price]
  - key: quality
    name: Quality
    words: [absorb, cracked]
    with_product: [lovely]
  - key: material
    name: Material
    words: [linen, cast iron]",
        )
        .unwrap();
        DemandCatalogue::build(products, aspects).unwrap()
    }

    fn keys(found: &[(MentionKind, String, usize)]) -> Vec<String> {
        found.iter().map(|(_, k, _)| k.clone()).collect()
    }

    #[test]
    fn the_longest_phrase_wins_and_plurals_match() {
        let c = catalogue();
        let found = c.find("The tea towels barely absorb anything");
        assert_eq!(keys(&found), ["tea-towel", "quality"]);
        assert_eq!(keys(&c.find("two bath towels")), ["bath-towel"]);
    }

    #[test]
    fn a_word_before_a_product_is_part_of_its_name() {
        let c = catalogue();
        assert_eq!(
            keys(&c.find("my Cast-iron skillet arrived cracked")),
            ["skillet", "quality"]
        );
        assert_eq!(
            keys(&c.find("is the throw pure linen?")),
            ["throw", "material"]
        );
        assert_eq!(
            keys(&c.find("your bedding is expensive")),
            ["linen", "price"]
        );
    }

    #[test]
    fn products_give_way_to_a_plain_item() {
        let c = catalogue();
        assert_eq!(
            c.without_products("Can I send back the Cast-iron skillets?")
                .as_deref(),
            Some("can i send back the item")
        );
        assert_eq!(c.without_products("how do returns work"), None);
    }

    #[test]
    fn praise_words_need_a_product() {
        let c = catalogue();
        assert!(c.find("lovely, thanks").is_empty());
        assert_eq!(keys(&c.find("lovely blanket")), ["quality", "throw"]);
    }

    #[test]
    fn each_mention_keeps_its_clause() {
        let c = catalogue();
        let found = c.find("the throw is lovely but way overpriced");
        assert_eq!(found.len(), 3);
        assert!(needs_clause_sentiment(&found));
        let mentions = with_sentiment(found, (SentimentLabel::Neutral, 0.0), |clause| {
            Some(if clause == 0 {
                (SentimentLabel::Positive, 0.8)
            } else {
                (SentimentLabel::Negative, -0.7)
            })
        });
        let price = mentions.iter().find(|m| m.key == "price").unwrap();
        assert_eq!(price.sentiment, SentimentLabel::Negative);
        let throw = mentions.iter().find(|m| m.key == "throw").unwrap();
        assert_eq!(throw.sentiment, SentimentLabel::Positive);
    }
}
