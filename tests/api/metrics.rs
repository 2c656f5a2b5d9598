//! `GET /metrics`: Prometheus text that follows what happened, open to a
//! scraper on this machine and behind the admin token from elsewhere.

use reqwest::StatusCode;
use tempfile::TempDir;

use crate::helpers::{AppOptions, spawn_app, spawn_app_with};

#[tokio::test]
async fn metrics_count_connections_messages_and_replies() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    ws.ask("q1", "can I pay with PayPal?").await;
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for line in [
        "frontdesk_chat_connections 1",
        "frontdesk_customer_messages_total 1",
        "frontdesk_replies_total{kind=\"extractive\"} 1",
        "frontdesk_reply_seconds_count 1",
        "frontdesk_first_visible_seconds_count 1",
        "frontdesk_live_sessions 1",
        "frontdesk_generations_in_flight 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_from_another_machine_need_the_admin_token() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.behind_proxy = true;
                c.admin_token = Some("metrics-token".into());
            },
            ..Default::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    let remote = || {
        client
            .get(app.url("/metrics"))
            .header("X-Forwarded-For", "203.0.113.9")
    };
    assert_eq!(
        remote().send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let with_token = remote().bearer_auth("metrics-token").send().await.unwrap();
    assert_eq!(with_token.status(), StatusCode::OK);
}
