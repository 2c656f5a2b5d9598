//! The knowledge base the chat answers from right now: an immutable
//! [`Corpus`] swapped whole after every change, so a search never sees half
//! an update and a change is live as soon as the write that made it returns.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use super::Article;
use super::dense::EmbeddingCache;
use super::retriever::{Corpus, RetrievalError};
use crate::understanding::encoder::Encoder;

pub struct KnowledgeBase {
    current: RwLock<Arc<Corpus>>,
    /// Also serialises rebuilds: the last one to run reads the latest articles.
    cache: Mutex<EmbeddingCache>,
}

impl KnowledgeBase {
    /// Builds the first snapshot. Blocking.
    pub fn build(
        articles: Vec<Article>,
        encoder: &Encoder,
        cache_file: &Path,
    ) -> Result<KnowledgeBase, RetrievalError> {
        let mut cache = EmbeddingCache::open(cache_file, encoder);
        let corpus = timed_build(articles, encoder, &mut cache)?;
        Ok(KnowledgeBase {
            current: RwLock::new(Arc::new(corpus)),
            cache: Mutex::new(cache),
        })
    }

    /// The snapshot to search; cheap, and unaffected by later changes.
    pub fn snapshot(&self) -> Arc<Corpus> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds from the articles `load` returns (read under the rebuild
    /// lock, so concurrent changes end with the latest) and swaps it in.
    /// Blocking: embeds new passages.
    pub fn rebuild<E>(
        &self,
        encoder: &Encoder,
        load: impl FnOnce() -> Result<Vec<Article>, E>,
    ) -> Result<(), E>
    where
        E: From<RetrievalError>,
    {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let corpus = timed_build(load()?, encoder, &mut cache)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(corpus);
        Ok(())
    }
}

fn timed_build(
    articles: Vec<Article>,
    encoder: &Encoder,
    cache: &mut EmbeddingCache,
) -> Result<Corpus, RetrievalError> {
    let started = Instant::now();
    let corpus = Corpus::build(articles, encoder, cache)?;
    tracing::info!(
        articles = corpus.article_count(),
        passages = corpus.passage_count(),
        ms = started.elapsed().as_millis() as u64,
        "knowledge base indexed"
    );
    Ok(corpus)
}
