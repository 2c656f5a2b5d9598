//! Bulk import (all or nothing per batch, idempotent) and JSON-lines export.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::author;
use crate::api::ApiError;
use crate::knowledge::ArticleInput;
use crate::knowledge::import::{ImportFile, parse_file};
use crate::state::AppState;
use crate::storage::articles::{ArticleFilter, ImportStatus};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    files: Vec<ImportFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Report what would happen without writing anything.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum ItemStatus {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

#[derive(Debug, Serialize)]
struct ItemReport {
    source: String,
    id: Option<String>,
    status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    created: usize,
    updated: usize,
    unchanged: usize,
    rejected: usize,
}

#[derive(Debug, Serialize)]
struct ImportReport {
    applied: bool,
    counts: Counts,
    items: Vec<ItemReport>,
}

pub async fn import(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<ImportQuery>,
    body: web::Json<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let files = body.into_inner().files;
    if files.is_empty() {
        return Err(ApiError::BadRequest("the batch has no files".into()));
    }
    // Parsing (HTML above all: a large nested page took seconds) is CPU
    // work: off the HTTP worker, which would stall every other request.
    let parsed = web::block(move || files.iter().flat_map(parse_file).collect::<Vec<_>>())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut items = Vec::new();
    let mut articles = Vec::new();
    let mut first_source: HashMap<String, String> = HashMap::new();
    for item in parsed {
        let (status, reason) = match item.article {
            Ok(article) => match first_source.get(&article.id) {
                Some(first) => (
                    ItemStatus::Rejected,
                    Some(format!("duplicate id {:?}: also in {first}", article.id)),
                ),
                None => {
                    first_source.insert(article.id.clone(), item.source.clone());
                    articles.push(article);
                    (ItemStatus::Unchanged, None)
                }
            },
            Err(reason) => (ItemStatus::Rejected, Some(reason)),
        };
        items.push(ItemReport {
            source: item.source,
            id: item.id,
            status,
            version: None,
            reason,
        });
    }
    let rejected = items.iter().any(|i| i.status == ItemStatus::Rejected);
    let apply = !rejected && !query.dry_run;
    let state = state.into_inner();
    // Run even when nothing will be kept, so the report says what each
    // valid item would have done.
    let outcomes = state
        .store
        .import_articles(articles, author(&request), apply)
        .await?;
    let mut outcomes = outcomes.into_iter();
    let mut counts = Counts::default();
    for item in &mut items {
        if item.status != ItemStatus::Rejected
            && let Some((status, version)) = outcomes.next()
        {
            item.status = match status {
                ImportStatus::Created => ItemStatus::Created,
                ImportStatus::Updated => ItemStatus::Updated,
                ImportStatus::Unchanged => ItemStatus::Unchanged,
            };
            item.version = Some(version.version);
        }
        match item.status {
            ItemStatus::Created => counts.created += 1,
            ItemStatus::Updated => counts.updated += 1,
            ItemStatus::Unchanged => counts.unchanged += 1,
            ItemStatus::Rejected => counts.rejected += 1,
        }
    }
    let report = ImportReport {
        applied: apply,
        counts,
        items,
    };
    if rejected {
        let report =
            serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
        return Err(ApiError::ImportRejected(report));
    }
    if apply && (report.counts.created + report.counts.updated) > 0 {
        state.reload_kb().await?;
    }
    tracing::info!(
        created = report.counts.created,
        updated = report.counts.updated,
        unchanged = report.counts.unchanged,
        applied = apply,
        "import"
    );
    Ok(HttpResponse::Ok().json(report))
}

/// The active articles as JSON lines, in the import format.
pub async fn export(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (articles, _) = state
        .store
        .list_articles(ArticleFilter {
            limit: usize::MAX >> 1,
            ..Default::default()
        })
        .await?;
    let mut out = String::new();
    for v in &articles {
        let line = serde_json::to_string(&ArticleInput::from(&v.article()))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"knowledge-base.jsonl\"",
        ))
        .body(out))
}
