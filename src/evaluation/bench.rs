//! `frontdesk bench`: figures for the model on this machine, printed, not
//! asserted: load time, time to first token and tokens per second on typical
//! knowledge-base questions, through the same code path as the chat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::chat::responder;
use crate::config::Config;
use crate::startup::{load_generator, load_understanding};
use crate::state::{AppState, Models};

const QUESTIONS: &[&str] = &[
    "How long do I have to return something?",
    "How much does shipping to Germany cost?",
    "Can I pay with Klarna?",
    "How do I reset my password?",
    "When will I get my refund?",
];

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Times each question is asked
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

pub async fn run(mut config: Config, args: BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let generator = load_generator(&config).await?;
    let load = started.elapsed();
    let understanding = load_understanding(&config).await?;
    // The bench measures the model, so the model writes every answer.
    config.answer_style = crate::answer::compose::AnswerStyle::Generated;
    config.data_dir = config
        .data_dir
        .join(format!("bench-{}", std::process::id()));
    let scratch = config.data_dir.clone();
    let state = Arc::new(AppState::build(
        config,
        Models {
            generator,
            understanding,
        },
    )?);
    println!("model load: {:.2} s", load.as_secs_f64());
    let (mut first_tokens, mut rates, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs.max(1) {
        for question in QUESTIONS {
            let opened = state.hub.open(&state.store, None).await?;
            let t = Instant::now();
            let id = format!("bench-{run}");
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
                },
            )
            .await
            else {
                anyhow::bail!("no reply stored for {question:?}");
            };
            let total = t.elapsed();
            let streaming = stats.generation.saturating_sub(
                stats
                    .first_token
                    .unwrap_or_default()
                    .saturating_sub(stats.deciding),
            );
            let rate = if stats.tokens > 1 && !streaming.is_zero() {
                (stats.tokens - 1) as f64 / streaming.as_secs_f64()
            } else {
                0.0
            };
            println!(
                "run {run} {question:?}: first token {} ms, first visible word {} ms, {} tokens, {rate:.1} tokens/s, total {} ms, {:?}",
                stats.first_token.map(|d| d.as_millis()).unwrap_or(0),
                stats.first_visible.map(|d| d.as_millis()).unwrap_or(0),
                stats.tokens,
                total.as_millis(),
                reply.reply.as_ref().map(|r| r.kind),
            );
            println!("    {}", reply.text);
            if let Some(ft) = stats.first_token {
                first_tokens.push(ft);
                rates.push(rate);
            }
            totals.push(total);
        }
        println!(
            "after {} replies: RSS {}",
            totals.len(),
            rss_mb(None).map_or("?".into(), |m| format!("{m:.0} MB"))
        );
    }
    let summary = json!({
        "model_load_s": load.as_secs_f64(),
        "replies": totals.len(),
        "first_token_ms_p50": median_duration(&mut first_tokens).as_millis() as u64,
        "tokens_per_s_p50": median(&mut rates),
        "reply_ms_p50": median_duration(&mut totals).as_millis() as u64,
        "rss_mb": rss_mb(None),
    });
    println!("{summary}");
    drop(state);
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
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

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn median_duration(values: &mut [Duration]) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    values[values.len() / 2]
}
