//! Answering one customer message in a live session: understand it, let
//! the answer pipeline decide the reply (`answer::decide`), stream it
//! checked (`answer::compose`), then store, flag and publish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::answer::compose::{ComposeError, Generation, compose};
use crate::answer::{Context, Decision, DialogueState, Input, decide};
use crate::conversation::LiveSession;
use crate::conversation::events::Unanswered;
use crate::conversation::protocol::{ErrorCode, ServerFrame};
use crate::generation::{ChatTurn, GenerationError, Speaker};
use crate::state::AppState;
use crate::storage::FlagReason;
use crate::storage::conversations::{Handler, Outcome, Status};
use crate::storage::gaps::GapReason;
use crate::storage::{BotReply, ReplyKind, StoredMessage};
use crate::understanding::Understood;

/// Timings of one answer, for logs and the evaluation.
#[derive(Debug, Clone, Default)]
pub struct AnswerStats {
    /// Understanding plus deciding (search included).
    pub deciding: Duration,
    /// From the start of answering to the first words streamed.
    pub first_visible: Option<Duration>,
    /// From the start of answering to the model's first token (generated style).
    pub first_token: Option<Duration>,
    /// Time the model ran.
    pub generation: Duration,
    pub tokens: usize,
    /// The prompt's length in tokens, when the model reports it.
    pub prompt_tokens: Option<usize>,
}

/// The stored customer message being answered.
#[derive(Debug, Clone)]
pub struct Question {
    /// The widget's client id.
    pub id: String,
    pub seq: i64,
    pub text: String,
    /// The client's address, for per-address limits (none after a restart).
    pub ip: Option<std::net::IpAddr>,
}

/// Decides the reply to `text` in a conversation in `dialogue`, off the
/// executor: the one decision chat, the hit test and `kb search` share.
pub async fn decide_reply(
    state: &Arc<AppState>,
    text: String,
    understood: Option<Understood>,
    dialogue: DialogueState,
) -> Decision {
    let state = state.clone();
    // The blocking pool does not inherit the conversation's span.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _in_conversation = span.enter();
        let corpus = state.kb.snapshot();
        let ctx = Context {
            corpus: &corpus,
            encoder: state.understanding.encoder(),
            catalogue: state.understanding.catalogue(),
            products: state.understanding.product_catalogue(),
            rule: crate::knowledge::Answerability::from_config(&state.config),
            texts: &state.texts,
            orders: state.orders.is_some(),
        };
        decide(
            &Input {
                text: &text,
                understood: understood.as_ref(),
                dialogue: &dialogue,
            },
            &ctx,
        )
    })
    .await
    .expect("deciding a reply does not panic")
}

/// Answers `question` in `live`, publishing the reply as it is written and
/// then whole. `None` when a person has the conversation or took it over.
pub async fn answer(
    state: Arc<AppState>,
    live: Arc<LiveSession>,
    question: Question,
) -> Option<(StoredMessage, AnswerStats)> {
    let _one_at_a_time = live.reply_lock.lock().await;
    let started = Instant::now();
    let mut stats = AnswerStats::default();
    let reply_id = Uuid::new_v4();
    let cancel = live.bot_turn();
    let understood = understand(&state, &live, &question).await;
    if !live.handler().bot_answers() {
        // A person has the conversation: the message is theirs to answer.
        return None;
    }
    live.update_dialogue(|d| d.observe_customer(&question.text));
    let mut decision = decide_reply(
        &state,
        question.text.clone(),
        understood.clone(),
        live.dialogue(),
    )
    .await;
    // The shop's order system is asked here, in the async part, so the
    // decision itself stays pure.
    if decision.plan.order.is_some()
        && let Some(ip) = question.ip
        && state.limits.order_check(ip).is_err()
    {
        state.metrics.refused("order_checks");
        decision.plan = crate::answer::Plan::order_checks_spent(
            &state.texts,
            "too many order checks from this address",
        );
    }
    let shop = crate::answer::order_reply::look_up(
        &mut decision.plan,
        state.orders.as_deref(),
        &state.texts,
    )
    .await;
    if shop.refused == Some(crate::orders::ConnectorError::NotVerified) {
        // Stored, so the limit on guesses holds after a restart too.
        match state.store.add_failed_order_check(live.id).await {
            Ok(n) => live.update_dialogue(|d| d.failed_checks = n),
            Err(e) => {
                tracing::error!(error = %e, "cannot count the failed order check");
                live.update_dialogue(|d| d.failed_checks += 1);
            }
        }
    }
    if let Some(order) = shop.order
        && let Err(e) = state.store.record_order(live.id, order).await
    {
        tracing::error!(error = %e, "cannot keep the order looked up");
    }
    stats.deciding = started.elapsed();
    let plan = &decision.plan;
    let history = live.turns();
    let mut streamed = false;
    let composed = compose(
        plan,
        &question.text,
        state.config.answer_style,
        Generation {
            generator: state.generator.as_ref(),
            history: &history,
            history_budget: state.config.context_tokens,
            max_tokens: state.config.max_reply_tokens,
            redact: state.config.redact_for_model,
        },
        &cancel,
        |piece| {
            streamed = true;
            live.publish(ServerFrame::Token {
                reply_id,
                text: piece.to_string(),
            });
        },
    )
    .await;
    let reply =
        match composed {
            Ok(c) => Some({
                stats.tokens = c.tokens;
                stats.prompt_tokens = c.prompt_tokens;
                stats.first_visible = c.first_visible.map(|d| d + stats.deciding);
                stats.first_token = c.first_token.map(|d| d + stats.deciding);
                stats.generation = c.generation;
                BotReply {
                    reply_id,
                    text: c.text,
                    citations: plan.citations(),
                    grounded: c.grounded,
                    kind: c.kind,
                    offer: plan.offer.clone(),
                    quick_replies: plan.quick_replies.clone(),
                }
            }),
            Err(ComposeError::Generation(GenerationError::Busy)) => Some(
                BotReply::without_sources(reply_id, ReplyKind::Busy, state.texts.busy.clone()),
            ),
            Err(ComposeError::Cancelled) => None,
        };
    // A person took over while the bot was writing: the draft is withdrawn.
    let Some(reply) = reply.filter(|_| !cancel.is_cancelled() && live.handler().bot_answers())
    else {
        tracing::info!(%reply_id, "reply cancelled: a person took over");
        if streamed {
            live.publish(ServerFrame::ReplyCancelled { reply_id });
        }
        return None;
    };
    let previous_question = live.previous_question();
    let reply_to = question.id.clone();
    let kind = reply.kind;
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
    if kind != ReplyKind::Busy {
        live.update_dialogue(|d| d.after_plan(plan));
    }
    // Accepting the offer of a person is asking for one.
    let reason = match kind {
        ReplyKind::Handoff => Some(FlagReason::AskedForHuman),
        kind => live.observe_reply(kind),
    };
    if let Some(reason) = reason {
        flag(&state, &live, reason).await;
    }
    let best = decision.evidence.best_similarity;
    if let Some((reason, text)) = gap_of(&state, kind, best, &question.text, previous_question) {
        state.events.unanswered(Unanswered {
            session: live.id,
            reason,
            question: text,
            best,
            // A hand-off's gap is the question before it, not yet embedded.
            embedding: understood
                .as_ref()
                .filter(|_| reason != GapReason::HandedOff)
                .map(|u| u.embedding.clone()),
        });
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
    state.events.changed(live.id, Some(stored.seq));
    if let Some((event, text)) = shop.done {
        record_order_event(&state, &live, event, text).await;
    }
    if plan.solved {
        close_solved(&state, &live).await;
    }
    let m = &state.metrics;
    m.reply(kind.as_str());
    m.reply_seconds.observe(started.elapsed().as_secs_f64());
    if let Some(d) = stats.first_visible {
        m.first_visible_seconds.observe(d.as_secs_f64());
    }
    if let Some(d) = stats.first_token {
        m.first_token_seconds.observe(d.as_secs_f64());
    }
    m.model_tokens.inc_by(stats.tokens as u64);
    m.model_seconds.inc_by(stats.generation.as_secs_f64());
    tracing::info!(
        seq = stored.seq,
        kind = kind.as_str(),
        why = %plan.why,
        intent = understood.as_ref().map(|u| u.intent.name.as_str()),
        sentiment = understood.as_ref().map(|u| u.sentiment.score),
        tokens = stats.tokens,
        deciding_ms = stats.deciding.as_millis() as u64,
        first_visible_ms = stats.first_visible.map(|d| d.as_millis() as u64),
        total_ms = started.elapsed().as_millis() as u64,
        "replied"
    );
    Some((stored, stats))
}

/// Closes the conversation as solved by the customer; the widget then asks
/// for a rating, as after a person closes it.
async fn close_solved(state: &AppState, live: &LiveSession) {
    let text = state.texts.rating.solved.clone();
    match state.store.close_solved(live.id, text).await {
        Ok(Some(stored)) => {
            live.set_handler(Handler {
                status: Status::Closed,
                agent: None,
                outcome: Some(Outcome::Resolved),
            });
            if let Some(frame) = ServerFrame::from_person(&stored) {
                live.publish(frame);
            }
            state.events.changed(live.id, Some(stored.seq));
            tracing::info!(session = %crate::telemetry::session_ref(live.id), "conversation closed as solved by the customer");
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot close the conversation"),
    }
}

/// Stores what the shop did in the chat as a transcript event, for the
/// widget and the console. The reply already told the customer.
async fn record_order_event(
    state: &AppState,
    live: &LiveSession,
    event: crate::storage::conversations::ConversationEvent,
    text: String,
) {
    match state.store.append_order_event(live.id, event, text).await {
        Ok(stored) => {
            if let Some(frame) = ServerFrame::from_person(&stored) {
                live.publish(frame);
            }
            state.events.changed(live.id, Some(stored.seq));
        }
        Err(e) => tracing::error!(error = %e, "cannot store the order event"),
    }
}

/// Classifies the message, stores what it means, and flags the session
/// when it should be. A failure here costs the reply its steering, not the
/// customer their answer.
async fn understand(
    state: &Arc<AppState>,
    live: &LiveSession,
    question: &Question,
) -> Option<Understood> {
    let understood = match state.understand(&question.text).await {
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
    let wants_person =
        crate::answer::wants_a_person(&understood, &question.text, state.understanding.catalogue());
    if let Some(reason) = live.observe_message(&understood, wants_person) {
        flag(state, live, reason).await;
    }
    state.events.changed(live.id, Some(question.seq));
    Some(understood)
}

/// Flags the conversation for a person and leaves them a summary of it.
async fn flag(state: &AppState, live: &LiveSession, reason: FlagReason) {
    match state.store.flag(live.id, reason).await {
        Ok(true) => {
            state.metrics.flagged(reason.as_str());
            tracing::info!(session = %crate::telemetry::session_ref(live.id), reason = reason.as_str(), "conversation flagged")
        }
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, "cannot flag conversation");
            return;
        }
    }
    let summary = match state.store.transcript(live.id).await {
        Ok(messages) => crate::conversation::handoff_note::summarize(
            &messages,
            reason,
            state.understanding.catalogue(),
        ),
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
