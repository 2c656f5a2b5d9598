//! Sentiment: three classes and a score in [-1, 1], from a classifier over
//! the sentence embedding plus the VADER lexicon's scores (which measurably
//! help on short, slangy messages), and escalation signals.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vader_sentiment::SentimentIntensityAnalyzer;

use super::classifier::{Classifier, TrainError, TrainOptions};
use super::signals::{self, Signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub const ALL: [SentimentLabel; 3] = [Self::Negative, Self::Neutral, Self::Positive];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == label)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// -1 (very negative) to 1 (very positive).
    pub score: f32,
    pub signals: Vec<Signal>,
}

/// The lexicon scores appended to the embedding, scaled so they weigh about
/// as much as the embedding's largest components.
fn lexicon_features(vader: &SentimentIntensityAnalyzer, text: &str) -> ([f32; 4], f64) {
    let scores = vader.polarity_scores(&super::encoder::without_markup(text));
    let get = |k: &str| scores.get(k).copied().unwrap_or(0.0);
    let compound = get("compound");
    (
        [
            get("neg") as f32,
            get("neu") as f32,
            get("pos") as f32,
            compound as f32,
        ],
        compound,
    )
}

#[derive(Serialize, Deserialize)]
pub struct SentimentModel {
    classifier: Classifier,
    #[serde(skip, default = "SentimentIntensityAnalyzer::new")]
    vader: SentimentIntensityAnalyzer<'static>,
}

impl std::fmt::Debug for SentimentModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentimentModel").finish_non_exhaustive()
    }
}

pub fn training_options() -> TrainOptions {
    TrainOptions {
        epochs: 80,
        hidden: None,
        learning_rate: 0.01,
        weight_decay: 1e-3,
        ..Default::default()
    }
}

impl SentimentModel {
    /// `texts` are needed besides their embeddings for the lexicon features.
    pub fn train(
        texts: &[&str],
        embeddings: &[Vec<f32>],
        labels: &[SentimentLabel],
        options: &TrainOptions,
    ) -> Result<Self, TrainError> {
        let vader = SentimentIntensityAnalyzer::new();
        let features: Vec<Vec<f32>> = texts
            .iter()
            .zip(embeddings)
            .map(|(t, e)| features(&vader, t, e).0)
            .collect();
        let targets: Vec<usize> = labels
            .iter()
            .map(|l| SentimentLabel::ALL.iter().position(|a| a == l).unwrap_or(1))
            .collect();
        let names = SentimentLabel::ALL
            .iter()
            .map(|l| l.as_str().to_string())
            .collect();
        Ok(Self {
            classifier: Classifier::train(&features, &targets, names, options)?,
            vader,
        })
    }

    pub fn analyse(&self, text: &str, embedding: &[f32]) -> Sentiment {
        let (x, compound) = features(&self.vader, text, embedding);
        let probs = self.classifier.predict(&x);
        let best = super::classifier::top_k(&probs, 1)[0];
        Sentiment {
            label: SentimentLabel::ALL[best],
            score: (probs[2] - probs[0]).clamp(-1.0, 1.0),
            signals: signals::detect(text, compound),
        }
    }
}

fn features(vader: &SentimentIntensityAnalyzer, text: &str, embedding: &[f32]) -> (Vec<f32>, f64) {
    let (lexicon, compound) = lexicon_features(vader, text);
    let mut x = embedding.to_vec();
    x.extend(lexicon.iter().map(|v| v * 0.5));
    (x, compound)
}

/// The shop's sentiment examples: `knowledge/sentiment/*.yaml`, each
/// `{label, examples}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleFile {
    label: String,
    examples: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExamplesError {
    #[error("cannot read sentiment examples {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub struct SentimentExamples {
    pub texts: Vec<String>,
    pub labels: Vec<SentimentLabel>,
    pub digest: String,
}

pub fn load_examples(dir: &Path) -> Result<SentimentExamples, ExamplesError> {
    use sha2::{Digest, Sha256};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExamplesError::Io { path, source }
    };
    let paths = super::catalogue::yaml_files(dir).map_err(io(dir))?;
    let mut hasher = Sha256::new();
    let (mut texts, mut labels) = (Vec::new(), Vec::new());
    for path in &paths {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        hasher.update(text.as_bytes());
        let invalid = |message: String| ExamplesError::Invalid {
            path: path.clone(),
            message,
        };
        let file: ExampleFile =
            serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let label = SentimentLabel::parse(&file.label).ok_or_else(|| {
            invalid(format!(
                "label `{}` must be negative, neutral or positive",
                file.label
            ))
        })?;
        for example in file.examples {
            texts.push(example);
            labels.push(label);
        }
    }
    for label in SentimentLabel::ALL {
        if !labels.contains(&label) {
            return Err(ExamplesError::Invalid {
                path: dir.to_path_buf(),
                message: format!("no `{}` examples", label.as_str()),
            });
        }
    }
    Ok(SentimentExamples {
        texts,
        labels,
        digest: hex::encode(&hasher.finalize()[..12]),
    })
}
