//! Understanding every customer message: a sentence encoder, an intent
//! classifier with out-of-scope detection, and sentiment with escalation
//! signals.
//!
//! The models train at start-up from the shop's catalogue and examples, or
//! load from a cache keyed on what they were trained on, so a shop edits
//! `knowledge/intents/` and restarts: no rebuild.

mod adapting;
mod bert;
pub mod catalogue;
pub mod classifier;
pub mod demand;
pub mod encoder;
mod int8;
pub mod intent;
pub mod kind;
mod neighbours;
pub mod ngrams;
pub mod sentiment;
pub mod sentiment_corpus;
mod sentiment_layer;
pub mod signals;
pub mod vectors;
pub mod words;
pub mod worker;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::Config;
pub use adapting::sentiment_trained_on;
use catalogue::{Catalogue, CatalogueError};
use classifier::{TrainError, TrainOptions};
use encoder::{Encoder, EncoderError, Reading};
use intent::{Intent, IntentModel};
use sentiment::{ExamplesError, Sentiment, SentimentLabel, SentimentModel};
use sentiment_corpus::CorpusError;
use worker::{EncoderWorker, SentimentSlot};

/// Bumped when training or features change, so old caches are not reused.
const MODEL_VERSION: &str = "7";

#[derive(Debug, thiserror::Error)]
pub enum UnderstandingError {
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Examples(#[from] ExamplesError),
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error(transparent)]
    Products(#[from] demand::DemandCatalogueError),
    #[error("training the understanding models failed: {0}")]
    Train(#[from] TrainError),
}

/// What one message means to the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understood {
    pub intent: Intent,
    pub sentiment: Sentiment,
    /// The message's kind and the products and aspects it raises.
    #[serde(default)]
    pub demand: demand::Demand,
    /// The message's sentence embedding, reused by retrieval; not stored.
    #[serde(skip)]
    pub embedding: Vec<f32>,
}

impl Understood {
    /// Whether the message asks for a person: its intent's action is a
    /// hand-off in `catalogue`, or it says so in so many words.
    pub fn asks_for_human(&self, catalogue: &catalogue::Catalogue) -> bool {
        catalogue
            .get(&self.intent.name)
            .is_some_and(|s| s.action == catalogue::IntentAction::Handoff)
            || self
                .sentiment
                .signals
                .contains(&signals::Signal::HumanRequest)
    }
}

#[cfg(test)]
impl Understood {
    /// A message understood as `intent` (confidence 0.9) with this sentiment.
    pub fn example(
        intent: &str,
        label: sentiment::SentimentLabel,
        score: f32,
        signals: Vec<signals::Signal>,
    ) -> Understood {
        Understood {
            intent: Intent {
                name: intent.into(),
                confidence: 0.9,
                alternatives: Vec::new(),
            },
            sentiment: Sentiment {
                label,
                score,
                signals,
            },
            demand: demand::Demand::default(),
            embedding: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TrainedModels {
    intent: IntentModel,
}

pub fn intent_training_options() -> TrainOptions {
    TrainOptions {
        epochs: 40,
        hidden: Some(512),
        dropout: 0.2,
        learning_rate: 3e-3,
        ..Default::default()
    }
}

pub struct Understanding {
    worker: EncoderWorker,
    catalogue: Catalogue,
    models: TrainedModels,
    sentiment: SentimentSlot,
    /// Adapting the sentiment branch, when no cache had it.
    adapting: Mutex<Option<std::thread::JoinHandle<()>>>,
    products: demand::DemandCatalogue,
}

impl std::fmt::Debug for Understanding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Understanding")
            .field("intents", &self.catalogue.intents.len())
            .finish_non_exhaustive()
    }
}

impl Understanding {
    /// Loads the encoder, the catalogue and the sentiment examples, and
    /// trains the models unless a cache for exactly these inputs exists.
    /// The adapted sentiment branch takes minutes to train: without a cache
    /// it trains on a thread of its own while the plain model judges
    /// sentiment (`finish_adapting` waits for it). Blocking: call it from
    /// `spawn_blocking`.
    pub fn load(config: &Config) -> Result<Self, UnderstandingError> {
        let encoder = Arc::new(Encoder::load(&config.encoder)?);
        let catalogue = Catalogue::load_dir(&config.intents_dir())?;
        let products = demand::DemandCatalogue::load_dir(&config.product_catalogue_dir())?;
        let examples = sentiment::load_examples(&config.sentiment_dir())?;
        let corpus = sentiment_corpus::load(&config.sentiment_corpus_dir())?;
        let (sentiment, adapting) = adapting::load_or_adapt(config, &encoder, examples, corpus)?;
        let key = cache_key(&[MODEL_VERSION, encoder.fingerprint(), &catalogue.digest]);
        let cache = config
            .model_cache_dir()
            .join(format!("understanding-{key}.json"));
        let models = match read_cache(&cache) {
            Some(mut models) => {
                let (texts, labels) = catalogue.training_set();
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                models.intent.attach_ngrams(&texts, &labels);
                tracing::info!(cache = %cache.display(), "understanding models loaded from cache");
                models
            }
            None => {
                let started = Instant::now();
                let models = train(&encoder, &catalogue)?;
                tracing::info!(
                    intents = catalogue.intents.len(),
                    seconds = log_seconds(started.elapsed()),
                    "understanding models trained"
                );
                write_cache(&cache, &models);
                models
            }
        };
        Ok(Self {
            worker: EncoderWorker::spawn(encoder, sentiment.clone()),
            catalogue,
            models,
            sentiment,
            adapting: Mutex::new(adapting),
            products,
        })
    }

    /// Waits until the sentiment branch is adapted (at once when it came
    /// from the cache). For tools and tests that measure sentiment.
    pub fn finish_adapting(&self) {
        let handle = self
            .adapting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("adapting the sentiment branch panicked");
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn encoder(&self) -> &Encoder {
        self.worker.encoder()
    }

    pub fn intent_model(&self) -> &IntentModel {
        &self.models.intent
    }

    /// The sentiment model in use now.
    pub fn sentiment_model(&self) -> Arc<SentimentModel> {
        worker::current(&self.sentiment)
    }

    /// The shop's products and aspects, for reports.
    pub fn product_catalogue(&self) -> &demand::DemandCatalogue {
        &self.products
    }

    pub async fn understand(&self, text: &str) -> Result<Understood, EncoderError> {
        let (reading, sentiment) = self.worker.read(text).await?;
        let mut understood = self.classify(text, reading, &sentiment);
        let found = self.products.find(text);
        let mut by_clause = Vec::new();
        if demand::needs_clause_sentiment(&found) {
            let clauses = demand::clauses(text);
            for clause in &clauses {
                let (reading, sentiment) = self.worker.read(clause).await?;
                let s = sentiment.analyse(clause, &reading);
                by_clause.push((s.label, s.score));
            }
        }
        self.add_demand(&mut understood, text, found, &by_clause);
        Ok(understood)
    }

    /// A sentence embedding (its meaning) from the encoder's thread.
    pub async fn embed(&self, text: &str) -> Result<encoder::Embedding, EncoderError> {
        Ok(self.worker.read(text).await?.0.meaning)
    }

    /// Blocking, for tools: reads on the calling thread.
    pub fn understand_now(&self, text: &str) -> Result<Understood, EncoderError> {
        let sentiment = self.sentiment_model();
        let reading = self.encoder().read(&[text], sentiment.branch())?.remove(0);
        let mut understood = self.classify(text, reading, &sentiment);
        let found = self.products.find(text);
        let mut by_clause = Vec::new();
        if demand::needs_clause_sentiment(&found) {
            let clauses = demand::clauses(text);
            let texts: Vec<&str> = clauses.iter().map(String::as_str).collect();
            let readings = self.encoder().read(&texts, sentiment.branch())?;
            for (clause, reading) in clauses.iter().zip(readings) {
                let s = sentiment.analyse(clause, &reading);
                by_clause.push((s.label, s.score));
            }
        }
        self.add_demand(&mut understood, text, found, &by_clause);
        Ok(understood)
    }

    /// The message's kind and its mentions, each with the sentiment of its
    /// clause when the clauses were judged apart.
    fn add_demand(
        &self,
        understood: &mut Understood,
        text: &str,
        found: Vec<(demand::MentionKind, String, usize)>,
        by_clause: &[(SentimentLabel, f32)],
    ) {
        let (kind, kind_confidence) = kind::kind_of(text, &understood.sentiment);
        let message = (understood.sentiment.label, understood.sentiment.score);
        understood.demand = demand::Demand {
            kind: Some(kind),
            kind_confidence,
            mentions: demand::with_sentiment(found, message, |c| by_clause.get(c).copied()),
        };
    }

    fn classify(&self, text: &str, reading: Reading, sentiment: &SentimentModel) -> Understood {
        Understood {
            intent: self.models.intent.classify(text, &reading.meaning),
            sentiment: sentiment.analyse(text, &reading),
            demand: demand::Demand::default(),
            embedding: reading.meaning,
        }
    }
}

/// A duration for a log field, to a tenth of a second: the full float's
/// run of digits reads like a card number to the log's redaction.
fn log_seconds(elapsed: std::time::Duration) -> f64 {
    (elapsed.as_secs_f64() * 10.0).round() / 10.0
}

pub(crate) fn cache_key(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..12])
}

fn train(encoder: &Encoder, catalogue: &Catalogue) -> Result<TrainedModels, UnderstandingError> {
    let (texts, labels) = catalogue.training_set();
    let embeddings = encoder.embed_all(&texts)?;
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let intent = IntentModel::train(&texts, &embeddings, &labels, &intent_training_options())?;
    Ok(TrainedModels { intent })
}

fn read_cache(path: &Path) -> Option<TrainedModels> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(models) => Some(models),
        Err(e) => {
            tracing::warn!(cache = %path.display(), error = %e, "ignoring an unreadable model cache");
            None
        }
    }
}

/// A cache that cannot be written only costs the next start its training
/// time, so it is logged, not fatal.
fn write_cache(path: &Path, models: &TrainedModels) {
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.part");
        std::fs::write(&tmp, serde_json::to_vec(models)?)?;
        std::fs::rename(tmp, path)
    })();
    if let Err(e) = result {
        tracing::warn!(cache = %path.display(), error = %e, "cannot write the model cache");
    }
}
