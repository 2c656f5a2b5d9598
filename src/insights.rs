//! The insights API for the shop owner (agents' sign-in): how many
//! conversations the bot handled alone, why people were needed, how
//! customers rated them, what they asked and how they felt, for a period
//! and the one before it.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::api::ApiError;
use crate::state::AppState;
use crate::storage::now_ms;
use crate::storage::outcomes::Judging;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/insights")
            .wrap(from_fn(crate::console::auth::require_agent))
            .route("/overview", web::get().to(overview))
            .route("/conversations.csv", web::get().to(conversations_csv)),
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    /// The period's length, ending now.
    #[serde(default = "default_days")]
    days: u32,
}

fn default_days() -> u32 {
    7
}

/// Longest period asked for at once.
const MAX_DAYS: u32 = 366;
const DAY_MS: i64 = 86_400_000;

impl PeriodQuery {
    /// The period's length in milliseconds, ending now (`to`).
    fn span_ms(&self) -> Result<(i64, i64), ApiError> {
        if !(1..=MAX_DAYS).contains(&self.days) {
            return Err(ApiError::BadRequest(format!(
                "days must be 1 to {MAX_DAYS}"
            )));
        }
        Ok((now_ms() + 1, i64::from(self.days) * DAY_MS))
    }
}

/// A conversation quiet for `abandoned_after_mins` is over.
fn judging(state: &AppState) -> Judging {
    Judging::now(state.config.abandoned_after_mins)
}

/// The period's figures and the previous period's, to compare.
async fn overview(
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let (to, span) = query.span_ms()?;
    let judging = judging(&state);
    let current = state.store.insight_figures(to - span, to, judging).await?;
    let previous = state
        .store
        .insight_figures(to - 2 * span, to - span, judging)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "days": query.days,
        "current": current,
        "previous": previous,
    })))
}

/// The period's conversations as CSV, one row each: what a shop opens in a
/// spreadsheet (when, how it went, the rating, what the customer raised).
async fn conversations_csv(
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let (to, span) = query.span_ms()?;
    let rows = state
        .store
        .insight_conversations(to - span, to, judging(&state))
        .await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        writer
            .serialize(row)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    if rows.is_empty() {
        writer
            .write_record(CSV_HEADER)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"conversations-{}d.csv\"", query.days),
        ))
        .body(body))
}

/// The header `csv` writes from `ConversationRow`'s fields, for an empty
/// period.
const CSV_HEADER: [&str; 13] = [
    "session",
    "started",
    "customer_messages",
    "person_joined",
    "flag_reason",
    "outcome",
    "rating",
    "rating_comment",
    "sentiment",
    "intents",
    "kinds",
    "products",
    "aspects",
];
