//! Load against a running server: many customers asking at once, then many
//! idle sockets, printing latencies, errors and the server's memory.
//!
//! Start the server with limits that let one address be many customers:
//!
//! ```sh
//! FRONTDESK_SOCKETS_PER_IP=20000 FRONTDESK_SESSIONS_PER_MINUTE=1000000 \
//! FRONTDESK_MESSAGES_PER_MINUTE=1000000 cargo run --release &
//! cargo run --release --example load -- --pid $(pgrep -f 'target/release/frontdesk') \
//!     --customers 1000 --idle 10000
//! ```
//!
//! Figures, not assertions: a slow machine is slow, not broken.

use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// The chat websocket
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// The server's process id, to read its memory (Linux)
    #[arg(long)]
    pid: Option<u32>,
    /// Customers asking one knowledge-base question each, all at once
    #[arg(long, default_value_t = 100)]
    customers: usize,
    /// Idle sockets (hello, then nothing) opened after the customers
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// How long the idle sockets stay open before they close
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// How long to wait for a reply
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

const QUESTIONS: &[&str] = &[
    "How long do I have to return something?",
    "Can I pay with PayPal?",
    "How much is shipping to Belgium?",
    "How do I reset my password?",
    "My order arrived damaged, what now?",
    "Do you ship to Norway?",
];

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The server's memory; without its pid, unknown (not this process's).
fn rss_mb(pid: Option<u32>) -> Option<f64> {
    frontdesk::evaluation::bench::rss_mb(Some(pid?))
}

fn show(pid: Option<u32>) -> String {
    rss_mb(pid).map_or("?".into(), |m| format!("{m:.0} MB"))
}

async fn next_json(ws: &mut Socket) -> Option<Value> {
    while let Some(message) = ws.next().await {
        match message.ok()? {
            Message::Text(t) => return serde_json::from_str(&t).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

async fn hello(url: &str) -> Result<Socket, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text(json!({"type": "hello"}).to_string()))
        .await
        .map_err(|e| e.to_string())?;
    match next_json(&mut ws).await {
        Some(v) if v["type"] == "welcome" => Ok(ws),
        other => Err(format!("no welcome: {other:?}")),
    }
}

#[derive(Default)]
struct Outcome {
    ack: Option<Duration>,
    reply: Option<Duration>,
    busy: bool,
    error: Option<String>,
}

async fn customer(url: String, question: &'static str, timeout: Duration) -> Outcome {
    let mut out = Outcome::default();
    let mut ws = match hello(&url).await {
        Ok(ws) => ws,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let started = Instant::now();
    let frame = json!({"type": "message", "id": "q1", "text": question}).to_string();
    if let Err(e) = ws.send(Message::text(frame)).await {
        out.error = Some(e.to_string());
        return out;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => { out.error = Some("timed out".into()); break; }
            frame = next_json(&mut ws) => match frame {
                None => { out.error = Some("closed".into()); break; }
                Some(v) if v["type"] == "ack" => out.ack = Some(started.elapsed()),
                Some(v) if v["type"] == "error" => { out.error = Some(v["code"].to_string()); break; }
                Some(v) if v["type"] == "reply" => {
                    out.reply = Some(started.elapsed());
                    out.busy = v["kind"] == "busy";
                    break;
                }
                Some(_) => {}
            }
        }
    }
    // Stays connected, idle, until the run ends.
    tokio::spawn(async move {
        let _ws = ws;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    out
}

fn percentiles(mut d: Vec<Duration>) -> String {
    if d.is_empty() {
        return "-".into();
    }
    d.sort();
    let at = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    format!(
        "p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
        at(0.5),
        at(0.95),
        at(0.99)
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout_secs);
    println!("server RSS before: {}", show(args.pid));

    let started = Instant::now();
    let runs: Vec<_> = (0..args.customers)
        .map(|i| {
            tokio::spawn(customer(
                args.url.clone(),
                QUESTIONS[i % QUESTIONS.len()],
                timeout,
            ))
        })
        .collect();
    let mut outcomes = Vec::new();
    for r in runs {
        outcomes.push(r.await.expect("customer task"));
    }
    let acks: Vec<_> = outcomes.iter().filter_map(|o| o.ack).collect();
    let replies: Vec<_> = outcomes.iter().filter_map(|o| o.reply).collect();
    let busy = outcomes.iter().filter(|o| o.busy).count();
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for e in outcomes.iter().filter_map(|o| o.error.clone()) {
        *errors.entry(e).or_default() += 1;
    }
    println!(
        "{} customers at once, in {:.1} s: {} acks ({}), {} replies ({}), {} busy, errors {:?}",
        args.customers,
        started.elapsed().as_secs_f64(),
        acks.len(),
        percentiles(acks),
        replies.len(),
        percentiles(replies),
        busy,
        errors
    );
    println!("server RSS with them connected: {}", show(args.pid));

    let before = rss_mb(args.pid);
    let mut idle = Vec::with_capacity(args.idle);
    let mut failed = 0;
    for chunk in (0..args.idle).collect::<Vec<_>>().chunks(200) {
        let opened = futures_util::future::join_all(chunk.iter().map(|_| hello(&args.url))).await;
        for o in opened {
            match o {
                Ok(ws) => idle.push(ws),
                Err(_) => failed += 1,
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_idle = rss_mb(args.pid);
    println!(
        "{} idle sockets open ({failed} failed): server RSS {}{}",
        idle.len(),
        show(args.pid),
        match (before, with_idle) {
            (Some(b), Some(a)) if !idle.is_empty() => format!(
                ", {:.1} MB more, {:.1} KB per socket",
                a - b,
                (a - b) * 1024.0 / idle.len() as f64
            ),
            _ => String::new(),
        }
    );
    // Long enough to profile the server's heap with them open.
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    drop(idle);
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "server RSS 5 s after the idle sockets closed: {}",
        show(args.pid)
    );
}
