//! `frontdesk bench`: figures for the model on this machine, printed, not
//! asserted: load time, prompt processing and decode speed, time to first
//! token and to first visible word on typical knowledge-base questions,
//! alone and with several customers asking at once, through the same code
//! path as the chat; for the Q8_0 copy and the original file when the model
//! is converted (see `generation/requantize.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::generation::{
    GenEvent, GenerationError, GenerationRequest, MistralGenerator, Speaker, TextGenerator,
};

use crate::chat::responder::{self, AnswerStats};
use crate::config::Config;
use crate::startup::{load_generator, load_understanding_adapted};
use crate::state::{AppState, Models};
use crate::understanding::Understanding;

const QUESTIONS: &[&str] = &[
    "How long do I have to return something?",
    "How much does shipping to Germany cost?",
    "Can I pay with Klarna?",
    "How do I reset my password?",
    "When will I get my refund?",
];

/// Tokens each reply decodes in the fixed-length rounds.
const FIXED_LENGTH: usize = 64;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Times each question is asked, one customer at a time
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Customers asking at once, for the concurrency rounds
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    pub concurrency: Vec<usize>,
    /// Measure only the file as it is loaded (skip the original when the
    /// model runs from a converted copy)
    #[arg(long)]
    pub loaded_only: bool,
    /// Write each prompt the model was given, alone, as a JSON line of chat
    /// messages (for `bench/compare_llama_cpp.py`)
    #[arg(long)]
    pub prompts_out: Option<std::path::PathBuf>,
    /// After the other rounds, this many more replies one at a time, each
    /// a different customer's wording (so their prompts differ), with the
    /// process's memory after 10, 100, 500 and every 500 after
    #[arg(long, default_value_t = 0)]
    pub soak: usize,
    #[command(subcommand)]
    pub what: Option<BenchCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Time the insights and console queries on a generated year of a busy
    /// shop (a fresh database; the model is not loaded)
    Insights(super::insights_bench::InsightsBenchArgs),
}

pub async fn run(mut config: Config, args: BenchArgs) -> anyhow::Result<()> {
    let understanding = load_understanding_adapted(&config).await?;
    // The bench measures the model, so the model writes every answer. Replies
    // run at once as the server runs them (`generation_concurrency`); the
    // rest of a round waits in the queue, which is made long enough.
    config.answer_style = crate::answer::compose::AnswerStyle::Generated;
    let most = args.concurrency.iter().copied().max().unwrap_or(1).max(1);
    config.generation_queue = config.generation_queue.max(most);
    let mut variants = vec![("loaded", config.clone())];
    if config.requantize && !args.loaded_only {
        let mut original = config.clone();
        original.requantize = false;
        variants.push(("original", original));
    }
    let mut summaries = Vec::new();
    for (i, (label, config)) in variants.into_iter().enumerate() {
        let prompts_out = args.prompts_out.as_deref().filter(|_| i == 0);
        let summary = measure(config, understanding.clone(), &args, prompts_out).await?;
        println!("{label}: {summary}");
        summaries.push(json!({ "variant": label, "figures": summary }));
    }
    println!("{}", Value::Array(summaries));
    Ok(())
}

/// Every figure for one model file.
async fn measure(
    mut config: Config,
    understanding: Arc<Understanding>,
    args: &BenchArgs,
    prompts_out: Option<&Path>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let generator = Arc::new(Recording {
        inner: load_generator(&config).await?,
        requests: Mutex::default(),
    });
    let load = started.elapsed();
    println!(
        "model {}: loaded in {:.2} s, {} replies at once",
        generator.describe(),
        load.as_secs_f64(),
        config.generation_concurrency
    );
    config.data_dir = config
        .data_dir
        .join(format!("bench-{}", std::process::id()));
    let scratch = config.data_dir.clone();
    let state = Arc::new(AppState::build(
        config,
        Models {
            generator: generator.clone(),
            understanding,
        },
    )?);
    let mut alone = Vec::new();
    let mut rss_after = Vec::new();
    for run in 0..args.runs.max(1) {
        for question in QUESTIONS {
            let reply = ask(&state, question).await?;
            println!(
                "run {run} {question:?}: first token {} ms, first visible word {} ms, prompt {} tokens at {:.0}/s, {} tokens at {:.1}/s, total {} ms",
                ms(reply.stats.first_token),
                ms(reply.stats.first_visible),
                reply.stats.prompt_tokens.unwrap_or(0),
                reply.prompt_rate().unwrap_or(0.0),
                reply.stats.tokens,
                reply.decode_rate().unwrap_or(0.0),
                reply.total.as_millis(),
            );
            println!("    {}", reply.text);
            alone.push(reply);
        }
        rss_after.push(memory_line(alone.len()));
    }
    if let Some(path) = prompts_out {
        generator.write_prompts(path)?;
    }
    let mut rounds = Vec::new();
    for &n in &args.concurrency {
        let n = n.max(1);
        let batched_before = mistralrs::core::padded_decode::padded_steps();
        let t = Instant::now();
        let asks = (0..n).map(|i| {
            let state = state.clone();
            async move { ask(&state, QUESTIONS[i % QUESTIONS.len()]).await }
        });
        let replies: Vec<Reply> = futures_util::future::try_join_all(asks).await?;
        let wall = t.elapsed();
        let tokens: usize = replies.iter().map(|r| r.stats.tokens).sum();
        let round = json!({
            "sessions": n,
            "first_token_ms_p50": p50(replies.iter().filter_map(|r| r.stats.first_token)),
            "first_visible_ms_p50": p50(replies.iter().filter_map(|r| r.stats.first_visible)),
            "aggregate_tokens_per_s": tokens as f64 / wall.as_secs_f64(),
            // Decode steps that ran replies of different lengths together
            // (the patched mistralrs-core, vendor/README.md).
            "steps_batching_lengths": mistralrs::core::padded_decode::padded_steps() - batched_before,
        });
        println!("{n} at once: {round}");
        rounds.push(round);
    }
    let prompts = generator.recorded();
    let mut model_rounds = Vec::new();
    let mut fixed_rounds = Vec::new();
    for &n in &args.concurrency {
        let round = model_round(&generator.inner, &prompts, n.max(1), None).await?;
        println!("{} at once, model alone: {round}", n.max(1));
        model_rounds.push(round);
        let round = model_round(&generator.inner, &prompts, n.max(1), Some(FIXED_LENGTH)).await?;
        println!(
            "{} at once, model alone, {FIXED_LENGTH} tokens each: {round}",
            n.max(1)
        );
        fixed_rounds.push(round);
    }
    let mut soak = Vec::new();
    for i in 1..=args.soak {
        let question = format!(
            "Hello, this is customer {i}. {}",
            QUESTIONS[i % QUESTIONS.len()]
        );
        ask(&state, &question).await?;
        if i == 10 || i == 100 || i % 500 == 0 {
            soak.push(memory_line(i));
        }
    }
    let summary = json!({
        "model_load_s": load.as_secs_f64(),
        "replies": alone.len(),
        "first_token_ms_p50": p50(alone.iter().filter_map(|r| r.stats.first_token)),
        "first_visible_ms_p50": p50(alone.iter().filter_map(|r| r.stats.first_visible)),
        "prompt_tokens_per_s_p50": median(alone.iter().filter_map(Reply::prompt_rate)),
        "decode_tokens_per_s_p50": median(alone.iter().filter_map(Reply::decode_rate)),
        "reply_ms_p50": p50(alone.iter().map(|r| r.total)),
        "rss_mb": rss_after,
        "concurrent": rounds,
        "concurrent_model_alone": model_rounds,
        "concurrent_model_alone_fixed_length": fixed_rounds,
        "soak": soak,
    });
    drop(state);
    let _ = std::fs::remove_dir_all(scratch);
    Ok(summary)
}

/// One stream's timing in a model-alone round.
struct Stream {
    first_token: Option<Duration>,
    last_token: Option<Duration>,
    tokens: usize,
}

impl Stream {
    fn decode_rate(&self) -> Option<f64> {
        decode_rate(
            self.tokens,
            self.last_token?.saturating_sub(self.first_token?),
        )
    }
}

/// Tokens after the first over `streaming`, the time from the first to the
/// last; `None` for a reply of one token.
fn decode_rate(tokens: usize, streaming: Duration) -> Option<f64> {
    (tokens > 1 && !streaming.is_zero()).then(|| (tokens - 1) as f64 / streaming.as_secs_f64())
}

/// `n` of the prompts the chat gave the model (in turn), sent straight to
/// the generator at once: the model's own concurrency, without the
/// understanding, retrieval and grounding checks that share the cores in
/// the chat rounds. `decode_tokens_per_s_p50` is one stream's decode
/// rate; `decode_tokens_per_s_aggregate` is what they decode together
/// (see `decode_throughput`), the figure llama.cpp's batched bench calls
/// text-generation speed.
async fn model_round(
    generator: &Arc<MistralGenerator>,
    prompts: &[GenerationRequest],
    n: usize,
    fixed_length: Option<usize>,
) -> anyhow::Result<Value> {
    anyhow::ensure!(!prompts.is_empty(), "no prompts recorded to replay");
    let t = Instant::now();
    let mut receivers = Vec::with_capacity(n);
    for i in 0..n {
        let prompt = prompts[i % prompts.len()].clone();
        receivers.push(match fixed_length {
            Some(max_tokens) => generator.start_fixed_length(GenerationRequest {
                max_tokens,
                ..prompt
            })?,
            None => generator.start(prompt)?,
        });
    }
    let streams = receivers.into_iter().map(|mut events| async move {
        let mut stream = Stream {
            first_token: None,
            last_token: None,
            tokens: 0,
        };
        while let Some(event) = events.recv().await {
            match event {
                GenEvent::Token(_) => {
                    let now = t.elapsed();
                    stream.first_token.get_or_insert(now);
                    stream.last_token = Some(now);
                }
                GenEvent::Done { tokens, .. } => stream.tokens = tokens,
                GenEvent::Failed(message) => anyhow::bail!("generation failed: {message}"),
            }
        }
        Ok(stream)
    });
    let streams: Vec<Stream> = futures_util::future::try_join_all(streams).await?;
    let wall = t.elapsed();
    let tokens: usize = streams.iter().map(|s| s.tokens).sum();
    Ok(json!({
        "sessions": n,
        "tokens": tokens,
        "first_token_ms_p50": p50(streams.iter().filter_map(|s| s.first_token)),
        "aggregate_tokens_per_s": tokens as f64 / wall.as_secs_f64(),
        "decode_tokens_per_s_p50": median(streams.iter().filter_map(Stream::decode_rate)),
        "decode_tokens_per_s_aggregate": decode_throughput(&streams),
    }))
}

/// Tokens after each stream's first over the time any stream was between
/// its first and last token: what the batch decodes per second of decoding,
/// prompts run in between included; streams one after another give one
/// stream's rate.
fn decode_throughput(streams: &[Stream]) -> f64 {
    let mut spans: Vec<(Duration, Duration)> = streams
        .iter()
        .filter_map(|s| Some((s.first_token?, s.last_token?)))
        .collect();
    spans.sort();
    let mut covered = Duration::ZERO;
    let mut current: Option<(Duration, Duration)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                covered += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        covered += e - s;
    }
    let decoded: usize = streams.iter().map(|s| s.tokens.saturating_sub(1)).sum();
    if covered.is_zero() {
        0.0
    } else {
        decoded as f64 / covered.as_secs_f64()
    }
}

/// The real model, keeping every request it is given.
struct Recording {
    inner: Arc<MistralGenerator>,
    requests: Mutex<Vec<GenerationRequest>>,
}

impl TextGenerator for Recording {
    fn start(
        &self,
        request: GenerationRequest,
    ) -> Result<mpsc::Receiver<GenEvent>, GenerationError> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.clone());
        self.inner.start(request)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
}

impl Recording {
    /// The distinct requests so far, in the order first given.
    fn recorded(&self) -> Vec<GenerationRequest> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut distinct: Vec<GenerationRequest> = Vec::new();
        for r in requests.iter() {
            if !distinct
                .iter()
                .any(|d| d.system == r.system && d.turns == r.turns)
            {
                distinct.push(r.clone());
            }
        }
        distinct
    }

    /// The requests so far as OpenAI-style chat messages, one JSON line each.
    fn write_prompts(&self, path: &Path) -> std::io::Result<()> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines = String::new();
        for r in requests.iter() {
            let mut messages = Vec::new();
            if !r.system.is_empty() {
                messages.push(json!({ "role": "system", "content": r.system }));
            }
            for turn in &r.turns {
                let role = match turn.speaker {
                    Speaker::Customer => "user",
                    Speaker::Assistant => "assistant",
                };
                messages.push(json!({ "role": role, "content": turn.text }));
            }
            lines
                .push_str(&json!({ "messages": messages, "max_tokens": r.max_tokens }).to_string());
            lines.push('\n');
        }
        std::fs::write(path, lines)
    }
}

/// One reply and how it went.
struct Reply {
    text: String,
    stats: AnswerStats,
    total: Duration,
}

impl Reply {
    /// Prompt tokens over the time to the first token, less deciding.
    fn prompt_rate(&self) -> Option<f64> {
        let prompt = self.stats.prompt_tokens? as f64;
        let secs = self
            .stats
            .first_token?
            .saturating_sub(self.stats.deciding)
            .as_secs_f64();
        (secs > 0.0).then(|| prompt / secs)
    }

    /// Tokens after the first over the time they took.
    fn decode_rate(&self) -> Option<f64> {
        let first = self.stats.first_token?.saturating_sub(self.stats.deciding);
        decode_rate(
            self.stats.tokens,
            self.stats.generation.saturating_sub(first),
        )
    }
}

/// A new conversation asks `question` and the chat's responder answers it.
async fn ask(state: &Arc<AppState>, question: &str) -> anyhow::Result<Reply> {
    let opened = state.hub.open(&state.store, None).await?;
    let t = Instant::now();
    let id = format!("bench-{}", uuid::Uuid::new_v4());
    let appended = state
        .store
        .append_customer(opened.session.id, id.clone(), question.to_string())
        .await?;
    let Some((reply, stats)) = responder::answer(
        state.clone(),
        opened.session,
        responder::Question {
            id,
            seq: appended.seq,
            text: question.to_string(),
            ip: None,
        },
    )
    .await
    else {
        anyhow::bail!("no reply stored for {question:?}");
    };
    Ok(Reply {
        text: reply.text,
        stats,
        total: t.elapsed(),
    })
}

fn ms(d: Option<Duration>) -> u128 {
    d.map_or(0, |d| d.as_millis())
}

/// Prints and returns the process's memory and what the prefix cache keeps
/// after `replies` replies.
fn memory_line(replies: usize) -> Value {
    let rss = rss_mb(None);
    let (bytes, entries) = mistralrs::core::prefix_cache_budget::held();
    let (hits, _) = mistralrs::core::prefix_cache_budget::hits();
    println!(
        "after {replies} replies: RSS {}, prefix cache {entries} replies in {:.0} MB, {hits} prompts reused one",
        rss.map_or("?".into(), |m| format!("{m:.0} MB")),
        bytes as f64 / 1e6
    );
    json!({
        "replies": replies,
        "rss_mb": rss,
        "prefix_cache_mb": bytes as f64 / 1e6,
        "prefix_cache_hits": hits,
    })
}

/// A process's resident memory in MB (Linux; `None` is this process),
/// to see whether it stays flat as replies or sockets come and go.
pub fn rss_mb(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// Median in milliseconds.
fn p50(values: impl Iterator<Item = Duration>) -> u64 {
    let mut values: Vec<Duration> = values.collect();
    if values.is_empty() {
        return 0;
    }
    values.sort();
    values[values.len() / 2].as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(first_ms: u64, last_ms: u64, tokens: usize) -> Stream {
        Stream {
            first_token: Some(Duration::from_millis(first_ms)),
            last_token: Some(Duration::from_millis(last_ms)),
            tokens,
        }
    }

    #[test]
    fn streams_one_after_another_decode_at_one_streams_rate() {
        // 10 tokens after the first in 1 s each, back to back.
        let serial = [stream(0, 1000, 11), stream(1000, 2000, 11)];
        assert!((decode_throughput(&serial) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn streams_decoding_together_add_up() {
        // Two streams over the same second, a third inside it.
        let together = [
            stream(0, 1000, 11),
            stream(0, 1000, 11),
            stream(200, 700, 6),
        ];
        assert!((decode_throughput(&together) - 25.0).abs() < 1e-9);
        // A gap with no stream decoding does not count.
        let gap = [stream(0, 500, 6), stream(1500, 2000, 6)];
        assert!((decode_throughput(&gap) - 10.0).abs() < 1e-9);
    }
}
