//! Everything a request handler needs, built once at start-up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::chat::SessionHub;
use crate::config::Config;
use crate::generation::TextGenerator;
use crate::knowledge::{self, Article, ArticleError, KbIndex, KbIndexError};
use crate::storage::{Store, StoreError};
use crate::understanding::{Understanding, UnderstandingError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Model(#[from] crate::generation::ModelError),
    #[error(transparent)]
    Fetch(#[from] crate::models::FetchError),
    #[error(transparent)]
    Understanding(#[from] UnderstandingError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the knowledge base: {0}")]
    Index(#[from] KbIndexError),
    #[error("cannot use {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub kb: KbIndex,
    pub articles: HashMap<String, Article>,
    pub skipped_articles: Vec<ArticleError>,
    pub generator: Arc<dyn TextGenerator>,
    pub understanding: Arc<Understanding>,
    pub hub: SessionHub,
}

/// The slow-to-load parts, passed in so tests can share them.
#[derive(Clone)]
pub struct Models {
    pub generator: Arc<dyn TextGenerator>,
    pub understanding: Arc<Understanding>,
}

impl AppState {
    /// Opens the store and the knowledge base. The models are passed in
    /// because loading them is the slow part and tests share them.
    pub fn build(config: Config, models: Models) -> Result<AppState, StartupError> {
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| StartupError::Io { path, source }
        };
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let store = Store::open(&config.database_path())?;
        let load = knowledge::load_dir(&config.knowledge).map_err(io(&config.knowledge))?;
        let (kb, rebuilt) = KbIndex::open_or_build(&config.index_dir(), &load)?;
        tracing::info!(
            articles = kb.article_count(),
            passages = kb.passage_count(),
            skipped = load.skipped.len(),
            rebuilt,
            "knowledge base ready"
        );
        Ok(AppState {
            articles: load
                .articles
                .iter()
                .map(|a| (a.id.clone(), a.clone()))
                .collect(),
            skipped_articles: load.skipped,
            config,
            store,
            kb,
            generator: models.generator,
            understanding: models.understanding,
            hub: SessionHub::default(),
        })
    }
}
