//! The knowledge-base admin API under `/api/admin`: articles with versions,
//! bulk import and export, hit testing and gaps; and customers' data on
//! request (export, erasure, audit). Every write goes to the
//! store first and is live in chat when the response is sent.

mod articles;
pub mod auth;
mod import;
mod privacy;
pub mod search;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, web};

use crate::api::ApiError;
use crate::state::{AppState, ReloadError};

const OPENAPI: &str = include_str!("openapi.yaml");

pub fn routes(cfg: &mut web::ServiceConfig, max_upload_bytes: usize) {
    let json = web::JsonConfig::default()
        .limit(max_upload_bytes)
        .error_handler(move |e, _| json_error(e, max_upload_bytes).into());
    cfg.service(
        web::scope("/api/admin")
            .wrap(from_fn(require_admin))
            .app_data(json)
            .app_data(web::PayloadConfig::new(max_upload_bytes))
            .route("/openapi.yaml", web::get().to(openapi))
            .route("/articles", web::get().to(articles::list))
            .route("/articles", web::post().to(articles::create))
            .route("/articles/{id}", web::get().to(articles::get))
            .route("/articles/{id}", web::put().to(articles::update))
            .route("/articles/{id}", web::delete().to(articles::retire))
            .route("/articles/{id}/restore", web::post().to(articles::restore))
            .route("/articles/{id}/versions", web::get().to(articles::versions))
            .route(
                "/articles/{id}/versions/{version}",
                web::get().to(articles::version),
            )
            .route("/articles/{id}/diff", web::get().to(articles::diff))
            .route("/import", web::post().to(import::import))
            .route("/export", web::get().to(import::export))
            .route("/search", web::post().to(search::hit_test))
            .route("/gaps", web::get().to(search::gaps))
            .route("/preview", web::post().to(preview))
            .route("/privacy/conversations", web::get().to(privacy::export))
            .route("/privacy/conversations", web::delete().to(privacy::erase))
            .route("/privacy/audit", web::get().to(privacy::audit))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound("no such admin route".into()))
            })),
    );
}

/// An article change is stored but not live: the caller may retry.
impl From<ReloadError> for ApiError {
    fn from(e: ReloadError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

fn json_error(e: JsonPayloadError, limit: usize) -> ApiError {
    match e {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("send the body as application/json".into())
        }
        other => ApiError::BadRequest(format!("invalid JSON body: {other}")),
    }
}

/// Checks the token before anything reads the body, so an anonymous caller
/// learns nothing about what a valid request looks like.
async fn require_admin(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let public = request.path() == "/api/admin/openapi.yaml";
    let denied = match request.app_data::<web::Data<AppState>>() {
        _ if public => None,
        Some(state)
            if !crate::origin::allowed(request.request(), &state.config.allowed_origins) =>
        {
            Some(ApiError::ForbiddenOrigin)
        }
        Some(state) => auth::authorize(state, request.request())
            .await
            .and_then(|()| admin_write_allowed(state, &request))
            .err(),
        None => Some(ApiError::Internal("application state is missing".into())),
    };
    match denied {
        Some(e) => Ok(request.error_response(e).map_into_right_body()),
        None => Ok(next.call(request).await?.map_into_left_body()),
    }
}

/// A write (anything but reading, trying a question or previewing) takes
/// one from the address's `admin_writes_per_minute`.
fn admin_write_allowed(state: &AppState, request: &ServiceRequest) -> Result<(), ApiError> {
    let reads = request.method() == actix_web::http::Method::GET
        || ["/api/admin/search", "/api/admin/preview"].contains(&request.path());
    match state.limits.client_ip(request.request()) {
        Some(ip) if !reads => state.limits.admin_write(ip).map_err(|refused| {
            state.metrics.refused("admin_writes");
            ApiError::RateLimited(refused)
        }),
        _ => Ok(()),
    }
}

/// The API's OpenAPI document; public, like the API's shape.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    body: String,
}

/// The article body as customers will see it on its `/kb/{id}` page.
async fn preview(body: web::Json<PreviewBody>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "html": crate::knowledge::render_markdown(&body.body)
    }))
}
