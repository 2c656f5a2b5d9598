//! The knowledge-base admin API under `/api/admin`: articles with versions,
//! bulk import and export, hit testing and gaps. Every write goes to the
//! store first and is live in chat when the response is sent.

mod articles;
mod import;
mod search;

use actix_web::error::JsonPayloadError;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::{ApiError, Area};
use crate::state::AppState;

const OPENAPI: &str = include_str!("openapi.yaml");

pub fn routes(cfg: &mut web::ServiceConfig, max_upload_bytes: usize) {
    let json = web::JsonConfig::default()
        .limit(max_upload_bytes)
        .error_handler(move |e, _| json_error(e, max_upload_bytes).into());
    cfg.service(
        web::scope("/api/admin")
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
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound("no such admin route".into()))
            })),
    );
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

fn authorize(state: &AppState, request: &HttpRequest) -> Result<(), ApiError> {
    crate::api::authorize(state, request, Area::Admin)
}

/// The API's OpenAPI document; public, like the API's shape.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}
