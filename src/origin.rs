//! Which browser pages may call the console, the admin API and the chat
//! socket. A browser names the page a request comes from in `Origin`;
//! a page of another site must not take over conversations with an
//! agent's cookie (a `text/plain` POST needs no CORS preflight) or open
//! the console feed (cross-site websocket hijacking). Requests without
//! `Origin` (scripts, curl) are not from a page; their token decides.

use actix_web::HttpRequest;
use actix_web::http::header;

/// Whether the request's page may use this route: no `Origin`, this
/// server's own origin, or one of `allowed` (exact, or `*` for any).
pub fn allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/') == origin)
    {
        return true;
    }
    // Same host and port; the scheme may differ behind a TLS proxy.
    let host = req.connection_info().host().to_ascii_lowercase();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.to_ascii_lowercase() == host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn from(origin: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().insert_header(("host", "help.shop.example:8080"));
        if let Some(o) = origin {
            req = req.insert_header(("origin", o));
        }
        req.to_http_request()
    }

    #[test]
    fn own_pages_and_listed_origins_pass_and_others_do_not() {
        let listed = vec!["https://shop.example".to_string()];
        assert!(allowed(&from(None), &[]));
        assert!(allowed(&from(Some("http://help.shop.example:8080")), &[]));
        assert!(allowed(&from(Some("https://help.shop.example:8080")), &[]));
        assert!(allowed(&from(Some("https://shop.example")), &listed));
        assert!(!allowed(&from(Some("https://shop.example")), &[]));
        assert!(!allowed(&from(Some("https://evil.example")), &listed));
        assert!(!allowed(&from(Some("null")), &listed));
        assert!(allowed(&from(Some("https://any.example")), &["*".into()]));
    }
}
