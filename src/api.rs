//! What the operator APIs (`/api/admin`, `/api/console`) share: one error
//! type, mapped once to HTTP statuses and stable JSON codes, and how a
//! bearer token is read (`console::auth` signs staff in, `admin::auth`
//! decides who may use the admin API).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::knowledge::FieldErrors;
use crate::storage::StoreError;
use crate::storage::articles::ArticleWriteError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "this API is disabled: create an admin with `frontdesk agent add NAME --role admin`, or set `admin_token` (FRONTDESK_ADMIN_TOKEN)"
    )]
    AdminDisabled,
    #[error("this needs an admin account; agents work in the console")]
    AdminRoleRequired,
    #[error("there are no agent accounts yet: create one with `frontdesk agent add NAME`")]
    NoAgents,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("unknown agent or wrong password")]
    InvalidCredentials,
    #[error("{0} already has this conversation")]
    Taken(String),
    #[error("take the conversation over first")]
    NotTaken,
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
    #[error("requests from this page's origin are not allowed")]
    ForbiddenOrigin,
    #[error("too many attempts; try again in {} s", .0.retry_after_secs())]
    RateLimited(crate::limits::Refused),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AdminDisabled => "admin_disabled",
            Self::AdminRoleRequired => "admin_role_required",
            Self::NoAgents => "console_disabled",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Taken(_) => "conversation_taken",
            Self::NotTaken => "not_taken",
            Self::RateLimited(_) => "rate_limited",
            Self::ForbiddenOrigin => "forbidden_origin",
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
            Self::AdminDisabled | Self::NoAgents | Self::AdminRoleRequired => StatusCode::FORBIDDEN,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Taken(_) | Self::NotTaken => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::VersionConflict { .. } | Self::Exists(_) => StatusCode::CONFLICT,
            Self::Invalid(_) | Self::ImportRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ForbiddenOrigin => StatusCode::FORBIDDEN,
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
            Self::Taken(agent) => body["agent"] = json!(agent),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Self::RateLimited(refused) = self {
            response.insert_header(("Retry-After", refused.retry_after_secs().to_string()));
        }
        response.json(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::storage::conversations::HandoverError> for ApiError {
    fn from(e: crate::storage::conversations::HandoverError) -> Self {
        use crate::storage::conversations::HandoverError;
        match e {
            HandoverError::NotFound(_) => ApiError::NotFound(e.to_string()),
            HandoverError::TakenBy(agent) => ApiError::Taken(agent),
            HandoverError::NotYours => ApiError::NotTaken,
            HandoverError::Store(e) => e.into(),
        }
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

pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}
