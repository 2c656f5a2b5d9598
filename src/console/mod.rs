//! The agent console's API under `/api/console`: sign-in, the live list of
//! conversations, transcripts, and taking a conversation over from the bot.
//! Changes reach every open console through `live::ConsoleHub`, which
//! listens to the conversation event bus (`chat::events`).

pub mod actions;
pub mod auth;
pub mod feed;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::api::ApiError;
use crate::conversation::escalation::Escalation;
use crate::conversation::protocol::HistoryEntry;
use crate::state::AppState;
use crate::storage::conversations::{Handler, Status};
use crate::storage::outcomes::Judging;
use crate::storage::{ConversationListRow, Flag, Role, StoreError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|e, _| ApiError::BadRequest(format!("invalid JSON body: {e}")).into());
    cfg.service(
        web::scope("/api/console")
            .wrap(from_fn(auth::require_agent))
            .app_data(json)
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/me", web::get().to(auth::me))
            .route("/ws", web::get().to(feed::route))
            .route("/conversations", web::get().to(conversations))
            .route("/conversations/{id}", web::get().to(conversation))
            .route(
                "/conversations/{id}/customer",
                web::get().to(customer_profile),
            )
            .route(
                "/conversations/{id}/takeover",
                web::post().to(actions::take_over),
            )
            .route(
                "/conversations/{id}/messages",
                web::post().to(actions::send),
            )
            .route(
                "/conversations/{id}/handback",
                web::post().to(actions::hand_back),
            )
            .route("/conversations/{id}/close", web::post().to(actions::close))
            .route(
                "/conversations/{id}/typing",
                web::post().to(actions::typing),
            )
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound("no such console route".into()))
            })),
    );
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

/// One conversation as the console shows it in its list.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub session_id: Uuid,
    pub created_at_ms: i64,
    pub flagged: bool,
    pub flag: Option<Flag>,
    /// What the bot gathered for the agent when it flagged the conversation.
    pub summary: Option<String>,
    /// The last few customer messages' sentiment scores, oldest first.
    pub sentiment_trend: Vec<f32>,
    pub last_message: Option<String>,
    pub last_message_at_ms: Option<i64>,
    pub last_role: Option<Role>,
    /// Since when the customer has been waiting for an answer: their last
    /// message, when it is the latest and the conversation is open.
    pub waiting_since_ms: Option<i64>,
    /// `bot`, `agent` (a person has it) or `closed`.
    pub status: Status,
    pub agent: Option<String>,
    pub outcome: Option<crate::storage::conversations::Outcome>,
    /// A customer has the chat open right now.
    pub online: bool,
    /// Who the shop's site says the customer is (a signed identity).
    pub customer: Option<crate::storage::shop_records::Customer>,
}

pub async fn view(
    state: &AppState,
    s: ConversationListRow,
) -> Result<ConversationView, StoreError> {
    let live = state.hub.get(s.session_id);
    let sentiment_trend = match &live {
        Some(live) => live.sentiment_trend(),
        None => {
            let recent = state.store.recent_messages(s.session_id, 20).await?;
            Escalation::from_history(&recent).trend()
        }
    };
    let Handler {
        status,
        agent,
        outcome,
    } = s.handler;
    let waiting = s.last_role == Some(Role::Customer) && status != Status::Closed;
    Ok(ConversationView {
        session_id: s.session_id,
        created_at_ms: s.created_at_ms,
        flagged: s.flag.is_some(),
        flag: s.flag,
        summary: s.summary,
        sentiment_trend,
        waiting_since_ms: s.last_message_at_ms.filter(|_| waiting),
        last_message: s.last_message,
        last_message_at_ms: s.last_message_at_ms,
        last_role: s.last_role,
        status,
        agent,
        outcome,
        online: live.is_some_and(|l| l.is_connected()),
        customer: s.customer,
    })
}

/// Flagged conversations waiting for a person first, then the most recently active.
async fn conversations(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let summaries = state.store.conversations(query.limit.clamp(1, 500)).await?;
    let mut views = Vec::with_capacity(summaries.len());
    for s in summaries {
        views.push(view(&state, s).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "conversations": views })))
}

pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no conversation {id:?}")))
}

/// The whole transcript, each message with its intent, sentiment and
/// citations, and the orders looked up in it as the shop last described them.
async fn conversation(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let state: Arc<AppState> = state.into_inner();
    let id = parse_id(&id)?;
    let summary = state
        .store
        .conversation(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no conversation {id}")))?;
    let messages: Vec<HistoryEntry> = state
        .store
        .transcript(id)
        .await?
        .iter()
        .map(HistoryEntry::from)
        .collect();
    let orders = state.store.conversation_orders(id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "conversation": view(&state, summary).await?,
        "messages": messages,
        "orders": orders,
    })))
}

/// The customer of a conversation: their conversations, sentiment over
/// time, what they raised, their ratings and the at-risk heuristic.
async fn customer_profile(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let judging = Judging::now(state.config.abandoned_after_mins);
    let profile = state
        .store
        .customer_profile(id, judging)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no conversation {id}")))?;
    Ok(HttpResponse::Ok().json(profile))
}
