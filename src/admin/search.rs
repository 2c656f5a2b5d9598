//! Hit testing ("what would the bot do with this question?") and the gaps
//! report ("what did customers ask that the knowledge base could not answer?").

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::answer::DialogueState;
use crate::api::ApiError;
use crate::chat::responder::decide_reply;
use crate::state::AppState;
use crate::storage::gaps::{Gap, GapReason};
use crate::understanding::vectors::cosine;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    query: String,
    /// A conversation to ask it in: the reply is the one chat would give
    /// there (its pending offer, topic and what the customer said).
    #[serde(default)]
    session_id: Option<uuid::Uuid>,
    /// Or the customer's previous message, asked first in a new conversation.
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// "What would the bot do with this question?": the decision of the same
/// pipeline chat runs, with the passages it weighed.
pub async fn hit_test(
    state: web::Data<AppState>,
    body: web::Json<SearchBody>,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let body = body.into_inner();
    let text = checked_query(&state, &body.query)?;
    let understand = |text: String| {
        let state = state.clone();
        async move {
            state
                .understand(&text)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))
        }
    };
    let dialogue = match (body.session_id, body.context) {
        (Some(id), _) => DialogueState::from_history(&state.store.transcript(id).await?),
        (None, Some(context)) => {
            let context = checked_query(&state, &context)?;
            let understood = understand(context.clone()).await?;
            let mut dialogue = DialogueState::default();
            dialogue.observe_customer(&context);
            let first = decide_reply(&state, context, Some(understood), dialogue.clone()).await;
            dialogue.after_plan(&first.plan);
            dialogue
        }
        (None, None) => DialogueState::default(),
    };
    let understood = understand(text.clone()).await?;
    let mut dialogue = dialogue;
    dialogue.observe_customer(&text);
    let decision = decide_reply(&state, text.clone(), Some(understood.clone()), dialogue).await;
    let plan = &decision.plan;
    let citations = plan.citations();
    let limit = body.limit.unwrap_or(10).clamp(1, 50);
    let passages = &decision.evidence.passages[..decision.evidence.passages.len().min(limit)];
    Ok(HttpResponse::Ok().json(json!({
        "query": text,
        "intent": understood.intent,
        "sentiment": understood.sentiment,
        "would_answer": plan.answers_from_kb(),
        "reply": {
            "kind": plan.kind,
            "text": plan.text(),
            "citation": citations.first(),
            "citations": citations,
            "quick_replies": plan.quick_replies,
            "why": plan.why,
        },
        "searched": decision.evidence.searched,
        "rule": crate::knowledge::Answerability::from_config(&state.config),
        "passages": passages,
    })))
}

fn checked_query(state: &AppState, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > state.config.max_message_bytes {
        return Err(ApiError::Invalid(crate::knowledge::FieldErrors(
            [(
                "query",
                format!(
                    "must be 1 to {} bytes of text",
                    state.config.max_message_bytes
                ),
            )]
            .into(),
        )));
    }
    Ok(text.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapsQuery {
    /// How many recent gaps to group.
    #[serde(default = "default_gap_window")]
    window: usize,
}

fn default_gap_window() -> usize {
    1000
}

/// Questions this similar (cosine of embeddings) are one gap.
const SAME_GAP: f32 = 0.75;

/// A group of similar unanswered questions.
#[derive(Debug, Serialize, PartialEq)]
pub struct GapGroup {
    /// The group's first (most recent) question.
    pub question: String,
    pub count: usize,
    pub reasons: BTreeMap<GapReason, usize>,
    /// Up to five distinct wordings.
    pub examples: Vec<String>,
    pub last_at_ms: i64,
    pub sessions: usize,
    /// The ids of those conversations, newest first, at most 50: what a
    /// click on the count lists.
    pub conversations: Vec<String>,
}

/// Most conversation ids a gap group lists.
const GAP_CONVERSATIONS: usize = 50;

/// A group being formed: its first question's embedding, and who asked.
struct Forming<'a> {
    group: GapGroup,
    embedding: Option<&'a [f32]>,
    sessions: Vec<uuid::Uuid>,
}

/// Groups gaps (newest first) greedily: each joins the first group whose
/// first question is similar enough; larger groups come first.
pub fn group_gaps(gaps: &[Gap]) -> Vec<GapGroup> {
    let mut groups: Vec<Forming<'_>> = Vec::new();
    for gap in gaps {
        let key = normalise(&gap.question);
        let found = groups
            .iter_mut()
            .find(|f| match (gap.embedding.as_deref(), f.embedding) {
                (Some(a), Some(b)) => cosine(a, b) >= SAME_GAP,
                _ => normalise(&f.group.question) == key,
            });
        match found {
            Some(Forming {
                group, sessions, ..
            }) => {
                group.count += 1;
                *group.reasons.entry(gap.reason).or_default() += 1;
                if group.examples.len() < 5 && !group.examples.iter().any(|e| normalise(e) == key) {
                    group.examples.push(gap.question.clone());
                }
                if !sessions.contains(&gap.session_id) {
                    sessions.push(gap.session_id);
                }
            }
            None => groups.push(Forming {
                group: GapGroup {
                    question: gap.question.clone(),
                    count: 1,
                    reasons: [(gap.reason, 1)].into(),
                    examples: vec![gap.question.clone()],
                    last_at_ms: gap.at_ms,
                    sessions: 0,
                    conversations: Vec::new(),
                },
                embedding: gap.embedding.as_deref(),
                sessions: vec![gap.session_id],
            }),
        }
    }
    let mut out: Vec<GapGroup> = groups
        .into_iter()
        .map(|f| GapGroup {
            sessions: f.sessions.len(),
            conversations: f
                .sessions
                .iter()
                .take(GAP_CONVERSATIONS)
                .map(uuid::Uuid::to_string)
                .collect(),
            ..f.group
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_at_ms.cmp(&a.last_at_ms)));
    out
}

fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .trim_end_matches(['?', '!', '.'])
        .to_string()
}

pub async fn gaps(
    state: web::Data<AppState>,
    query: web::Query<GapsQuery>,
) -> Result<HttpResponse, ApiError> {
    let gaps = state
        .store
        .recent_gaps(query.window.clamp(1, 10_000))
        .await?;
    let total = gaps.len();
    let groups = group_gaps(&gaps);
    Ok(HttpResponse::Ok().json(json!({"gaps": groups, "questions": total})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(q: &str, e: Option<Vec<f32>>, reason: GapReason, at_ms: i64) -> Gap {
        Gap {
            session_id: uuid::Uuid::nil(),
            question: q.into(),
            reason,
            score: None,
            embedding: e,
            at_ms,
        }
    }

    #[test]
    fn similar_questions_group_and_big_groups_come_first() {
        let gaps = [
            gap(
                "Do you sell gift wrap?",
                Some(vec![1.0, 0.0]),
                GapReason::NoAnswer,
                5,
            ),
            gap(
                "Weather tomorrow?",
                Some(vec![0.0, 1.0]),
                GapReason::Declined,
                4,
            ),
            gap(
                "can you gift wrap it",
                Some(vec![0.8, 0.6]),
                GapReason::LowScore,
                3,
            ),
            gap("do you sell gift wrap", None, GapReason::HandedOff, 2),
        ];
        let groups = group_gaps(&gaps);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].question, "Do you sell gift wrap?");
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].examples.len(), 2, "same wording counted once");
        assert_eq!(groups[0].reasons[&GapReason::HandedOff], 1);
        assert_eq!(groups[1].count, 1);
    }
}
