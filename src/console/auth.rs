//! Staff sign in with a name and password (argon2 hashes in the database)
//! and get a token, sent back as an HttpOnly cookie for the console and
//! admin pages and in the body for other clients. Every other console
//! route, the websocket included, refuses a request without a valid one;
//! the admin API also wants the admin role (`admin::auth`).

use std::sync::LazyLock;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiError, bearer_token};
use crate::state::AppState;
use crate::storage::agents::{Role, Staff};
use crate::storage::now_ms;

pub const COOKIE: &str = "fd_agent";
const COOKIE_PATH: &str = "/api";
const SESSION_HOURS: i64 = 12;
pub const LOGIN_PATH: &str = "/api/console/login";

/// The signed-in account of a console request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub name: String,
    pub role: Role,
    token: String,
}

/// The account signed in on a request (bearer token or cookie), if any.
pub async fn signed_in(
    state: &AppState,
    request: &HttpRequest,
) -> Result<Option<SignedIn>, ApiError> {
    let Some(token) = token_of(request) else {
        return Ok(None);
    };
    Ok(state
        .store
        .staff_of_token(&token)
        .await?
        .map(|Staff { name, role }| SignedIn { name, role, token }))
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checked for unknown names too, so the answer takes as long either way
/// and does not tell which agent names exist.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a password").expect("hashing works"));

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The token of a request: bearer header, the console cookie, or for the
/// websocket only (browsers cannot set its headers) a `token` query
/// parameter. Tokens in the URLs of other routes would end up in proxy
/// logs and browser history.
fn token_of(request: &HttpRequest) -> Option<String> {
    if let Some(token) = bearer_token(request) {
        return Some(token.to_string());
    }
    if let Some(cookie) = request.cookie(COOKIE) {
        return Some(cookie.value().to_string());
    }
    if request.path() != WS_PATH {
        return None;
    }
    web::Query::<TokenQuery>::from_query(request.query_string())
        .ok()
        .and_then(|q| q.into_inner().token)
}

const WS_PATH: &str = "/api/console/ws";

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Refuses anonymous requests before anything reads their body.
pub async fn require_agent(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(state) = request.app_data::<web::Data<AppState>>()
        && !crate::origin::allowed(request.request(), &state.config.allowed_origins)
    {
        return Ok(request
            .error_response(ApiError::ForbiddenOrigin)
            .map_into_right_body());
    }
    if request.path() == LOGIN_PATH {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let outcome = match request.app_data::<web::Data<AppState>>() {
        None => Err(ApiError::Internal("application state is missing".into())),
        Some(state) => signed_in(state, request.request())
            .await
            .and_then(|agent| agent.ok_or(ApiError::Unauthorized)),
    };
    match outcome {
        Ok(agent) => {
            request.extensions_mut().insert(agent);
            Ok(next.call(request).await?.map_into_left_body())
        }
        Err(e) => Ok(request.error_response(e).map_into_right_body()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    name: String,
    password: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    if let Some(ip) = state.limits.client_ip(&req) {
        state.limits.sign_in(ip).map_err(|refused| {
            state.metrics.refused("sign_ins");
            tracing::info!(%ip, "console sign-in throttled");
            ApiError::RateLimited(refused)
        })?;
    }
    if state.store.agent_count().await? == 0 {
        return Err(ApiError::NoAgents);
    }
    let Credentials { name, password } = body.into_inner();
    let account = state.store.agent_credentials(name.clone()).await?;
    let known = account.is_some();
    let (hash, role) = account.unwrap_or_else(|| (DUMMY_HASH.clone(), Role::Agent));
    // Hashing takes tens of milliseconds of CPU: off the executor, and one
    // at a time, so sign-ins never take more than one core from chat.
    let _hashing = state
        .limits
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let matches = web::block(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !(known && matches) {
        // An unknown name is not logged: it is often a password typed
        // into the wrong field.
        match known {
            true => tracing::info!(agent = %name, "console sign-in refused: wrong password"),
            false => tracing::info!("console sign-in refused: unknown agent"),
        }
        return Err(ApiError::InvalidCredentials);
    }
    let token = new_token();
    let expires_at_ms = now_ms() + SESSION_HOURS * 3_600_000;
    state
        .store
        .start_agent_session(&token, name.clone(), expires_at_ms)
        .await?;
    tracing::info!(agent = %name, role = role.as_str(), "signed in");
    // Secure when the page came over HTTPS (directly, or through a proxy
    // that says so with `behind_proxy`), so the cookie never travels in clear.
    let https = req.connection_info().scheme() == "https";
    // For `/api`: the console and the admin API take the same sign-in.
    let cookie = Cookie::build(COOKIE, token.clone())
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(SESSION_HOURS))
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(json!({
        "agent": {"name": name, "role": role},
        "token": token,
        "expires_at_ms": expires_at_ms,
    })))
}

pub async fn logout(
    state: web::Data<AppState>,
    agent: web::ReqData<SignedIn>,
) -> Result<HttpResponse, ApiError> {
    state.store.end_agent_session(&agent.token).await?;
    let mut gone = Cookie::build(COOKIE, "").path(COOKIE_PATH).finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

pub async fn me(agent: web::ReqData<SignedIn>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"agent": {"name": agent.name, "role": agent.role}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 64);
    }
}
