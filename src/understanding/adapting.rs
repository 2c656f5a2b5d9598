//! The sentiment branch's life: loaded from its cache, or adapted (minutes)
//! on a thread of its own while a plain head judges sentiment, then cached
//! and swapped in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::encoder::Encoder;
use super::sentiment::{self, SentimentExamples, SentimentLabel, SentimentModel};
use super::sentiment_corpus::{self, Corpus};
use super::sentiment_layer::{AdaptOptions, Adapted, Example};
use super::worker::SentimentSlot;
use super::{UnderstandingError, cache_key};
use crate::config::Config;

/// Bumped when the sentiment branch's training or features change.
const SENTIMENT_VERSION: &str = "2";

/// The adapted model from the cache; else the plain one now and the adapted
/// one later, from the returned thread.
pub(super) fn load_or_adapt(
    config: &Config,
    encoder: &Arc<Encoder>,
    examples: SentimentExamples,
    corpus: Corpus,
) -> Result<(SentimentSlot, Option<std::thread::JoinHandle<()>>), UnderstandingError> {
    let cache = sentiment_cache(config, encoder, &examples, &corpus);
    let classes = SentimentLabel::ALL.len();
    match Adapted::load(&cache, encoder.layer_shape(), classes) {
        Ok(adapted) => {
            tracing::info!(cache = %cache.display(), "sentiment branch loaded from cache");
            let model = SentimentModel::adapted(&adapted, encoder.layer_shape());
            Ok((Arc::new(RwLock::new(Arc::new(model))), None))
        }
        Err(_) => {
            let texts: Vec<&str> = examples.texts.iter().map(String::as_str).collect();
            let plain =
                SentimentModel::plain(&texts, &encoder.embed_all(&texts)?, &examples.labels)?;
            let slot: SentimentSlot = Arc::new(RwLock::new(Arc::new(plain)));
            let thread =
                adapt_in_background(encoder.clone(), examples, corpus, cache, slot.clone());
            Ok((slot, Some(thread)))
        }
    }
}

/// Where the sentiment branch for these inputs is cached: a change to the
/// shop's examples, the corpus or the encoder adapts it again.
fn sentiment_cache(
    config: &Config,
    encoder: &Encoder,
    examples: &SentimentExamples,
    corpus: &Corpus,
) -> PathBuf {
    let key = cache_key(&[
        SENTIMENT_VERSION,
        encoder.fingerprint(),
        &examples.digest,
        &corpus.digest,
        &format!("{:?}", AdaptOptions::default()),
    ]);
    config
        .model_cache_dir()
        .join(format!("sentiment-{key}.safetensors"))
}

/// Adapts the branch on its own thread, caches it, and puts the adapted
/// model in `slot`. A failure is logged; the plain model stays.
fn adapt_in_background(
    encoder: Arc<Encoder>,
    examples: SentimentExamples,
    corpus: Corpus,
    cache: PathBuf,
    slot: SentimentSlot,
) -> std::thread::JoinHandle<()> {
    tracing::info!(
        own_examples = examples.texts.len(),
        corpus_sentences = corpus.texts.len(),
        "adapting the sentiment branch in the background (minutes on 2 cores); the plain model judges sentiment until then"
    );
    std::thread::spawn(move || {
        let started = Instant::now();
        match adapt_sentiment(&encoder, &examples, &corpus, &AdaptOptions::default()) {
            Ok(adapted) => {
                tracing::info!(
                    seconds = super::log_seconds(started.elapsed()),
                    "sentiment branch adapted"
                );
                write_cache(&adapted, &cache);
                let model = Arc::new(SentimentModel::adapted(&adapted, encoder.layer_shape()));
                *slot.write().unwrap_or_else(|e| e.into_inner()) = model;
            }
            Err(e) => {
                tracing::error!(error = %e, "adapting the sentiment branch failed; the plain model stays")
            }
        }
    })
}

/// A fresh encoder and a sentiment model adapted from `examples` instead of
/// the shop's (and from the corpus), for `eval sentiment --train`. Blocking:
/// about three minutes, unless cached.
pub fn sentiment_trained_on(
    config: &Config,
    examples: &SentimentExamples,
) -> Result<(Encoder, SentimentModel), UnderstandingError> {
    let encoder = Encoder::load(&config.encoder)?;
    let corpus = sentiment_corpus::load(&config.sentiment_corpus_dir())?;
    let cache = sentiment_cache(config, &encoder, examples, &corpus);
    let classes = SentimentLabel::ALL.len();
    let adapted = match Adapted::load(&cache, encoder.layer_shape(), classes) {
        Ok(adapted) => adapted,
        Err(_) => {
            let adapted = adapt_sentiment(&encoder, examples, &corpus, &AdaptOptions::default())?;
            write_cache(&adapted, &cache);
            adapted
        }
    };
    let model = SentimentModel::adapted(&adapted, encoder.layer_shape());
    Ok((encoder, model))
}

fn adapt_sentiment(
    encoder: &Encoder,
    examples: &SentimentExamples,
    corpus: &Corpus,
    options: &AdaptOptions,
) -> Result<Adapted, UnderstandingError> {
    let vader = vader_sentiment::SentimentIntensityAnalyzer::new();
    let own = examples
        .texts
        .iter()
        .zip(&examples.labels)
        .map(|(t, l)| (t, l, sentiment::OWN_EXAMPLE_WEIGHT));
    let rated = corpus
        .texts
        .iter()
        .zip(&corpus.labels)
        .map(|(t, l)| (t, l, 1.0));
    let (texts, targets): (Vec<&str>, Vec<_>) = own
        .chain(rated)
        .map(|(text, label, weight)| (text.as_str(), (label.index(), weight)))
        .unzip();
    let examples: Vec<Example> = encoder
        .token_ids(&texts)?
        .into_iter()
        .zip(texts.iter().zip(targets))
        .map(|(ids, (text, (label, weight)))| Example {
            ids,
            lexicon: sentiment::lexicon_features(&vader, text).0,
            label,
            weight,
        })
        .collect();
    Ok(encoder.adapt_top_layer(&examples, SentimentLabel::ALL.len(), options)?)
}

/// Written beside the cache and renamed into place, so another process
/// never reads half a file. A cache that cannot be written only costs the
/// next start its training.
fn write_cache(adapted: &Adapted, cache: &Path) {
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let part = cache.with_extension("part");
    let written = adapted
        .save(&part)
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&part, cache).map_err(|e| e.to_string()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&part);
        tracing::warn!(cache = %cache.display(), %error, "cannot write the sentiment cache");
    }
}
