//! The agent console's API. For now a read-only list of conversations with
//! their flags and sentiment trend, behind the operator's bearer token
//! (`admin_token`); agent accounts come with the console page.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::chat::escalation::Escalation;
use crate::state::AppState;
use crate::storage::{Flag, StoreError};

/// Console API errors, each with a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the console API is disabled: set `admin_token` (FRONTDESK_ADMIN_TOKEN)")]
    Disabled,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
}

impl ConsoleError {
    fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "console_disabled",
            Self::Unauthorized => "unauthorized",
            Self::Store(_) => "internal",
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Disabled => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Store(e) = self {
            tracing::error!(error = %e, "console request failed");
        }
        HttpResponse::build(self.status_code())
            .json(json!({"code": self.code(), "message": self.to_string()}))
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/console/conversations", web::get().to(conversations));
}

fn authorize(state: &AppState, request: &HttpRequest) -> Result<(), ConsoleError> {
    let expected = state
        .config
        .admin_token
        .as_deref()
        .ok_or(ConsoleError::Disabled)?;
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compared in constant time so the token cannot be guessed byte by byte.
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ConsoleError::Unauthorized),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

#[derive(Debug, Serialize)]
struct ConversationView {
    session_id: Uuid,
    created_at_ms: i64,
    flagged: bool,
    flag: Option<Flag>,
    /// The last few customer messages' sentiment scores, oldest first.
    sentiment_trend: Vec<f32>,
    last_message: Option<String>,
    last_message_at_ms: Option<i64>,
    /// A customer has the chat open right now.
    online: bool,
}

/// Flagged conversations first, then the most recently active.
async fn conversations(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let state: Arc<AppState> = state.into_inner();
    authorize(&state, &request)?;
    let summaries = state.store.conversations(query.limit.clamp(1, 500)).await?;
    let mut views = Vec::with_capacity(summaries.len());
    for s in summaries {
        let live = state.hub.get(s.session_id);
        let sentiment_trend = match &live {
            Some(live) => live.sentiment_trend(),
            None => {
                let recent = state.store.recent_messages(s.session_id, 20).await?;
                Escalation::from_history(&recent).trend()
            }
        };
        views.push(ConversationView {
            session_id: s.session_id,
            created_at_ms: s.created_at_ms,
            flagged: s.flag.is_some(),
            flag: s.flag,
            sentiment_trend,
            last_message: s.last_message,
            last_message_at_ms: s.last_message_at_ms,
            online: live.is_some_and(|l| l.is_connected()),
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "conversations": views })))
}
