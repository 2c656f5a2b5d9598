//! Browser-facing defences: Origin checks on the console, admin and chat
//! socket, tokens only where they belong, and sign-outs on a new password.

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{AppOptions, WsClient, spawn_app, spawn_app_with};

const EVIL: &str = "https://evil.example";

#[tokio::test]
async fn a_foreign_page_cannot_act_in_the_console() {
    let app = spawn_app().await;
    app.add_agent("sam", "correct horse battery");
    let token = app.sign_in("sam", "correct horse battery").await;
    let client = reqwest::Client::new();
    let takeover = app.url(&format!(
        "/api/console/conversations/{}/takeover",
        uuid::Uuid::new_v4()
    ));
    // A form-style POST from another site, with the agent's credentials.
    let response = client
        .post(&takeover)
        .bearer_auth(&token)
        .header("origin", EVIL)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "forbidden_origin");
    // The console's own page, and scripts without Origin, get through.
    for origin in [Some(app.url("")), None] {
        let mut request = client.post(&takeover).bearer_auth(&token);
        if let Some(o) = origin {
            request = request.header("origin", o.trim_end_matches('/'));
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status, 404, "an unknown conversation, but not refused");
    }
    // The feed refuses a foreign page too.
    let mut ws = format!("ws://127.0.0.1:{}/api/console/ws", app.port)
        .into_client_request()
        .unwrap();
    let headers = ws.headers_mut();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers.insert("origin", EVIL.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(ws).await.is_err());
}

#[tokio::test]
async fn a_token_works_in_the_url_only_for_the_feed_and_dies_with_the_password() {
    let app = spawn_app().await;
    app.add_agent("sam", "correct horse battery");
    let token = app.sign_in("sam", "correct horse battery").await;
    let client = reqwest::Client::new();
    let me = |auth: bool| {
        let request = if auth {
            client.get(app.url("/api/console/me")).bearer_auth(&token)
        } else {
            client.get(app.url(&format!("/api/console/me?token={token}")))
        };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(me(true).await, 200);
    assert_eq!(me(false).await, 401, "?token= on a REST route");
    let feed = format!("ws://127.0.0.1:{}/api/console/ws?token={token}", app.port);
    assert!(tokio_tungstenite::connect_async(feed).await.is_ok());
    // `frontdesk agent passwd` (the same store call) signs every browser out.
    app.add_agent("sam", "a brand new password");
    assert_eq!(me(true).await, 401);
    // `frontdesk agent remove` signs the agent out too.
    let token = app.sign_in("sam", "a brand new password").await;
    assert!(app.state.store.remove_agent_blocking("sam").unwrap());
    let status = client
        .get(app.url("/api/console/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_chat_socket_takes_only_the_shops_pages_when_they_are_listed() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.widget_origins = vec!["https://shop.example".into()],
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let request = |origin: &str| {
        let mut r = format!("ws://127.0.0.1:{}/ws", app.port)
            .into_client_request()
            .unwrap();
        r.headers_mut().insert("origin", origin.parse().unwrap());
        r
    };
    assert!(
        tokio_tungstenite::connect_async(request(EVIL))
            .await
            .is_err()
    );
    let mut ws = WsClient::from_request(request("https://shop.example")).await;
    let welcome = ws.hello(None, None).await;
    assert_eq!(welcome["type"], json!("welcome"));
}

#[tokio::test]
async fn pages_carry_security_headers_and_cookies_are_secure_over_https() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for path in ["/", "/console.html", "/admin.html", "/kb/return-policy"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
        if response.status() == 200 {
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(!csp.contains("'unsafe-inline' ;"), "{path}: {csp}");
            let script = csp.split(';').find(|d| d.trim().starts_with("script-src"));
            assert!(
                script.is_none_or(|d| !d.contains("unsafe-inline")),
                "{path}: {csp}"
            );
        }
    }
    // The widget stays embeddable on the shop's pages.
    let widget = client.get(app.url("/widget.js")).send().await.unwrap();
    assert!(!widget.headers().contains_key("x-frame-options"));

    app.add_agent("sam", "correct horse battery");
    for (proto, secure) in [("https", true), ("http", false)] {
        let response = client
            .post(app.url("/api/console/login"))
            .header("x-forwarded-proto", proto)
            .json(&json!({"name": "sam", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
    }
}
