//! Who may use the admin API, and who a change is by: a signed-in staff
//! account with the admin role (its name is the author), or the
//! `admin_token` for automation (the author is the `X-Frontdesk-User`
//! header, or "admin", since the token says only that the caller may
//! write).

use actix_web::{HttpMessage, HttpRequest};

use crate::api::{ApiError, bearer_token};
use crate::console::auth::signed_in;
use crate::state::AppState;
use crate::storage::agents::Role;

/// The author of an authorised admin request, kept in its extensions.
#[derive(Debug, Clone)]
struct Author(String);

/// Checks the caller and records who they are for [`author`].
pub async fn authorize(state: &AppState, request: &HttpRequest) -> Result<(), ApiError> {
    let author = caller(state, request).await?;
    request.extensions_mut().insert(Author(author));
    Ok(())
}

async fn caller(state: &AppState, request: &HttpRequest) -> Result<String, ApiError> {
    let token = state.config.admin_token.as_deref();
    if let (Some(expected), Some(given)) = (token, bearer_token(request))
        && constant_time_eq(given.as_bytes(), expected.as_bytes())
    {
        return Ok(named_by_header(request).unwrap_or("admin").to_string());
    }
    match signed_in(state, request).await? {
        Some(staff) if staff.role == Role::Admin => Ok(staff.name),
        Some(_) => Err(ApiError::AdminRoleRequired),
        None if token.is_none() && state.store.admin_count().await? == 0 => {
            Err(ApiError::AdminDisabled)
        }
        None => Err(ApiError::Unauthorized),
    }
}

/// Compared in constant time so the token cannot be guessed byte by byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn named_by_header(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get("x-frontdesk-user")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 100)
}

/// Who made a change, for the version history and the privacy audit.
pub fn author(request: &HttpRequest) -> String {
    request
        .extensions()
        .get::<Author>()
        .map_or_else(|| "admin".to_string(), |a| a.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
