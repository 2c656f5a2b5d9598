//! The real binary killed with SIGKILL at random moments while customers
//! write: every acknowledged message survives once, every stored question
//! is answered after the restart, and every log line of a conversation
//! names its session.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{model_path, repo_path};
use frontdesk::storage::Role;

const TRIALS: usize = 3;
const CUSTOMERS: usize = 3;
const QUESTIONS: &[&str] = &[
    "How long do I have to return something?",
    "Can I pay with PayPal?",
    "How much is shipping to Belgium?",
    "How do I reset my password?",
];

/// The `frontdesk` binary serving one data folder, its log in a file.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    async fn start(data: &Path, log: PathBuf) -> Server {
        // A free port: the listener is gone before the server binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("serve")
            .env("FRONTDESK_BIND", format!("127.0.0.1:{port}"))
            .env("FRONTDESK_DATA_DIR", data)
            .env("FRONTDESK_MODEL", model_path())
            .env("FRONTDESK_KNOWLEDGE", repo_path("knowledge"))
            .env("FRONTDESK_LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .env("FRONTDESK_MESSAGES_PER_MINUTE", "100000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the frontdesk binary");
        let server = Server { child, port, log };
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            let url = format!("http://127.0.0.1:{port}/readyz");
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "not ready: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes one question after another (each after the previous reply) until
/// the connection breaks; returns the session and the ids acknowledged.
async fn customer(url: String, n: usize, session: Option<String>) -> (String, Vec<String>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut hello = json!({"type": "hello"});
    if let Some(id) = &session {
        hello["session_id"] = json!(id);
    }
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let mut session = session;
    let mut acked = Vec::new();
    let mut waiting_for_reply = false;
    let mut asked = 0;
    loop {
        if !waiting_for_reply && session.is_some() {
            let id = Uuid::new_v4().to_string();
            let text = QUESTIONS[(n + asked) % QUESTIONS.len()];
            let frame = json!({"type": "message", "id": id, "text": text});
            if ws.send(Message::text(frame.to_string())).await.is_err() {
                break;
            }
            asked += 1;
            waiting_for_reply = true;
        }
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            break;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame["type"].as_str() {
            Some("welcome") => session = frame["session_id"].as_str().map(String::from),
            Some("ack") => acked.push(frame["id"].as_str().unwrap().to_string()),
            Some("reply") => waiting_for_reply = false,
            _ => {}
        }
    }
    (session.expect("welcomed"), acked)
}

/// A pseudo-random kill moment per trial, from a seed printed so a failure
/// can be replayed (`FRONTDESK_CRASH_SEED`).
fn kill_after(seed: u64, trial: usize) -> Duration {
    let mut x = seed ^ (trial as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Duration::from_millis(300 + x % 2_000)
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_no_acknowledged_message() {
    // The model fetched and the understanding models trained, as for every
    // test; copied so each start of the binary loads them from the cache.
    let _ = crate::helpers::understanding();
    let data = TempDir::new().unwrap();
    let cached = repo_path("target/test-data");
    copy_dir(&cached.join("models"), &data.path().join("models"));
    let _ = std::fs::copy(
        cached.join("passages.emb"),
        data.path().join("passages.emb"),
    );
    let seed = std::env::var("FRONTDESK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("FRONTDESK_CRASH_SEED={seed}");

    let mut sessions: Vec<Option<String>> = vec![None; CUSTOMERS];
    let mut acked: Vec<(String, String)> = Vec::new();
    for trial in 0..TRIALS {
        let log = data.path().join(format!("trial-{trial}.log"));
        let mut server = Server::start(data.path(), log).await;
        let customers: Vec<_> = (0..CUSTOMERS)
            .map(|n| tokio::spawn(customer(server.url(), n, sessions[n].clone())))
            .collect();
        tokio::time::sleep(kill_after(seed, trial)).await;
        server.kill();
        for (n, customer) in customers.into_iter().enumerate() {
            let (session, ids) = customer.await.unwrap();
            acked.extend(ids.into_iter().map(|id| (session.clone(), id)));
            sessions[n] = Some(session);
        }
    }
    assert!(!acked.is_empty(), "no message was acknowledged");

    // After the last crash, each customer comes back; what was stored and
    // not answered is answered.
    let log = data.path().join("after.log");
    let server = Server::start(data.path(), log.clone()).await;
    let mut returning = Vec::new();
    for session in sessions.iter().flatten() {
        let url = server.url();
        let session = session.clone();
        returning.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
            let hello = json!({"type": "hello", "session_id": session, "last_seq": 0});
            ws.send(Message::text(hello.to_string())).await.unwrap();
            ws
        }));
    }
    let mut sockets = Vec::new();
    for r in returning {
        sockets.push(r.await.unwrap());
    }
    let store = frontdesk::storage::Store::open(&data.path().join("frontdesk.sqlite3")).unwrap();
    let started = Instant::now();
    for session in sessions.iter().flatten() {
        let id: Uuid = session.parse().unwrap();
        loop {
            let pending = store.unanswered(id).await.unwrap();
            if pending.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "never answered after the restart: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for (session, client_id) in &acked {
        let transcript = store.transcript(session.parse().unwrap()).await.unwrap();
        let count = |role: Role| {
            transcript
                .iter()
                .filter(|m| m.role == role && m.client_id.as_deref() == Some(client_id.as_str()))
                .count()
        };
        assert_eq!(count(Role::Customer), 1, "acknowledged message {client_id}");
        assert_eq!(count(Role::Bot), 1, "replies to {client_id}");
    }
    eprintln!(
        "{} acknowledged messages over {TRIALS} kills: all kept once, each answered once",
        acked.len()
    );
    drop(sockets);
    drop(server);

    // Every line logged while a conversation was served names its session.
    for trial in (0..TRIALS)
        .map(|t| data.path().join(format!("trial-{t}.log")))
        .chain([log])
    {
        let text = std::fs::read_to_string(&trial).unwrap();
        let served = text
            .lines()
            .skip_while(|l| !l.contains("\"listening\""))
            .skip(1);
        for line in served {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue; // cut short by the kill
            };
            let session = &entry["span"]["session"];
            assert!(
                session.as_str().is_some_and(|s| s.len() == 12),
                "a conversation's log line without its session: {line}"
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
    }
}
