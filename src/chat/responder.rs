//! Answering one customer message: retrieve, generate (streaming tokens to
//! the session), check the reply against its sources, store, publish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::escalation::{FlagReason, asks_for_human};
use super::protocol::{ErrorCode, ServerFrame};
use super::session::LiveSession;
use crate::generation::grounding;
use crate::generation::{ChatTurn, GenEvent, Speaker, prompt};
use crate::knowledge::{Analyzer, Citation, Passage, RetrievalQuery, Retrieved, RetrieverKind};
use crate::state::AppState;
use crate::storage::gaps::GapReason;
use crate::storage::{BotReply, ReplyKind, StoredMessage};
use crate::understanding::Understood;
use crate::understanding::catalogue::{IntentAction, OUT_OF_SCOPE};

pub const NO_ANSWER_TEXT: &str = "I'm sorry, I couldn't find anything about that in our help centre, \
and I'd rather not guess. Would you like me to connect you with someone from our team?";
pub const HANDOFF_TEXT: &str = "I've asked someone from our team to join this chat. \
They'll reply right here, usually within a few minutes during opening hours; you can keep writing in the meantime.";
pub const DECLINE_TEXT: &str = "Sorry, I can only help with questions about our shop: orders, delivery, returns, \
payments and your account. Is there something about an order I can help with? I can also connect you with a person.";
pub const BUSY_TEXT: &str = "I'm answering a lot of customers right now, so I couldn't get to your question. \
Please send it again in a minute, or ask to talk to a person.";

/// Timings of one answer, for logs and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct AnswerStats {
    pub retrieval: Duration,
    pub first_token: Option<Duration>,
    pub generation: Duration,
    pub tokens: usize,
}

/// One reply the bot is writing, and the token that stops it when a person
/// takes over.
struct BotTurn {
    reply_id: Uuid,
    cancel: CancellationToken,
}

/// The stored customer message being answered.
#[derive(Debug, Clone)]
pub struct Question {
    /// The widget's client id.
    pub id: String,
    pub seq: i64,
    pub text: String,
}

/// Answers `question` in `live`, publishing tokens and the final reply to
/// the session: understand it, then reply as its intent asks (a fixed
/// reply, a person, a polite decline, or an answer from the knowledge base).
pub async fn answer(
    state: Arc<AppState>,
    live: Arc<LiveSession>,
    question: Question,
) -> Option<(StoredMessage, AnswerStats)> {
    let _one_at_a_time = live.reply_lock.lock().await;
    let started = Instant::now();
    let mut stats = AnswerStats::default();
    let reply_id = Uuid::new_v4();
    let turn = BotTurn {
        reply_id,
        cancel: live.bot_turn(),
    };
    let understood = understand(&state, &live, &question).await;
    if !live.handler().is_bot() {
        // A person has the conversation: the message is theirs to answer.
        return None;
    }
    let plan = understood
        .as_ref()
        .map_or(Plan::Search(Vec::new()), |u| plan(&state, u));
    let embedding = understood.as_ref().map(|u| u.embedding.clone());
    let (reply, best) = match plan {
        Plan::Fixed(kind, text) => (BotReply::without_sources(reply_id, kind, text), None),
        Plan::Search(prefer_tags) => {
            answer_from_kb(
                &state,
                &live,
                &turn,
                &question.text,
                embedding.as_deref(),
                prefer_tags,
                &mut stats,
            )
            .await
        }
    };
    if turn.cancel.is_cancelled() || !live.handler().is_bot() {
        tracing::info!(%reply_id, tokens = stats.tokens, "reply cancelled: a person took over");
        if stats.tokens > 0 {
            live.publish(ServerFrame::ReplyCancelled { reply_id });
        }
        return None;
    }
    let previous_question = live.previous_question();
    let reply_to = question.id.clone();
    let stored = match state
        .store
        .append_bot(live.id, Some(reply_to.clone()), reply, understood.clone())
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, "cannot store reply");
            live.publish(ServerFrame::Error {
                code: ErrorCode::Internal,
                message: "the reply could not be saved; please send your message again".into(),
                id: Some(reply_to),
            });
            return None;
        }
    };
    if let Some(reason) = stored
        .reply
        .as_ref()
        .and_then(|r| live.observe_reply(r.kind))
    {
        flag(&state, &live, reason).await;
    }
    if let Some(kind) = stored.reply.as_ref().map(|r| r.kind) {
        let gap = gap_of(&state, kind, best, &question.text, previous_question);
        if let Some((reason, text)) = gap {
            record_gap(&state, live.id, reason, text, best, embedding).await;
        }
    }
    live.push_turns([
        ChatTurn {
            speaker: Speaker::Customer,
            text: question.text,
        },
        ChatTurn {
            speaker: Speaker::Assistant,
            text: stored.text.clone(),
        },
    ]);
    if let Some(frame) = ServerFrame::reply(&stored) {
        live.publish(frame);
    }
    crate::console::live::changed(&state, live.id, Some(stored.seq));
    let kind = stored.reply.as_ref().map(|r| r.kind);
    tracing::info!(
        seq = stored.seq,
        kind = ?kind,
        intent = understood.as_ref().map(|u| u.intent.name.as_str()),
        sentiment = understood.as_ref().map(|u| u.sentiment.score),
        tokens = stats.tokens,
        retrieval_ms = stats.retrieval.as_millis() as u64,
        first_token_ms = stats.first_token.map(|d| d.as_millis() as u64),
        total_ms = started.elapsed().as_millis() as u64,
        "replied"
    );
    Some((stored, stats))
}

/// Classifies the message, stores what it means, and flags the session
/// when it should be. A failure here costs the reply its steering, not the
/// customer their answer.
async fn understand(
    state: &Arc<AppState>,
    live: &LiveSession,
    question: &Question,
) -> Option<Understood> {
    let understood = match state.understanding.understand(&question.text).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot understand message");
            return None;
        }
    };
    if let Err(e) = state
        .store
        .annotate(live.id, question.seq, understood.clone())
        .await
    {
        tracing::error!(error = %e, "cannot store message intent");
    }
    if let Some(reason) = live.observe_message(&understood) {
        flag(state, live, reason).await;
    }
    crate::console::live::changed(state, live.id, Some(question.seq));
    Some(understood)
}

/// Flags the conversation for a person and leaves them a summary of it.
async fn flag(state: &AppState, live: &LiveSession, reason: FlagReason) {
    match state.store.flag(live.id, reason).await {
        Ok(true) => {
            tracing::info!(session = %live.id, reason = reason.as_str(), "conversation flagged")
        }
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, "cannot flag conversation");
            return;
        }
    }
    let summary = match state.store.transcript(live.id).await {
        Ok(messages) => crate::console::summary::summarize(&messages, reason),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the conversation to summarise it");
            return;
        }
    };
    if let Err(e) = state.store.set_summary(live.id, summary).await {
        tracing::error!(error = %e, "cannot store the hand-off summary");
    }
}

/// Whether this reply shows a hole in the knowledge base, and which
/// question it is about: for a hand-off, the question asked before it.
fn gap_of(
    state: &AppState,
    kind: ReplyKind,
    best: Option<f32>,
    question: &str,
    previous_question: Option<String>,
) -> Option<(GapReason, String)> {
    match kind {
        ReplyKind::NoAnswer => Some((GapReason::NoAnswer, question.to_string())),
        ReplyKind::Declined => Some((GapReason::Declined, question.to_string())),
        ReplyKind::Handoff => previous_question.map(|q| (GapReason::HandedOff, q)),
        ReplyKind::Generated | ReplyKind::Extractive
            if best.is_some_and(|s| s < state.config.min_similarity) =>
        {
            Some((GapReason::LowScore, question.to_string()))
        }
        _ => None,
    }
}

async fn record_gap(
    state: &AppState,
    session: Uuid,
    reason: GapReason,
    text: String,
    best: Option<f32>,
    embedding: Option<Vec<f32>>,
) {
    // A hand-off is about the earlier question, whose embedding is not at hand.
    let embedding = match (reason, embedding) {
        (GapReason::HandedOff, _) | (_, None) => state.understanding.embed(&text).await.ok(),
        (_, Some(e)) => Some(e),
    };
    if let Err(e) = state
        .store
        .record_gap(session, text, reason, best, embedding)
        .await
    {
        tracing::error!(error = %e, "cannot record a knowledge-base gap");
    }
}

/// What the intent asks the bot to do.
pub enum Plan {
    Fixed(ReplyKind, String),
    /// Answer from the knowledge base, preferring articles with these tags.
    Search(Vec<String>),
}

/// A message the threshold called out of scope is still searched for, and
/// answered when a passage clearly covers it (typos push real questions
/// under the threshold); one the classifier itself put out of scope is
/// declined.
pub fn plan(state: &AppState, understood: &Understood) -> Plan {
    if asks_for_human(understood) {
        return Plan::Fixed(ReplyKind::Handoff, HANDOFF_TEXT.into());
    }
    let intent = &understood.intent;
    let declined = || Plan::Fixed(ReplyKind::Declined, DECLINE_TEXT.into());
    let spec = state.understanding.catalogue().get(&intent.name);
    match spec.map(|s| (s.action, s)) {
        Some((IntentAction::Reply, spec)) => {
            Plan::Fixed(ReplyKind::Smalltalk, spec.reply.clone().unwrap_or_default())
        }
        Some((IntentAction::Handoff, _)) => Plan::Fixed(ReplyKind::Handoff, HANDOFF_TEXT.into()),
        Some((IntentAction::Answer, spec)) => Plan::Search(
            std::iter::once(spec.name.clone())
                .chain(spec.tags.iter().cloned())
                .collect(),
        ),
        Some((IntentAction::Decline, _)) | None if intent.is_out_of_scope() => {
            let classifier_says_so = intent
                .alternatives
                .iter()
                .any(|a| a.name == OUT_OF_SCOPE && a.confidence >= 0.5);
            if classifier_says_so {
                declined()
            } else {
                Plan::Search(Vec::new())
            }
        }
        Some((IntentAction::Decline, _)) => declined(),
        None => Plan::Search(Vec::new()),
    }
}

/// Retrieves and answers from the knowledge base: no passage good enough
/// to answer from gives `no_answer`, otherwise the model phrases the best
/// one. Also returns the best passage's similarity, for gap tracking.
async fn answer_from_kb(
    state: &Arc<AppState>,
    live: &LiveSession,
    turn: &BotTurn,
    question: &str,
    embedding: Option<&[f32]>,
    prefer_tags: Vec<String>,
    stats: &mut AnswerStats,
) -> (BotReply, Option<f32>) {
    let started = Instant::now();
    let history = live.turns();
    let query = RetrievalQuery {
        text: question.to_string(),
        context: live.previous_question(),
        prefer_tags,
    };

    let embedding = match (&query.context, embedding) {
        (Some(context), _) if query.leans_on_context(&mut Analyzer::default()) => state
            .understanding
            .embed(&format!("{context}\n{question}"))
            .await
            .ok(),
        (_, embedding) => embedding.map(<[f32]>::to_vec),
    };
    let hits = {
        let corpus = state.kb.snapshot();
        let query = query.clone();
        let limit = state.config.retrieval_top_k * 2;
        tokio::task::spawn_blocking(move || {
            corpus.search(&query, embedding.as_deref(), RetrieverKind::Hybrid, limit)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    };
    stats.retrieval = started.elapsed();
    let rule = state.config.answerability();
    let hits = hits.unwrap_or_else(|e| {
        tracing::error!(error = %e, "knowledge-base search failed");
        Vec::new()
    });
    let best = hits.iter().map(|h| h.similarity).reduce(f32::max);
    let relevant: Vec<Retrieved> = hits
        .into_iter()
        .filter(|h| h.answers(&rule))
        .take(state.config.retrieval_top_k)
        .collect();
    tracing::debug!(
        hits = ?relevant.iter().map(|h| (&h.passage.id, h.relevance, h.similarity)).collect::<Vec<_>>(),
        "retrieved"
    );

    let reply = if relevant.is_empty() {
        BotReply::without_sources(turn.reply_id, ReplyKind::NoAnswer, NO_ANSWER_TEXT)
    } else {
        generate(state, live, turn, &history, &query, &relevant, stats).await
    };
    (reply, best)
}

/// Code, not the model, picks the answer's source among passages good
/// enough to answer from, and the sentences of it that answer the question:
/// the fallback reply, and what hit testing shows.
pub fn source_and_extract<'a>(
    query: &RetrievalQuery,
    hits: &'a [Retrieved],
) -> (&'a Passage, String) {
    let terms = query.subject_terms(&mut Analyzer::default());
    let candidates: Vec<(f32, &Passage)> = hits.iter().map(|h| (h.relevance, &h.passage)).collect();
    let source = &hits[grounding::best_source(&query.text, &candidates)].passage;
    (source, grounding::extractive(&query.text, &terms, source))
}

async fn generate(
    state: &AppState,
    live: &LiveSession,
    turn: &BotTurn,
    history: &[ChatTurn],
    query: &RetrievalQuery,
    hits: &[Retrieved],
    stats: &mut AnswerStats,
) -> BotReply {
    let (source, extract) = source_and_extract(query, hits);
    let extractive_reply = BotReply {
        reply_id: turn.reply_id,
        text: extract,
        citations: vec![Citation::of(source)],
        grounded: false,
        kind: ReplyKind::Extractive,
    };
    let request = prompt::build(
        history,
        &query.text,
        source,
        state.config.context_tokens,
        state.config.max_reply_tokens,
    );
    let mut events = match state.generator.start(request) {
        Ok(rx) => rx,
        Err(_busy) => {
            return BotReply::without_sources(turn.reply_id, ReplyKind::Busy, BUSY_TEXT);
        }
    };
    let started = Instant::now();
    let mut text = String::new();
    let mut failed = false;
    loop {
        let event = tokio::select! {
            // Dropping `events` on the way out stops the model.
            _ = turn.cancel.cancelled() => break,
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
        };
        match event {
            GenEvent::Token(token) => {
                stats.first_token.get_or_insert_with(|| started.elapsed());
                stats.tokens += 1;
                text.push_str(&token);
                live.publish(ServerFrame::Token {
                    reply_id: turn.reply_id,
                    text: token,
                });
            }
            GenEvent::Done { .. } => break,
            GenEvent::Failed(message) => {
                tracing::error!(error = %message, "generation failed");
                failed = true;
                break;
            }
        }
    }
    stats.generation = started.elapsed();
    let text = tidy(&text);
    if failed || text.is_empty() {
        return extractive_reply;
    }
    let source_text = format!(
        "{}\n{}\n{}",
        source.article_title, source.heading, source.text
    );
    let verdict = grounding::check(&text, &[&source_text], &query.text);
    if verdict.is_acceptable() {
        BotReply {
            reply_id: turn.reply_id,
            text,
            citations: vec![Citation::of(source)],
            grounded: true,
            kind: ReplyKind::Generated,
        }
    } else {
        let unsupported: Vec<String> = verdict.unsupported.iter().map(|f| f.to_string()).collect();
        tracing::info!(
            ?unsupported,
            on_topic = verdict.on_topic,
            misses_asked_fact = verdict.misses_asked_fact,
            draft = %text,
            "draft reply rejected; answering from the passage"
        );
        extractive_reply
    }
}

/// Trims the model's output, drops passage markers ("[1]") that mean
/// nothing to a customer, and cuts it at the first repeated sentence:
/// greedy decoding in small models tends to loop.
fn tidy(text: &str) -> String {
    static MARKER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\s?\[\d+\]").expect("valid regex"));
    let text = MARKER.replace_all(text, "");
    let text = text.trim();
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for sentence in text.split_inclusive(['.', '!', '?']) {
        let key = sentence.trim().to_ascii_lowercase();
        if key.is_empty() {
            continue;
        }
        if !seen.insert(key) {
            break;
        }
        out.push_str(sentence);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_cuts_loops() {
        assert_eq!(tidy("  You can. You can. Yes. "), "You can.");
        assert_eq!(tidy("No stop at end"), "No stop at end");
        assert_eq!(tidy("Returns take 30 days [1]."), "Returns take 30 days.");
    }
}
