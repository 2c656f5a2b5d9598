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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/insights")
            .wrap(from_fn(crate::console::auth::require_agent))
            .route("/overview", web::get().to(overview)),
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

/// The period's figures and the previous period's, to compare.
async fn overview(
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    if !(1..=MAX_DAYS).contains(&query.days) {
        return Err(ApiError::BadRequest(format!(
            "days must be 1 to {MAX_DAYS}"
        )));
    }
    let to = now_ms() + 1;
    let span = i64::from(query.days) * DAY_MS;
    let current = state.store.insight_figures(to - span, to).await?;
    let previous = state
        .store
        .insight_figures(to - 2 * span, to - span)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "days": query.days,
        "current": current,
        "previous": previous,
    })))
}
