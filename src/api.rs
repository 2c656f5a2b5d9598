//! What the operator APIs (`/api/admin`, `/api/console`) share: bearer-token
//! authorisation and one error type, mapped once to HTTP statuses and
//! stable JSON codes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::knowledge::FieldErrors;
use crate::state::{AppState, StartupError};
use crate::storage::StoreError;
use crate::storage::articles::ArticleWriteError;

/// Which API a request is for; says which `*_disabled` code an unset token gives.
#[derive(Debug, Clone, Copy)]
pub enum Area {
    Admin,
    Console,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("this API is disabled: set `admin_token` (FRONTDESK_ADMIN_TOKEN)")]
    Disabled(Area),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    VersionConflict { message: String, current: i64 },
    #[error("an article with id {0:?} already exists")]
    Exists(String),
    #[error("the article is invalid: {0}")]
    Invalid(FieldErrors),
    #[error("the import was rejected; nothing was changed")]
    ImportRejected(Value),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled(Area::Admin) => "admin_disabled",
            Self::Disabled(Area::Console) => "console_disabled",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::VersionConflict { .. } => "version_conflict",
            Self::Exists(_) => "article_exists",
            Self::Invalid(_) => "invalid_article",
            Self::ImportRejected(_) => "import_rejected",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Disabled(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::VersionConflict { .. } | Self::Exists(_) => StatusCode::CONFLICT,
            Self::Invalid(_) | Self::ImportRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(e) = self {
            tracing::error!(error = %e, "API request failed");
        }
        let mut body = json!({"code": self.code(), "message": self.to_string()});
        match self {
            Self::Invalid(fields) => body["fields"] = json!(fields),
            Self::ImportRejected(report) => body["report"] = report.clone(),
            Self::VersionConflict { current, .. } => body["current_version"] = json!(current),
            _ => {}
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<StartupError> for ApiError {
    fn from(e: StartupError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<ArticleWriteError> for ApiError {
    fn from(e: ArticleWriteError) -> Self {
        match e {
            ArticleWriteError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ArticleWriteError::Exists(id) => ApiError::Exists(id),
            ArticleWriteError::VersionConflict { current, .. } => ApiError::VersionConflict {
                message: e.to_string(),
                current,
            },
            ArticleWriteError::Store(e) => e.into(),
        }
    }
}

/// Checks the request's bearer token against `admin_token`.
pub fn authorize(state: &AppState, request: &HttpRequest, area: Area) -> Result<(), ApiError> {
    let expected = state
        .config
        .admin_token
        .as_deref()
        .ok_or(ApiError::Disabled(area))?;
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compared in constant time so the token cannot be guessed byte by byte.
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who made a change, for the version history: the `X-Frontdesk-User`
/// header, or "admin" (the token says only that the caller may write).
pub fn author(request: &HttpRequest) -> String {
    request
        .headers()
        .get("x-frontdesk-user")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .unwrap_or("admin")
        .to_string()
}
