//! `frontdesk eval demand`: precision and recall of the products and
//! aspects extracted from labelled messages, per aspect, and how often a
//! found aspect's sentiment is the labelled one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::understanding::Understanding;
use crate::understanding::demand::MentionKind;

#[derive(Debug, thiserror::Error)]
pub enum DemandSetError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

/// One labelled message: `{"text", "products": [key], "aspects": {key: label}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledMessage {
    pub text: String,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub aspects: BTreeMap<String, String>,
}

pub fn read_set(path: &Path) -> Result<Vec<LabelledMessage>, DemandSetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DemandSetError::Read {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DemandSetError::Line {
                path: path.display().to_string(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub precision: f64,
    pub recall: f64,
    pub labelled: usize,
    pub found: usize,
    pub right: usize,
}

impl Counts {
    fn add(&mut self, labelled: bool, found: bool) {
        self.labelled += usize::from(labelled);
        self.found += usize::from(found);
        self.right += usize::from(labelled && found);
    }

    fn finish(&mut self) {
        let ratio = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                (a as f64 / b as f64 * 1000.0).round() / 1000.0
            }
        };
        self.precision = ratio(self.right, self.found);
        self.recall = ratio(self.right, self.labelled);
    }
}

#[derive(Debug, Serialize)]
pub struct DemandReport {
    pub messages: usize,
    pub products: Counts,
    pub aspects: Counts,
    pub per_aspect: BTreeMap<String, Counts>,
    /// Of the aspects found and labelled, the share whose sentiment is the
    /// labelled one.
    pub aspect_sentiment_agreement: f64,
    pub p50_ms: f64,
}

pub fn evaluate(
    understanding: &Understanding,
    set: &[LabelledMessage],
    show_misses: bool,
) -> Result<DemandReport, crate::understanding::encoder::EncoderError> {
    let mut products = Counts::default();
    let mut aspects = Counts::default();
    let mut per_aspect: BTreeMap<String, Counts> = understanding
        .product_catalogue()
        .aspect_names()
        .iter()
        .map(|a| (a.key.clone(), Counts::default()))
        .collect();
    let (mut agree, mut judged) = (0usize, 0usize);
    let mut times = Vec::new();
    for message in set {
        let started = Instant::now();
        let understood = understanding.understand_now(&message.text)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let mentions = &understood.demand.mentions;
        let found_products: Vec<&str> = mentions
            .iter()
            .filter(|m| m.kind == MentionKind::Product)
            .map(|m| m.key.as_str())
            .collect();
        let found_aspects: HashMap<&str, &str> = mentions
            .iter()
            .filter(|m| m.kind == MentionKind::Aspect)
            .map(|m| (m.key.as_str(), m.sentiment.as_str()))
            .collect();
        for key in &message.products {
            products.add(true, found_products.contains(&key.as_str()));
        }
        for key in &found_products {
            if !message.products.iter().any(|p| p == key) {
                products.add(false, true);
            }
        }
        let keys: std::collections::BTreeSet<&str> = message
            .aspects
            .keys()
            .map(String::as_str)
            .chain(found_aspects.keys().copied())
            .collect();
        let mut misses = Vec::new();
        for key in keys {
            let labelled = message.aspects.get(key);
            let found = found_aspects.get(key);
            aspects.add(labelled.is_some(), found.is_some());
            per_aspect
                .entry(key.to_string())
                .or_default()
                .add(labelled.is_some(), found.is_some());
            if let (Some(l), Some(f)) = (labelled, found) {
                judged += 1;
                agree += usize::from(l == f);
            }
            if labelled.is_some() != found.is_some() {
                misses.push(format!(
                    "{}{key}",
                    if labelled.is_some() {
                        "missed "
                    } else {
                        "extra "
                    }
                ));
            }
        }
        if show_misses && !misses.is_empty() {
            eprintln!("{}: {:?}", misses.join(", "), message.text);
        }
    }
    products.finish();
    aspects.finish();
    per_aspect.values_mut().for_each(Counts::finish);
    times.sort_by(f64::total_cmp);
    Ok(DemandReport {
        messages: set.len(),
        products,
        aspects,
        per_aspect,
        aspect_sentiment_agreement: if judged == 0 {
            0.0
        } else {
            (agree as f64 / judged as f64 * 1000.0).round() / 1000.0
        },
        p50_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
    })
}

/// The report as lines a person reads.
pub fn to_text(report: &DemandReport) -> String {
    let mut out = format!(
        "messages {}\nproducts  precision {:.3}  recall {:.3}  ({} labelled, {} found)\naspects   precision {:.3}  recall {:.3}  ({} labelled, {} found)\n",
        report.messages,
        report.products.precision,
        report.products.recall,
        report.products.labelled,
        report.products.found,
        report.aspects.precision,
        report.aspects.recall,
        report.aspects.labelled,
        report.aspects.found,
    );
    for (key, c) in &report.per_aspect {
        out.push_str(&format!(
            "  {key:<16} precision {:.3}  recall {:.3}  ({} labelled, {} found)\n",
            c.precision, c.recall, c.labelled, c.found
        ));
    }
    out.push_str(&format!(
        "aspect sentiment agreement {:.3}\nper message p50 {:.1} ms\n",
        report.aspect_sentiment_agreement, report.p50_ms
    ));
    out
}
