//! What an agent does to a conversation: take it over from the bot (which
//! stops at once, mid-reply if need be), write to the customer, hand it
//! back, close it with an outcome.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::SignedIn;
use super::parse_id;
use crate::api::ApiError;
use crate::conversation::protocol::{HistoryEntry, ServerFrame, check_message_text};
use crate::state::AppState;
use crate::storage::StoredMessage;
use crate::storage::conversations::{Handler, Outcome, Status};

/// An agent's message obeys the rule for customers' messages.
fn check_text(state: &AppState, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    check_message_text(text, state.config.max_message_bytes)
        .map_err(|(_, message)| ApiError::BadRequest(message))?;
    Ok(text.to_string())
}

/// Applies a change to the live session (who answers, the frame the
/// customer sees), tells the consoles, and answers with the conversation.
async fn respond(
    state: &Arc<AppState>,
    session: uuid::Uuid,
    stored: Option<StoredMessage>,
    handler: Option<Handler>,
) -> Result<HttpResponse, ApiError> {
    if let Some(live) = state.hub.get(session) {
        if let Some(handler) = handler {
            live.set_handler(handler);
        }
        if let Some(frame) = stored.as_ref().and_then(ServerFrame::from_person) {
            live.publish(frame);
        }
    }
    state
        .events
        .changed(session, stored.as_ref().map(|m| m.seq));
    let summary = state
        .store
        .conversation(session)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no conversation {session}")))?;
    Ok(HttpResponse::Ok().json(json!({
        "conversation": super::view(state, summary).await?,
        "message": stored.as_ref().map(HistoryEntry::from),
    })))
}

pub async fn take_over(
    state: web::Data<AppState>,
    agent: web::ReqData<SignedIn>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let session = parse_id(&id)?;
    let name = agent.into_inner().name;
    let joined = state.store.take_over(session, name.clone()).await?;
    state.metrics.takeovers.inc();
    tracing::info!(session = %crate::telemetry::session_ref(session), agent = %name, "conversation taken over");
    let handler = Handler {
        status: Status::Agent,
        agent: Some(name),
        outcome: None,
    };
    respond(&state, session, joined, Some(handler)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    text: String,
}

pub async fn send(
    state: web::Data<AppState>,
    agent: web::ReqData<SignedIn>,
    id: web::Path<String>,
    body: web::Json<MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let session = parse_id(&id)?;
    let text = check_text(&state, &body.text)?;
    let stored = state
        .store
        .append_agent(session, agent.into_inner().name, text)
        .await?;
    if let Some(live) = state.hub.get(session) {
        live.push_turns([crate::generation::ChatTurn {
            speaker: crate::generation::Speaker::Assistant,
            text: stored.text.clone(),
        }]);
    }
    let mut response = respond(&state, session, Some(stored), None).await?;
    *response.status_mut() = actix_web::http::StatusCode::CREATED;
    Ok(response)
}

pub async fn hand_back(
    state: web::Data<AppState>,
    agent: web::ReqData<SignedIn>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    release(state.into_inner(), agent.into_inner().name, &id, None).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    outcome: Outcome,
}

pub async fn close(
    state: web::Data<AppState>,
    agent: web::ReqData<SignedIn>,
    id: web::Path<String>,
    body: web::Json<CloseBody>,
) -> Result<HttpResponse, ApiError> {
    let outcome = Some(body.outcome);
    release(state.into_inner(), agent.into_inner().name, &id, outcome).await
}

/// Hands the conversation back to the bot (no outcome) or closes it.
async fn release(
    state: Arc<AppState>,
    agent: String,
    id: &str,
    outcome: Option<Outcome>,
) -> Result<HttpResponse, ApiError> {
    let session = parse_id(id)?;
    let stored = state.store.release(session, agent.clone(), outcome).await?;
    let handler = match outcome {
        None => Handler::bot(),
        Some(outcome) => {
            tracing::info!(session = %crate::telemetry::session_ref(session), %agent, ?outcome, "conversation closed");
            Handler {
                status: Status::Closed,
                agent: Some(agent),
                outcome: Some(outcome),
            }
        }
    };
    respond(&state, session, Some(stored), Some(handler)).await
}

/// Shows the customer that the agent is typing; nothing is stored.
pub async fn typing(
    state: web::Data<AppState>,
    agent: web::ReqData<SignedIn>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = parse_id(&id)?;
    let name = agent.into_inner().name;
    let handler = state.store.handler(session).await?;
    if handler.status != Status::Agent || handler.agent.as_deref() != Some(name.as_str()) {
        return Err(ApiError::NotTaken);
    }
    if let Some(live) = state.hub.get(session) {
        live.publish(ServerFrame::Typing { agent: name });
    }
    Ok(HttpResponse::NoContent().finish())
}
