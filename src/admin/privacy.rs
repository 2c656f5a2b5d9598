//! One customer's data on request, under `/api/admin/privacy`: export
//! (redacted unless asked otherwise), erasure, and the audit of both.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::author;
use crate::api::ApiError;
use crate::privacy::Export;
use crate::state::AppState;
use crate::storage::privacy::Subject;

/// Whose data: `?session=ID` or `?email=ADDRESS`.
#[derive(Debug, Deserialize)]
pub struct SubjectQuery {
    session: Option<String>,
    email: Option<String>,
    /// Exports only: `false` gives the text as the customer wrote it (for
    /// the customer's own access request).
    redact: Option<bool>,
}

impl SubjectQuery {
    fn subject(&self) -> Result<Subject, ApiError> {
        match (self.session.as_deref(), self.email.as_deref()) {
            (Some(id), None) => uuid::Uuid::parse_str(id.trim())
                .map(Subject::Session)
                .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a session id"))),
            (None, Some(email)) if looks_like_email(email) => {
                Ok(Subject::Email(email.trim().to_string()))
            }
            (None, Some(email)) => Err(ApiError::BadRequest(format!(
                "{email:?} is not an e-mail address"
            ))),
            _ => Err(ApiError::BadRequest(
                "give exactly one of `session` or `email`".into(),
            )),
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    s.len() <= 254
        && s.split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
}

pub async fn export(
    state: web::Data<AppState>,
    query: web::Query<SubjectQuery>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let subject = query.subject()?;
    let conversations = state.store.export(subject, author(&request)).await?;
    Ok(HttpResponse::Ok().json(Export::new(conversations, query.redact.unwrap_or(true))))
}

pub async fn erase(
    state: web::Data<AppState>,
    query: web::Query<SubjectQuery>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let subject = query.subject()?;
    let erased = state.store.erase(subject, author(&request)).await?;
    for id in &erased {
        state.hub.forget(*id);
    }
    tracing::info!(conversations = erased.len(), "customer data erased");
    Ok(HttpResponse::Ok().json(json!({ "erased": erased.len() })))
}

pub async fn audit(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json!({ "records": state.store.privacy_audit(200).await? })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(session: Option<&str>, email: Option<&str>) -> SubjectQuery {
        SubjectQuery {
            session: session.map(str::to_string),
            email: email.map(str::to_string),
            redact: None,
        }
    }

    #[test]
    fn exactly_one_well_formed_selector_is_accepted() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            query(Some(&id.to_string()), None).subject().unwrap(),
            Subject::Session(id)
        );
        assert_eq!(
            query(None, Some(" a@b.nl ")).subject().unwrap(),
            Subject::Email("a@b.nl".into())
        );
        for bad in [
            query(None, None),
            query(Some("nope"), None),
            query(None, Some("not-an-address")),
            query(Some(&id.to_string()), Some("a@b.nl")),
        ] {
            assert!(matches!(bad.subject(), Err(ApiError::BadRequest(_))));
        }
    }
}
