//! Everything a request handler needs, built once at start-up.

use std::sync::Arc;

use crate::answer::Texts;
use crate::config::Config;
use crate::conversation::SessionHub;
use crate::conversation::events::ConversationEvents;
use crate::generation::TextGenerator;
use crate::knowledge::base::KnowledgeBase;
use crate::knowledge::{self, ArticleError, RetrievalError};
use crate::storage::{Store, StoreError};
use crate::understanding::{Understanding, UnderstandingError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Model(#[from] crate::generation::ModelError),
    #[error(transparent)]
    Fetch(#[from] crate::model_files::FetchError),
    #[error(transparent)]
    Understanding(#[from] UnderstandingError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot index the knowledge base: {0}")]
    Index(#[from] RetrievalError),
    #[error(transparent)]
    Texts(#[from] crate::answer::texts::TextsError),
    #[error(transparent)]
    Language(#[from] crate::language::LanguageError),
    #[error(transparent)]
    DemoOrders(#[from] crate::demo_shop::DemoOrdersError),
    #[error("cannot use {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Why the articles a change left in the store could not be made live;
/// the change itself is stored.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read the articles: {0}")]
    Store(#[from] StoreError),
    #[error("cannot index the knowledge base: {0}")]
    Index(#[from] RetrievalError),
    #[error("the indexing task failed: {0}")]
    Task(String),
}

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub kb: KnowledgeBase,
    /// Files of `knowledge/` that could not seed the store at this start.
    pub skipped_articles: Vec<ArticleError>,
    pub generator: Arc<dyn TextGenerator>,
    pub understanding: Arc<Understanding>,
    /// The bot's own words (`replies.yaml`).
    pub texts: Texts,
    pub hub: SessionHub,
    /// Every change to a conversation, for whoever listens (the console).
    pub events: ConversationEvents,
    /// Rate limits per client address.
    pub limits: crate::limits::Limits,
    pub metrics: crate::metrics::Metrics,
    /// The shop's order system, when one is connected (or the demo shop's).
    pub orders: Option<Arc<crate::orders::ShopConnector>>,
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
        crate::language::install(&config.knowledge)?;
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let store = Store::open(&config.database_path())?;
        // `knowledge/` seeds an empty store; after that the store is the
        // source of truth and the folder is not read again.
        let load = knowledge::load_dir(&config.knowledge).map_err(io(&config.knowledge))?;
        let seeded = store.seed_if_empty(&load.articles)?;
        let kb = KnowledgeBase::build(
            store.active_articles_blocking()?,
            models.understanding.encoder(),
            &config.embedding_cache_path(),
        )?;
        tracing::info!(seeded, skipped = load.skipped.len(), "knowledge base ready");
        let texts = Texts::load(&config.knowledge)?;
        Ok(AppState {
            limits: crate::limits::Limits::new(&config),
            metrics: crate::metrics::Metrics::new(),
            texts,
            kb,
            skipped_articles: if seeded > 0 { load.skipped } else { Vec::new() },
            config,
            store,
            generator: models.generator,
            understanding: models.understanding,
            hub: SessionHub::default(),
            events: ConversationEvents::default(),
            orders: None,
        })
    }
}

impl AppState {
    /// Makes the store's current articles live. Call after every change;
    /// it returns once chat answers from them.
    pub async fn reload_kb(self: &Arc<Self>) -> Result<(), ReloadError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            state.kb.rebuild(state.understanding.encoder(), || {
                state
                    .store
                    .active_articles_blocking()
                    .map_err(ReloadError::from)
            })
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))?
    }

    /// Understands a customer message as it was meant (`answer::as_meant`).
    pub async fn understand(
        &self,
        text: &str,
    ) -> Result<crate::understanding::Understood, crate::understanding::encoder::EncoderError> {
        let meant =
            crate::answer::as_meant(text, &self.kb.snapshot(), self.understanding.encoder());
        self.understanding.understand(&meant).await
    }
}
