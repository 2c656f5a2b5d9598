//! `frontdesk eval intent|sentiment`: accuracy and latency on labelled CSV
//! files (`text,label`), against the shipped models or models trained on a
//! given file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::understanding::catalogue::OUT_OF_SCOPE;
use crate::understanding::encoder::{Encoder, Reading};
use crate::understanding::intent::{IntentModel, normalise_label};
use crate::understanding::sentiment::{SentimentExamples, SentimentLabel, SentimentModel};
use crate::understanding::{
    Understanding, UnderstandingError, intent_training_options, sentiment_trained_on,
};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}, line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: the header must be `{expected}`, found `{found}`")]
    Header {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error(
        "{path}, line {line}: unknown sentiment label `{label}` (use negative, neutral or positive)"
    )]
    TrainLabel {
        path: PathBuf,
        line: u64,
        label: String,
    },
    #[error(transparent)]
    Understanding(#[from] UnderstandingError),
}

pub struct Row {
    pub line: u64,
    pub text: String,
    pub label: String,
}

pub fn read_csv(path: &Path) -> Result<Vec<Row>, EvalError> {
    read_pairs(path, ["text", "label"])
}

/// Reads a two-column CSV whose header must be `columns`; the first column
/// lands in `text`, the second in `label`.
pub fn read_pairs(path: &Path, columns: [&str; 2]) -> Result<Vec<Row>, EvalError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| EvalError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let header = reader.headers().map_err(|e| malformed(path, &e))?.clone();
    if header.len() != 2 || header[0] != *columns[0] || header[1] != *columns[1] {
        return Err(EvalError::Header {
            path: path.to_path_buf(),
            expected: columns.join(","),
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| malformed(path, &e))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push(Row {
            line,
            text: record[0].to_string(),
            label: record[1].trim().to_string(),
        });
    }
    Ok(rows)
}

fn malformed(path: &Path, e: &csv::Error) -> EvalError {
    EvalError::Malformed {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("expected {expected_len} fields, found {len}")
            }
            _ => e.to_string(),
        },
    }
}

#[derive(Debug, Serialize)]
pub struct IntentReport {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub in_scope_accuracy: f64,
    pub oos_recall: f64,
    pub oos_precision: f64,
    pub n: usize,
    /// Test rows whose label the model does not know; each counts as an error.
    pub unknown_labels: usize,
    pub train_seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct SentimentReport {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub macro_recall: f64,
    pub negative_precision: f64,
    pub negative_recall: f64,
    pub negative_f1: f64,
    pub n: usize,
    pub unknown_labels: usize,
    pub train_seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Per-class precision, recall and F1 from (truth, prediction) pairs.
#[derive(Default)]
pub struct Confusion {
    pairs: Vec<(String, String)>,
}

impl Confusion {
    pub fn add(&mut self, truth: &str, predicted: &str) {
        self.pairs.push((truth.to_string(), predicted.to_string()));
    }

    pub fn accuracy(&self) -> f64 {
        ratio(
            self.pairs.iter().filter(|(t, p)| t == p).count(),
            self.pairs.len(),
        )
    }

    /// (precision, recall, f1) of one class.
    pub fn class(&self, label: &str) -> (f64, f64, f64) {
        let tp = self
            .pairs
            .iter()
            .filter(|(t, p)| t == label && p == label)
            .count();
        let predicted = self.pairs.iter().filter(|(_, p)| p == label).count();
        let actual = self.pairs.iter().filter(|(t, _)| t == label).count();
        let (precision, recall) = (ratio(tp, predicted), ratio(tp, actual));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (precision, recall, f1)
    }

    /// Macro averages of (recall, f1) over the classes in the truth.
    pub fn macro_recall_f1(&self) -> (f64, f64) {
        let classes: BTreeSet<&str> = self.pairs.iter().map(|(t, _)| t.as_str()).collect();
        let (mut recall, mut f1) = (0.0, 0.0);
        for class in &classes {
            let (_, r, f) = self.class(class);
            recall += r;
            f1 += f;
        }
        let n = classes.len().max(1) as f64;
        (recall / n, f1 / n)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// (p50, p99) in milliseconds.
pub fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// With `FRONTDESK_EVAL_ERRORS` set, prints a miss to stderr.
fn show_miss(row: &Row, truth: &str, predicted: &str) {
    if truth != predicted && std::env::var_os("FRONTDESK_EVAL_ERRORS").is_some() {
        eprintln!(
            "line {}: {:?} -> {predicted} (expected {truth})",
            row.line, row.text
        );
    }
}

/// A training file's texts and their embeddings.
fn embed_rows<'a>(
    encoder: &Encoder,
    rows: &'a [Row],
) -> Result<(Vec<&'a str>, Vec<Vec<f32>>), EvalError> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let embeddings = encoder
        .embed_all(&texts)
        .map_err(UnderstandingError::from)?;
    Ok((texts, embeddings))
}

/// Seconds since `started` when a model was trained, else 0.
fn seconds_if(trained: bool, started: Instant) -> f64 {
    if trained {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    }
}

/// Reads and classifies each test message alone, as a chat message would
/// be, timing each after one warm-up call.
fn timed<T>(
    encoder: &Encoder,
    sentiment: &SentimentModel,
    rows: &[Row],
    mut classify: impl FnMut(&str, &Reading) -> T,
) -> Result<(Vec<T>, Vec<f64>), EvalError> {
    if let Some(row) = rows.first() {
        encoder
            .read(&[&row.text], sentiment.branch())
            .map_err(UnderstandingError::from)?;
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    for row in rows {
        let started = Instant::now();
        let reading = encoder
            .read(&[&row.text], sentiment.branch())
            .map_err(UnderstandingError::from)?
            .remove(0);
        out.push(classify(&row.text, &reading));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((out, times))
}

/// Without `train`, `default` supplies the shipped models.
pub fn intent(
    understanding: &Understanding,
    test: &[Row],
    train: Option<&[Row]>,
) -> Result<IntentReport, EvalError> {
    let encoder = understanding.encoder();
    let started = Instant::now();
    let trained;
    let model: &IntentModel = match train {
        Some(rows) => {
            let (texts, embeddings) = embed_rows(encoder, rows)?;
            let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
            trained = IntentModel::train(&texts, &embeddings, &labels, &intent_training_options())
                .map_err(UnderstandingError::from)?;
            &trained
        }
        None => understanding.intent_model(),
    };
    let train_seconds = seconds_if(train.is_some(), started);
    let known: BTreeSet<&str> = model.labels().iter().map(String::as_str).collect();
    // Timed with the sentiment model too, as the sentiment eval times the
    // intent model: a message costs both before the conversation uses it.
    let sentiment = understanding.sentiment_model();
    let (predictions, times) = timed(encoder, &sentiment, test, |text, r| {
        let _ = sentiment.analyse(text, r);
        model.classify(text, &r.meaning).name
    })?;
    let mut confusion = Confusion::default();
    let (mut in_scope, mut in_scope_right, mut unknown) = (0, 0, 0);
    for (row, predicted) in test.iter().zip(&predictions) {
        let truth = normalise_label(&row.label);
        if truth != OUT_OF_SCOPE && !known.contains(truth) {
            unknown += 1;
        }
        if truth != OUT_OF_SCOPE {
            in_scope += 1;
            in_scope_right += usize::from(truth == predicted);
        }
        show_miss(row, truth, predicted);
        confusion.add(truth, predicted);
    }
    let (oos_precision, oos_recall, _) = confusion.class(OUT_OF_SCOPE);
    let (p50, p99) = percentiles(times);
    Ok(IntentReport {
        accuracy: round(confusion.accuracy()),
        macro_f1: round(confusion.macro_recall_f1().1),
        in_scope_accuracy: round(ratio(in_scope_right, in_scope)),
        oos_recall: round(oos_recall),
        oos_precision: round(oos_precision),
        n: test.len(),
        unknown_labels: unknown,
        train_seconds: round(train_seconds),
        p50_ms: round(p50),
        p99_ms: round(p99),
    })
}

/// With `train`, the sentiment branch is adapted from those rows (and the
/// rated corpus) in place of the shop's examples: about a minute.
pub fn sentiment(
    understanding: &Understanding,
    config: &Config,
    test: &[Row],
    train: Option<(&Path, &[Row])>,
) -> Result<SentimentReport, EvalError> {
    let started = Instant::now();
    let trained;
    let shipped;
    let (encoder, model): (&Encoder, &SentimentModel) = match train {
        Some((path, rows)) => {
            let labels = rows
                .iter()
                .map(|r| {
                    SentimentLabel::parse(&r.label).ok_or_else(|| EvalError::TrainLabel {
                        path: path.to_path_buf(),
                        line: r.line,
                        label: r.label.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let examples = SentimentExamples {
                texts: rows.iter().map(|r| r.text.clone()).collect(),
                digest: format!("eval:{}", path.display()),
                labels,
            };
            trained = sentiment_trained_on(config, &examples)?;
            (&trained.0, &trained.1)
        }
        None => {
            shipped = understanding.sentiment_model();
            (understanding.encoder(), &shipped)
        }
    };
    let train_seconds = seconds_if(train.is_some(), started);
    // Timed with the intent classifier too: the figure that matters is
    // what a message costs before the conversation can use it.
    let intent = understanding.intent_model();
    let (predictions, times) = timed(encoder, model, test, |text, r| {
        let _ = intent.classify(text, &r.meaning);
        model.analyse(text, r).label
    })?;
    let mut confusion = Confusion::default();
    let mut unknown = 0;
    for (row, predicted) in test.iter().zip(&predictions) {
        if SentimentLabel::parse(&row.label).is_none() {
            unknown += 1;
        }
        show_miss(row, &row.label, predicted.as_str());
        confusion.add(&row.label, predicted.as_str());
    }
    let (negative_precision, negative_recall, negative_f1) = confusion.class("negative");
    let (macro_recall, macro_f1) = confusion.macro_recall_f1();
    let (p50, p99) = percentiles(times);
    Ok(SentimentReport {
        accuracy: round(confusion.accuracy()),
        macro_f1: round(macro_f1),
        macro_recall: round(macro_recall),
        negative_precision: round(negative_precision),
        negative_recall: round(negative_recall),
        negative_f1: round(negative_f1),
        n: test.len(),
        unknown_labels: unknown,
        train_seconds: round(train_seconds),
        p50_ms: round(p50),
        p99_ms: round(p99),
    })
}

/// The human-readable form of a report: one `name  value` line per field.
pub fn to_text(report: &impl Serialize) -> String {
    let value = serde_json::to_value(report).unwrap_or_default();
    let fields: BTreeMap<String, serde_json::Value> = value
        .as_object()
        .map(|o| o.clone().into_iter().collect())
        .unwrap_or_default();
    fields
        .iter()
        .map(|(k, v)| format!("{k:<20} {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_a_hand_count() {
        let mut c = Confusion::default();
        for (t, p) in [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "a")] {
            c.add(t, p);
        }
        assert!((c.accuracy() - 0.6).abs() < 1e-9);
        let (p, r, f) = c.class("a");
        assert!((p - 0.5).abs() < 1e-9 && (r - 0.5).abs() < 1e-9 && (f - 0.5).abs() < 1e-9);
        let (p, r, _) = c.class("b");
        assert!((p - 2.0 / 3.0).abs() < 1e-9 && (r - 1.0).abs() < 1e-9);
        let (macro_recall, _) = c.macro_recall_f1();
        assert!((macro_recall - 0.5).abs() < 1e-9);
        assert_eq!(percentiles(vec![3.0, 1.0, 2.0]), (2.0, 3.0));
    }

    #[test]
    fn a_malformed_csv_is_reported_by_line() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(
            &path,
            "text,label\nhello,greeting\n\"unterminated,x\nfine,y\n",
        )
        .unwrap();
        let err = read_csv(&path).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, "text,label\nhello,greeting\none,two,three\n").unwrap();
        let err = read_csv(&path).map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("expected 2 fields"),
            "{err}"
        );
        std::fs::write(&path, "sentence,intent\nhello,greeting\n").unwrap();
        let err = read_csv(&path).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("text,label"), "{err}");
    }
}
