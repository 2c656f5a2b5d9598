//! The insights API for the shop owner (agents' sign-in): how many
//! conversations the bot handled alone, why people were needed, how
//! customers rated them, what they asked and how they felt, for a period
//! and the one before it.

pub mod gap_recorder;
pub mod topics;

use std::collections::HashSet;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::api::ApiError;
use crate::state::AppState;
use crate::storage::insights::{ConversationFilter, ConversationRow};
use crate::storage::now_ms;
use crate::storage::outcomes::{ConversationOutcome, Judging};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/insights")
            .wrap(from_fn(crate::console::auth::require_agent))
            // A query that does not parse is a JSON `bad_request`, like
            // every other error of this API.
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::BadRequest(format!("invalid query: {e}")).into()
                }),
            )
            .route("/overview", web::get().to(overview))
            .route("/conversations", web::get().to(conversations))
            .route("/conversations.csv", web::get().to(conversations_csv))
            .route("/topics", web::get().to(rising_topics))
            .route("/gaps", web::get().to(knowledge_gaps)),
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

/// Keeps past days' sums ahead of the first look at a long period (and
/// the period before it); the server runs it at start and hourly.
pub async fn keep_past_days(state: std::sync::Arc<AppState>) {
    let started = std::time::Instant::now();
    let days = 2 * i64::from(MAX_DAYS);
    match state
        .store
        .keep_insight_days(days, judging(&state), topics::word_counter())
        .await
    {
        Ok(0) => {}
        Ok(counted) => tracing::info!(
            days = counted,
            ms = started.elapsed().as_millis() as u64,
            "insights: past days counted and kept"
        ),
        Err(e) => tracing::error!(error = %e, "insights: keeping past days failed"),
    }
}

/// A period and which of its conversations: the drill-down behind every
/// number of the insights page, as JSON or CSV.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default = "default_days")]
    days: u32,
    outcome: Option<ConversationOutcome>,
    flag: Option<String>,
    person: Option<bool>,
    rating: Option<i64>,
    /// A UTC day, `YYYY-MM-DD` (a point of the page's lines).
    date: Option<String>,
    intent: Option<String>,
    kind: Option<String>,
    product: Option<String>,
    aspect: Option<String>,
    /// A rising topic's terms, comma-separated: conversations in which a
    /// customer used any of them.
    topic: Option<String>,
    /// Conversation ids, comma-separated (a knowledge gap's).
    conversations: Option<String>,
}

impl ListQuery {
    fn period(&self) -> PeriodQuery {
        PeriodQuery { days: self.days }
    }

    fn filter(&self) -> Result<ConversationFilter, ApiError> {
        if let Some(date) = &self.date {
            let shape_ok = date.len() == 10
                && date.char_indices().all(|(i, c)| match i {
                    4 | 7 => c == '-',
                    _ => c.is_ascii_digit(),
                });
            if !shape_ok {
                return Err(ApiError::BadRequest(format!(
                    "date must be YYYY-MM-DD, not {date:?}"
                )));
            }
        }
        Ok(ConversationFilter {
            outcome: self.outcome,
            flag_reason: self.flag.clone(),
            person_joined: self.person,
            rating: self.rating,
            date: self.date.clone(),
            intent: self.intent.clone(),
            kind: self.kind.clone(),
            product: self.product.clone(),
            aspect: self.aspect.clone(),
        })
    }
}

/// Most conversations one drill-down returns as JSON (newest first); the
/// CSV has them all.
const LIST_LIMIT: usize = 200;

/// The period's conversations that match, newest first.
async fn matching(state: &AppState, query: &ListQuery) -> Result<Vec<ConversationRow>, ApiError> {
    let (to, span) = query.period().span_ms()?;
    let filter = query.filter()?;
    let mut rows = state
        .store
        .insight_conversations(to - span, to, judging(state))
        .await?;
    rows.retain(|row| filter.matches(row));
    if let Some(ids) = &query.conversations {
        let ids: HashSet<&str> = ids.split(',').collect();
        rows.retain(|row| ids.contains(row.session.as_str()));
    }
    if let Some(topic) = &query.topic {
        let terms: Vec<String> = topic.split(',').map(str::to_owned).collect();
        let using = state
            .store
            .conversations_using((to - span, to), terms, topics::word_counter())
            .await?;
        rows.retain(|row| using.contains(&row.session));
    }
    rows.reverse();
    Ok(rows)
}

/// Words customers use more this period than the one before, beyond the
/// change in traffic, grouped and with examples.
async fn rising_topics(
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let (to, span) = query.span_ms()?;
    let topics = topics::rising_topics(&state.store, to, span).await?;
    Ok(HttpResponse::Ok().json(json!({
        "days": query.days,
        "topics": topics,
    })))
}

/// Most gaps grouped for one period (the newest), and most groups shown.
pub const GAPS_READ: usize = 2000;
const GAPS_SHOWN: usize = 10;

/// The period's questions the bot could not answer, grouped as the admin
/// page groups them, most asked first: what to write an article about.
async fn knowledge_gaps(
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let (to, span) = query.span_ms()?;
    let gaps = state.store.gaps_since(to - span, GAPS_READ).await?;
    let questions = gaps.len();
    let mut groups = web::block(move || crate::admin::search::group_gaps(&gaps))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    groups.truncate(GAPS_SHOWN);
    Ok(HttpResponse::Ok().json(json!({
        "days": query.days,
        "questions": questions,
        "gaps": groups,
    })))
}

async fn conversations(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut rows = matching(&state, &query).await?;
    let total = rows.len();
    rows.truncate(LIST_LIMIT);
    Ok(HttpResponse::Ok().json(json!({
        "days": query.days,
        "total": total,
        "conversations": rows,
    })))
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

/// The period's conversations (all, or those a filter picks) as CSV, one
/// row each, newest first: what a shop opens in a spreadsheet (when, how it
/// went, the rating, what the customer raised).
async fn conversations_csv(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = matching(&state, &query).await?;
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
