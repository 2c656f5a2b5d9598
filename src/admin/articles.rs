//! Article routes: list, get, create, update, retire, restore, versions, diff.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::author;
use crate::api::ApiError;
use crate::knowledge::{ArticleInput, FieldErrors};
use crate::state::AppState;
use crate::storage::articles::{ArticleFilter, ArticleVersion};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default = "first_page")]
    page: usize,
    #[serde(default = "default_per_page")]
    per_page: usize,
    tag: Option<String>,
    q: Option<String>,
    #[serde(default)]
    include_retired: bool,
}

fn first_page() -> usize {
    1
}

fn default_per_page() -> usize {
    20
}

/// An article in a listing: everything but the body, which can be long.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    id: &'a str,
    version: i64,
    title: &'a str,
    tags: &'a [String],
    url: &'a Option<String>,
    retired: bool,
    excerpt: String,
    updated_at_ms: i64,
    updated_by: &'a str,
}

fn summary(v: &ArticleVersion) -> Summary<'_> {
    let mut excerpt: String = v.body.chars().take(160).collect();
    if excerpt.len() < v.body.len() {
        excerpt.push('…');
    }
    Summary {
        id: &v.id,
        version: v.version,
        title: &v.title,
        tags: &v.tags,
        url: &v.url,
        retired: v.retired,
        excerpt,
        updated_at_ms: v.at_ms,
        updated_by: &v.author,
    }
}

pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let per_page = q.per_page.clamp(1, 200);
    let page = q.page.max(1);
    let (articles, total) = state
        .store
        .list_articles(ArticleFilter {
            tag: q.tag.filter(|t| !t.is_empty()),
            text: q.q.filter(|t| !t.trim().is_empty()),
            include_retired: q.include_retired,
            offset: (page - 1) * per_page,
            limit: per_page,
        })
        .await?;
    let summaries: Vec<Summary<'_>> = articles.iter().map(summary).collect();
    Ok(HttpResponse::Ok().json(json!({
        "articles": summaries,
        "total": total,
        "page": page,
        "per_page": per_page,
    })))
}

async fn current(state: &AppState, id: &str) -> Result<ArticleVersion, ApiError> {
    state
        .store
        .article(id.to_string())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no article {id:?}")))
}

pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(current(&state, &id).await?))
}

pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<ArticleInput>,
) -> Result<HttpResponse, ApiError> {
    let article = body.into_inner().validate().map_err(ApiError::Invalid)?;
    let state = state.into_inner();
    let created = state
        .store
        .create_article(article, author(&request))
        .await?;
    state.reload_kb().await?;
    tracing::info!(article = %created.id, version = created.version, "article created");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/admin/articles/{}", created.id)))
        .json(created))
}

/// An edit: the new content and the version it was made from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    version: Option<i64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    questions: Vec<String>,
}

pub async fn update(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = ArticleInput {
        id: Some(id.into_inner()),
        title: body.title,
        body: body.body,
        tags: body.tags,
        url: body.url,
        questions: body.questions,
    };
    // Every field's problem in one answer, the missing version included.
    let (expected, article) = match (body.version, input.validate()) {
        (Some(version), Ok(article)) => (version, article),
        (version, result) => {
            let mut errors = result.err().unwrap_or_default();
            if version.is_none() {
                errors.0.insert(
                    "version",
                    "required: the version this edit was made from".into(),
                );
            }
            return Err(ApiError::Invalid(errors));
        }
    };
    let state = state.into_inner();
    let updated = state
        .store
        .update_article(article, expected, author(&request))
        .await?;
    state.reload_kb().await?;
    Ok(HttpResponse::Ok().json(updated))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    version: Option<i64>,
}

/// `DELETE`: retires the article. It stops being answered from, and keeps
/// its history; `?version=` guards against retiring an edit not yet seen.
pub async fn retire(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    set_retired(state, request, id, query.version, true).await
}

pub async fn restore(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    set_retired(state, request, id, query.version, false).await
}

async fn set_retired(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    expected: Option<i64>,
    retire: bool,
) -> Result<HttpResponse, ApiError> {
    let state: Arc<AppState> = state.into_inner();
    let changed = state
        .store
        .set_retired(id.into_inner(), retire, expected, author(&request))
        .await?;
    state.reload_kb().await?;
    Ok(HttpResponse::Ok().json(changed))
}

pub async fn versions(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let versions = state.store.article_versions(id.to_string()).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("there is no article {id:?}")));
    }
    Ok(HttpResponse::Ok().json(json!({ "versions": versions })))
}

async fn find_version(
    state: &AppState,
    id: &str,
    version: i64,
) -> Result<ArticleVersion, ApiError> {
    state
        .store
        .article_versions(id.to_string())
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| ApiError::NotFound(format!("article {id:?} has no version {version}")))
}

pub async fn version(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, version) = path.into_inner();
    Ok(HttpResponse::Ok().json(find_version(&state, &id, version).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: i64,
    to: Option<i64>,
}

/// What changed between two versions: each field that differs, and the
/// body as a unified diff.
pub async fn diff(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let from = find_version(&state, &id, query.from).await?;
    let to = match query.to {
        Some(v) => find_version(&state, &id, v).await?,
        None => current(&state, &id).await?,
    };
    let body_diff = similar::TextDiff::from_lines(&from.body, &to.body)
        .unified_diff()
        .context_radius(2)
        .header(&format!("v{}", from.version), &format!("v{}", to.version))
        .to_string();
    let mut changed = FieldErrors::default();
    let mut note = |field: &'static str, differs: bool| {
        if differs {
            changed.0.insert(field, "changed".into());
        }
    };
    note("title", from.title != to.title);
    note("body", from.body != to.body);
    note("tags", from.tags != to.tags);
    note("url", from.url != to.url);
    note("questions", from.questions != to.questions);
    note("retired", from.retired != to.retired);
    Ok(HttpResponse::Ok().json(json!({
        "id": from.id,
        "from": from.version,
        "to": to.version,
        "changed": changed.0.keys().collect::<Vec<_>>(),
        "title": [from.title, to.title],
        "tags": [from.tags, to.tags],
        "url": [from.url, to.url],
        "questions": [from.questions, to.questions],
        "retired": [from.retired, to.retired],
        "body_diff": body_diff,
    })))
}
