//! The agent console's API. For now a read-only list of conversations with
//! their flags and sentiment trend, behind the operator's bearer token
//! (`admin_token`); agent accounts come with the console page.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::api::{ApiError, Area, authorize};
use crate::chat::escalation::Escalation;
use crate::state::AppState;
use crate::storage::Flag;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/console/conversations", web::get().to(conversations));
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
) -> Result<HttpResponse, ApiError> {
    let state: Arc<AppState> = state.into_inner();
    authorize(&state, &request, Area::Console)?;
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
