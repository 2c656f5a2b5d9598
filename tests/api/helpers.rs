//! Test harness: the real server on a free port with a temporary data
//! directory, the real model (loaded once per test binary), and a websocket
//! client that speaks the real protocol.

use frontdesk::storage::agents::Role;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use frontdesk::answer::compose::AnswerStyle;
use frontdesk::config::{Config, DeviceKind};
use frontdesk::conversation::identity;
use frontdesk::generation::{Admission, MistralGenerator, ScriptedGenerator, TextGenerator};
use frontdesk::model_files::{self, DEFAULT_CHAT_MODEL, DEFAULT_MODEL_FILE};
use frontdesk::startup::{Application, load_understanding};
use frontdesk::state::{AppState, Models};
use frontdesk::understanding::Understanding;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;

pub const IDENTITY_SECRET: &str = "the-shop-site-secret";

pub const FRAME_TIMEOUT: Duration = Duration::from_secs(120);

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn model_path() -> PathBuf {
    repo_path("models").join(DEFAULT_MODEL_FILE)
}

struct Shared {
    generator: Arc<MistralGenerator>,
    understanding: Arc<Understanding>,
    // The runtime the model was loaded on stays alive with it.
    _runtime: tokio::runtime::Runtime,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        std::thread::spawn(|| {
            frontdesk::telemetry::init(frontdesk::config::LogFormat::Text);
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let (generator, understanding) = runtime.block_on(async {
                model_files::ensure(&DEFAULT_CHAT_MODEL, &model_path())
                    .await
                    .expect("fetch the default model");
                // The trained models are cached under target/, so only the
                // first run after a catalogue change trains them.
                let config = Config::for_dirs(
                    &repo_path("target/test-data"),
                    &repo_path("knowledge"),
                    &model_path(),
                )
                .unwrap();
                // Loaded as the server loads it: from the Q8_0 copy, with
                // the default budget of dense weights for prompts.
                let generator = MistralGenerator::load(
                    &model_path(),
                    DeviceKind::Cpu,
                    Some(&repo_path("target/test-data/models")),
                    Admission::new(1, 32),
                    1,
                    config.dense_prefill_mb,
                    config.prefix_cache_mb,
                )
                .await
                .expect("load the default model");
                let understanding = load_understanding(&config)
                    .await
                    .expect("load the understanding models");
                // Tests judge sentiment with the adapted branch: the first
                // run after a change to its inputs waits minutes here.
                let waiting = understanding.clone();
                tokio::task::spawn_blocking(move || waiting.finish_adapting())
                    .await
                    .expect("adapt the sentiment branch");
                (generator, understanding)
            });
            Shared {
                generator: Arc::new(generator),
                understanding,
                _runtime: runtime,
            }
        })
        .join()
        .expect("model loader thread")
    })
}

/// The real model, loaded once for the whole test binary.
pub fn generator() -> Arc<dyn TextGenerator> {
    shared().generator.clone()
}

/// The default understanding models, loaded once for the whole test binary.
pub fn understanding() -> Arc<Understanding> {
    shared().understanding.clone()
}

pub struct TestApp {
    pub port: u16,
    pub data_dir: TempDir,
    pub state: Arc<AppState>,
    handle: ServerHandle,
}

pub struct AppOptions {
    pub knowledge: PathBuf,
    pub generator: Option<Arc<dyn TextGenerator>>,
    /// Train the understanding models from `knowledge` instead of sharing
    /// the default ones.
    pub own_understanding: bool,
    /// Changes to the default test configuration.
    pub configure: fn(&mut Config),
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            knowledge: repo_path("knowledge"),
            generator: None,
            own_understanding: false,
            configure: |_| {},
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default(), TempDir::new().unwrap()).await
}

/// The server for a test whose many customers all come from one address
/// within seconds: rate limits far above the defaults.
pub async fn spawn_app_for_many_customers() -> TestApp {
    spawn_app_with(
        AppOptions {
            configure: |c| {
                c.sessions_per_minute = 600;
                c.messages_per_minute = 600;
            },
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await
}

/// The server with a scripted model that writes every answer
/// (`answer_style = "generated"`): fast, deterministic tests of the code
/// around the model.
pub async fn spawn_scripted(generator: ScriptedGenerator) -> TestApp {
    spawn_app_with(
        AppOptions {
            generator: Some(Arc::new(generator)),
            configure: |c| c.answer_style = AnswerStyle::Generated,
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await
}

pub async fn spawn_app_with(options: AppOptions, data_dir: TempDir) -> TestApp {
    let mut config = Config::for_dirs(data_dir.path(), &options.knowledge, &model_path()).unwrap();
    (options.configure)(&mut config);
    let generator = options.generator.unwrap_or_else(generator);
    let understanding = if options.own_understanding {
        // Once the shared models are loaded their sentiment branch is
        // cached: the same examples reuse it instead of adapting again.
        shared();
        let shared_models = repo_path("target/test-data/models");
        std::fs::create_dir_all(config.model_cache_dir()).unwrap();
        for entry in std::fs::read_dir(&shared_models).unwrap().flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("sentiment-") {
                std::fs::copy(entry.path(), config.model_cache_dir().join(name)).unwrap();
            }
        }
        load_understanding(&config)
            .await
            .expect("train the understanding models")
    } else {
        shared().understanding.clone()
    };
    // Passage embeddings are shared between tests like the models: the
    // first app to embed the default knowledge base leaves its cache here.
    let shared_cache = repo_path("target/test-data/passages.emb");
    let default_kb = options.knowledge == repo_path("knowledge");
    let cache = config.embedding_cache_path();
    if shared_cache.exists() && !cache.exists() {
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        std::fs::copy(&shared_cache, &cache).unwrap();
    }
    let app = Application::with_models(
        config,
        Models {
            generator,
            understanding,
        },
    )
    .expect("app starts");
    if default_kb && !shared_cache.exists() && cache.exists() {
        let part = shared_cache.with_extension(format!("part{}", std::process::id()));
        std::fs::copy(&cache, &part).unwrap();
        std::fs::rename(&part, &shared_cache).unwrap();
    }
    let port = app.port();
    let handle = app.handle();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        port,
        data_dir,
        state,
        handle,
    }
}

impl TestApp {
    /// Waits until at least `n` knowledge-base gaps are stored: the gap
    /// recorder hears them on the event bus after the reply.
    pub async fn gaps_recorded(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let gaps = self.state.store.recent_gaps(1000).await.unwrap();
            if gaps.len() >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} gaps recorded",
                gaps.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn connect(&self) -> WsClient {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", self.port))
                .await
                .expect("websocket connects");
        WsClient { stream }
    }

    /// Creates an agent account, as `frontdesk agent add` does.
    pub fn add_agent(&self, name: &str, password: &str) {
        self.add_account(name, password, Role::Agent);
    }

    /// Creates an account with `role`, as `frontdesk agent add --role` does.
    pub fn add_account(&self, name: &str, password: &str, role: Role) {
        let hash = frontdesk::console::auth::hash_password(password).unwrap();
        self.state
            .store
            .upsert_agent_blocking(name, &hash, Some(role))
            .unwrap();
    }

    /// `GET path` as the agent signed in with `token`: the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get_with_status(path, token).await.1
    }

    /// `GET path` as the agent signed in with `token`: the status and the
    /// JSON body (`null` when it is not JSON).
    pub async fn get_with_status(&self, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
        let response = reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs an agent in and returns the console token.
    pub async fn sign_in(&self, name: &str, password: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/api/console/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// The console's live feed, signed in with `token`; its `hello` is read.
    pub async fn console_feed(&self, token: &str) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://127.0.0.1:{}/api/console/ws", self.port)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("console websocket connects");
        let mut feed = WsClient { stream };
        assert_eq!(feed.recv().await["type"], "hello");
        feed
    }

    /// Stops the server and hands back its data directory.
    pub async fn stop(self) -> TempDir {
        self.handle.stop(true).await;
        self.data_dir
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    stream: Stream,
}

/// What the server sent in answer to one customer message.
#[derive(Debug)]
pub struct Exchange {
    pub ack: Value,
    pub tokens: Vec<String>,
    pub reply: Value,
}

impl Exchange {
    pub fn text(&self) -> &str {
        self.reply["text"].as_str().unwrap()
    }

    pub fn cited(&self) -> Vec<String> {
        self.reply["citations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["article_id"].as_str().unwrap().to_string())
            .collect()
    }
}

impl WsClient {
    /// Connects with a request the test built (extra headers).
    pub async fn from_request(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        WsClient { stream }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::binary(bytes))
            .await
            .expect("send");
    }

    /// The next JSON frame, skipping websocket pings.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("a frame within the timeout")
                .expect("connection open")
                .expect("valid websocket message");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected websocket message {other:?}"),
            }
        }
    }

    /// Frames up to and including the first one of type `kind`.
    pub async fn recv_until(&mut self, kind: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let done = frame["type"] == kind;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    pub async fn hello(&mut self, session_id: Option<&str>, last_seq: Option<i64>) -> Value {
        let mut frame = json!({"type": "hello"});
        if let Some(id) = session_id {
            frame["session_id"] = json!(id);
        }
        if let Some(seq) = last_seq {
            frame["last_seq"] = json!(seq);
        }
        self.send_json(frame).await;
        let welcome = self.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        welcome
    }

    /// Starts a new session and returns its id.
    pub async fn start_session(&mut self) -> String {
        self.hello(None, None).await["session_id"]
            .as_str()
            .expect("welcome has a session id")
            .to_string()
    }

    /// Sends a message and collects the ack, streamed tokens and the reply.
    pub async fn ask(&mut self, id: &str, text: &str) -> Exchange {
        self.send_json(json!({"type": "message", "id": id, "text": text}))
            .await;
        let frames = self.recv_until("reply").await;
        let ack = frames
            .iter()
            .find(|f| f["type"] == "ack")
            .cloned()
            .unwrap_or_else(|| panic!("no ack in {frames:?}"));
        let tokens = frames
            .iter()
            .filter(|f| f["type"] == "token")
            .map(|f| f["text"].as_str().unwrap().to_string())
            .collect();
        let reply = frames.last().unwrap().clone();
        eprintln!(
            "Q: {text}\nA: {} [{}] {:?}",
            reply["text"], reply["kind"], reply["citations"]
        );
        Exchange { ack, tokens, reply }
    }

    /// The next JSON frame if one comes within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.recv()).await.ok()
    }

    /// Frames until `done` holds for one (returned last), failing after `wait`.
    pub async fn recv_until_where(
        &mut self,
        wait: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let started = std::time::Instant::now();
        let mut frames = Vec::new();
        loop {
            let left = wait.saturating_sub(started.elapsed());
            let frame = self.recv_within(left).await.unwrap_or_else(|| {
                panic!("the expected frame did not come in {wait:?}; got {frames:#?}")
            });
            let stop = done(&frame);
            frames.push(frame);
            if stop {
                return frames;
            }
        }
    }

    /// Waits without reading, so websocket pings go unanswered.
    pub async fn stay_silent(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// Waits for the server to close the connection.
    pub async fn expect_closed(&mut self) {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.stream.next()).await {
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(other))) => panic!("expected the connection to close, got {other:?}"),
                Err(_) => panic!("connection was not closed"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// A server that takes the identities a shop's site signs with `IDENTITY_SECRET`.
pub async fn identity_app() -> TestApp {
    spawn_app_with(
        AppOptions {
            configure: |c| c.identity_secret = Some(IDENTITY_SECRET.into()),
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await
}

/// An identity as a shop's site signs it.
pub fn signed(customer_id: &str, email: &str, secret: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "email": email,
        "signature": identity::sign(secret.as_bytes(), customer_id, email),
    })
}

/// Says hello as a signed-in customer; the frames up to `welcome`.
pub async fn hello_as(ws: &mut WsClient, session: Option<&str>, identity: Value) -> Vec<Value> {
    let mut frame = json!({"type": "hello", "identity": identity});
    if let Some(id) = session {
        frame["session_id"] = json!(id);
    }
    ws.send_json(frame).await;
    ws.recv_until("welcome").await
}
