//! `frontdesk bench insights`: a year of a busy shop generated into a fresh
//! database (conversations with understood customer messages, bot replies,
//! hand-overs, flags, ratings, signed-in customers), then every query the
//! insights page and the console run, timed. Figures are printed, not
//! asserted.

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::{Connection, params};
use serde_json::json;

use crate::insights::topics;
use crate::storage::outcomes::Judging;
use crate::storage::{Store, StoreError, now_ms};
use crate::understanding::classifier::SplitMix;

#[derive(Debug, clap::Args)]
pub struct InsightsBenchArgs {
    /// Conversations to generate, spread over the last 365 days
    #[arg(long, default_value_t = 200_000)]
    pub conversations: usize,
    /// Times each query runs
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Where to write the database [default: a file in the system's
    /// temporary directory, removed afterwards]
    #[arg(long)]
    pub db: Option<PathBuf>,
}

const DAY_MS: i64 = 86_400_000;

pub async fn run(args: InsightsBenchArgs) -> anyhow::Result<()> {
    let keep = args.db.is_some();
    let path = args.db.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "frontdesk-bench-insights-{}.sqlite3",
            std::process::id()
        ))
    });
    anyhow::ensure!(
        !path.exists(),
        "{} exists; the bench writes a fresh database",
        path.display()
    );
    let store = Store::open(&path)?;
    let now = now_ms();
    let started = Instant::now();
    let n = args.conversations;
    let (conversations, messages) = store.run(move |conn| generate(conn, n, now)).await?;
    let size_mb = std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6);
    println!(
        "generated {conversations} conversations, {messages} messages over 365 days in {:.1} s ({size_mb:.0} MB)",
        started.elapsed().as_secs_f64()
    );

    let judging = Judging::now(30);
    let some_customer = store
        .run(|conn| {
            Ok::<_, StoreError>(conn.query_row(
                "SELECT id FROM sessions WHERE customer_id IS NOT NULL LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await?;
    let some_customer = uuid::Uuid::parse_str(&some_customer)?;
    println!(
        "\n{:<58} {:>8} {:>7} {:>7}",
        format!(
            "query (each run {} times; the first fills the kept days)",
            args.runs
        ),
        "first ms",
        "p50 ms",
        "p95 ms"
    );
    for days in [7, 30, 365] {
        let name = format!("overview, {days} days and the {days} before");
        time_overview(&store, &name, args.runs, (now, days), judging).await?;
    }
    for days in [7, 30] {
        let name = format!("conversations.csv, {days} days");
        time_list(&store, &name, args.runs, (now, days), judging).await?;
    }
    for days in [7, 30] {
        let name = format!("rising topics, {days} days against the {days} before");
        time_topics(&store, &name, args.runs, (now, days)).await?;
    }
    for days in [7, 30] {
        let span = days * DAY_MS;
        time(
            &format!("knowledge gaps, {days} days (the newest 2,000, grouped)"),
            args.runs,
            || async {
                let gaps = store
                    .gaps_since(now - span, crate::insights::GAPS_READ)
                    .await?;
                crate::admin::search::group_gaps(&gaps);
                Ok(())
            },
        )
        .await?;
    }
    time("console list, 200 conversations", args.runs, || async {
        store.conversations(200).await?;
        Ok(())
    })
    .await?;
    time("customer profile", args.runs, || async {
        store.customer_profile(some_customer, judging).await?;
        Ok(())
    })
    .await?;
    // A server keeps past days ahead of time (its hourly day keeper), so
    // its first look at a year reads kept days: the same from scratch.
    store
        .run(|conn| {
            conn.execute("DELETE FROM insight_days", [])?;
            Ok::<_, StoreError>(())
        })
        .await?;
    let keeping = Instant::now();
    let kept = store
        .keep_insight_days(2 * 366, judging, topics::word_counter())
        .await?;
    println!(
        "\nday keeper (a server's task at start and hourly): {kept} days kept in {:.1} s, one day per hold of the database",
        keeping.elapsed().as_secs_f64()
    );
    let name = "overview, 365 days and the 365 before, after the day keeper";
    time_overview(&store, name, args.runs, (now, 365), judging).await?;
    // The keeper keeps each day's conversation list and words too.
    for days in [30, 90] {
        let span = days * DAY_MS;
        let name = format!("conversations.csv, {days} days, after the day keeper");
        time_list(&store, &name, args.runs, (now, days), judging).await?;
        let name = format!("rising topics, {days} days, after the day keeper");
        time_topics(&store, &name, args.runs, (now, days)).await?;
        time(
            &format!("topic drill-down, {days} days, after the day keeper"),
            args.runs,
            || async {
                let terms = vec!["damag".to_owned(), "box".to_owned()];
                store
                    .conversations_using((now - span, now), terms, topics::word_counter())
                    .await?;
                Ok(())
            },
        )
        .await?;
    }
    drop(store);
    if !keep {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    } else {
        println!("\nkept {}", path.display());
    }
    Ok(())
}

/// Runs `query` `runs` times and prints the first run's time (before any
/// day was kept), the median and the 95th percentile.
/// Times what the page asks for a period of `days` ending at `now`: its
/// figures and the period before's.
async fn time_overview(
    store: &Store,
    name: &str,
    runs: usize,
    (now, days): (i64, i64),
    judging: Judging,
) -> anyhow::Result<()> {
    let span = days * DAY_MS;
    time(name, runs, || async {
        store.insight_figures(now - span, now, judging).await?;
        store
            .insight_figures(now - 2 * span, now - span, judging)
            .await?;
        Ok(())
    })
    .await
}

/// Times the conversation list of a period of `days` ending at `now` (what
/// the drill-downs and the CSV filter).
async fn time_list(
    store: &Store,
    name: &str,
    runs: usize,
    (now, days): (i64, i64),
    judging: Judging,
) -> anyhow::Result<()> {
    let span = days * DAY_MS;
    time(name, runs, || async {
        store
            .insight_conversations(now - span, now, judging)
            .await?;
        Ok(())
    })
    .await
}

/// Times the rising topics of a period of `days` ending at `now`.
async fn time_topics(
    store: &Store,
    name: &str,
    runs: usize,
    (now, days): (i64, i64),
) -> anyhow::Result<()> {
    time(name, runs, || async {
        topics::rising_topics(store, now, days * DAY_MS).await?;
        Ok(())
    })
    .await
}

async fn time<F, Fut>(name: &str, runs: usize, query: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut ms: Vec<f64> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        query().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let first = ms[0];
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!("{name:<58} {first:>8.0} {:>7.0} {:>7.0}", at(0.5), at(0.95));
    Ok(())
}

/// The same history every run.
struct Rng(SplitMix);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

const INTENTS: &[&str] = &[
    "track_order",
    "return_item",
    "refund_status",
    "shipping_costs",
    "delivery_options",
    "check_payment_methods",
    "cancel_order",
    "change_order",
    "complaint",
    "damaged_item",
    "account_access",
    "discount_code",
    "greeting",
    "goodbye",
    "out_of_scope",
];
const KINDS: &[&str] = &[
    "question",
    "question",
    "question",
    "request",
    "feedback",
    "complaint",
    "praise",
];
const PRODUCTS: &[&str] = &[
    "skillet",
    "dutch-oven",
    "duvet-cover",
    "sheet",
    "throw",
    "bath-towel",
    "mug",
    "plate",
    "bowl",
    "vase",
    "serving-board",
    "chair",
    "table",
    "lamp",
];
const ASPECTS: &[&str] = &[
    "price",
    "quality",
    "size",
    "material",
    "availability",
    "delivery-speed",
    "payment",
    "returns",
    "service",
];
/// Endings of generated customer messages, for rising topics to read.
const PHRASES: &[&str] = &[
    "is not what I expected, can you help?",
    "when will it arrive?",
    "seems too high for what it is",
    "arrived damaged and the box was open",
    "is exactly as described, thank you",
    "can I change it after ordering?",
    "was never mentioned on the product page",
    "how long does the refund take?",
];
/// Questions the generated knowledge base cannot answer (knowledge gaps).
const UNANSWERED: &[&str] = &[
    "do you ship to Iceland with",
    "can I get an engraving on",
    "is there a student discount for",
    "do you rent out",
    "can I pay in instalments for",
];

/// The encoder's dimension: gaps carry an embedding of this size.
const EMBEDDING_DIM: usize = 384;

/// A unit vector near topic `topic`'s own (cosine about 0.93): the
/// embedding of one wording of that question.
fn near(rng: &mut Rng, topic: u64) -> Vec<u8> {
    let mut base = Rng(SplitMix(topic.wrapping_mul(0x9e37_79b9) ^ 0xa5a5));
    let unit = |r: &mut Rng| r.below(2001) as f32 / 1000.0 - 1.0;
    let v: Vec<f32> = (0..EMBEDDING_DIM)
        .map(|_| unit(&mut base) + 0.4 * unit(rng))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().flat_map(|x| (x / norm).to_le_bytes()).collect()
}

const BOT_KINDS: &[&str] = &[
    "extractive",
    "extractive",
    "extractive",
    "order_status",
    "no_answer",
    "clarify",
];
const FLAGS: &[&str] = &[
    "asked_for_human",
    "strongly_negative",
    "negative_twice",
    "could_not_answer_twice",
];

/// Writes `n` conversations (about ten messages each) into `conn`, one
/// transaction per thousand; returns how many conversations and messages.
fn generate(conn: &mut Connection, n: usize, now: i64) -> Result<(usize, usize), StoreError> {
    let mut rng = Rng(SplitMix(0x5eed));
    let mut messages = 0;
    for chunk in 0..n.div_ceil(1000) {
        let tx = conn.transaction()?;
        {
            let mut session = tx.prepare_cached(
                "INSERT INTO sessions (id, created_at_ms, last_seq, flag_reason, flagged_at_ms,
                                       status, agent, outcome, rating, rating_comment, customer_id, customer_email)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut message = tx.prepare_cached(
                "INSERT INTO messages (session_id, seq, role, text, kind, citations, grounded,
                                       created_at_ms, intent, sentiment, demand, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut gap = tx.prepare_cached(
                "INSERT INTO gaps (session_id, question, reason, score, embedding, at_ms)
                 VALUES (?1, ?2, 'no_answer', 0.2, ?3, ?4)",
            )?;
            for _ in (chunk * 1000)..((chunk + 1) * 1000).min(n) {
                let id = uuid::Uuid::from_u64_pair(rng.next(), rng.next()).to_string();
                let start = now - rng.below(365 * DAY_MS as u64) as i64;
                let turns = 1 + rng.below(9) as i64;
                let person = rng.chance(15);
                let flag = (person || rng.chance(5)).then(|| rng.pick(FLAGS));
                let closed = rng.chance(60);
                let (status, agent, outcome) = match (closed, person) {
                    (true, true) => (
                        "closed",
                        Some("sam"),
                        Some(if rng.chance(80) {
                            "resolved"
                        } else {
                            "unresolved"
                        }),
                    ),
                    (true, false) => ("closed", None, Some("resolved")),
                    (false, true) => ("agent", Some("sam"), None),
                    (false, false) => ("bot", None, None),
                };
                let rating = (closed && rng.chance(30)).then(|| 1 + rng.below(5) as i64);
                // A third of conversations are signed-in customers, a few
                // of whom come back often.
                let customer = rng.chance(30).then(|| format!("c-{}", rng.below(20_000)));
                let last_seq = 2 * turns + i64::from(person && turns > 1) + i64::from(closed);
                session.execute(params![
                    id,
                    start,
                    last_seq,
                    flag,
                    flag.map(|_| start + 60_000),
                    status,
                    agent,
                    outcome,
                    rating,
                    rating.filter(|r| *r <= 2).map(|_| "slow and unhelpful"),
                    customer,
                    customer.as_ref().map(|c| format!("{c}@example.com")),
                ])?;
                let mut at = start;
                let mut seq = 0;
                for turn in 0..turns {
                    let intent = rng.pick(INTENTS);
                    let score = (rng.below(200) as f64 - 110.0) / 100.0;
                    let label = if score <= -0.2 {
                        "negative"
                    } else if score >= 0.2 {
                        "positive"
                    } else {
                        "neutral"
                    };
                    let signals = if score < -0.8 && rng.chance(30) {
                        json!(["cancel_threat"])
                    } else {
                        json!([])
                    };
                    let mut mentions = Vec::new();
                    if rng.chance(40) {
                        mentions.push(json!({"kind": "product", "key": rng.pick(PRODUCTS),
                            "sentiment": label, "score": score}));
                    }
                    if rng.chance(50) {
                        mentions.push(json!({"kind": "aspect", "key": rng.pick(ASPECTS),
                            "sentiment": label, "score": score}));
                    }
                    seq += 1;
                    at += 20_000 + rng.below(60_000) as i64;
                    message.execute(params![
                        id,
                        seq,
                        "customer",
                        format!(
                            "about the {} I ordered: {} {}",
                            rng.pick(PRODUCTS).replace('-', " "),
                            rng.pick(ASPECTS).replace('-', " "),
                            rng.pick(PHRASES)
                        ),
                        None::<&str>,
                        None::<&str>,
                        None::<bool>,
                        at,
                        json!({"name": intent, "confidence": 0.9, "alternatives": []}).to_string(),
                        json!({"label": label, "score": score, "signals": signals}).to_string(),
                        json!({"kind": rng.pick(KINDS), "kind_confidence": 0.8, "mentions": mentions})
                            .to_string(),
                        None::<&str>,
                    ])?;
                    if person && turn == 1 {
                        seq += 1;
                        message.execute(params![
                            id,
                            seq,
                            "event",
                            "Sam joined",
                            "agent_joined",
                            None::<&str>,
                            None::<bool>,
                            at,
                            None::<&str>,
                            None::<&str>,
                            None::<&str>,
                            "sam",
                        ])?;
                    }
                    seq += 1;
                    at += 2_000;
                    let (role, kind, author) = if person && turn >= 1 {
                        ("agent", None, Some("sam"))
                    } else {
                        ("bot", Some(rng.pick(BOT_KINDS)), None)
                    };
                    if kind == Some("no_answer") {
                        // A question the knowledge base has no article
                        // for, embedded near its topic's other wordings.
                        let topic = rng.below(UNANSWERED.len() as u64) as usize;
                        let product = rng.below(PRODUCTS.len() as u64) as usize;
                        let question = format!(
                            "{} the {}?",
                            UNANSWERED[topic],
                            PRODUCTS[product].replace('-', " ")
                        );
                        let embedding = near(&mut rng, (topic * PRODUCTS.len() + product) as u64);
                        gap.execute(params![id, question, embedding, at])?;
                    }
                    message.execute(params![
                        id,
                        seq,
                        role,
                        "a reply with a sentence or two from the right article, as the bot gives",
                        kind,
                        kind.map(|_| r#"[{"article_id":"return-policy","title":"Return policy","url":"/kb/return-policy"}]"#),
                        kind.map(|_| true),
                        at,
                        None::<&str>,
                        None::<&str>,
                        None::<&str>,
                        author,
                    ])?;
                }
                if closed {
                    seq += 1;
                    message.execute(params![
                        id,
                        seq,
                        "event",
                        "Closed",
                        "closed",
                        None::<&str>,
                        None::<bool>,
                        at + 60_000,
                        None::<&str>,
                        None::<&str>,
                        None::<&str>,
                        agent.unwrap_or("customer"),
                    ])?;
                }
                debug_assert_eq!(seq, last_seq);
                messages += seq as usize;
            }
        }
        tx.commit()?;
    }
    conn.execute_batch("ANALYZE")?;
    Ok((n, messages))
}
