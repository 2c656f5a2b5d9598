//! Rate limits: an abusive client is refused with a typed error or 429 and
//! `Retry-After`, and a normal customer beside it is served.

use std::time::Duration;

use frontdesk::generation::ScriptedGenerator;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{AppOptions, TestApp, WsClient, spawn_app_with};

/// A chat connection that says (through a trusted proxy) it comes from `ip`.
async fn connect_from(app: &TestApp, ip: &str) -> WsClient {
    let mut request = format!("ws://127.0.0.1:{}/ws", app.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-for", ip.parse().unwrap());
    WsClient::from_request(request).await
}

#[tokio::test]
async fn a_flooding_address_is_refused_and_a_customer_beside_it_is_served() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.messages_per_minute = 6;
                c.behind_proxy = true;
            },
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let mut abuser = connect_from(&app, "203.0.113.9").await;
    abuser.hello(None, None).await;
    for i in 0..12 {
        abuser
            .send_json(json!({"type": "message", "id": format!("m{i}"), "text": "hi"}))
            .await;
    }
    let (mut acks, mut refused) = (0, Vec::new());
    while acks + refused.len() < 12 {
        let frame = abuser.recv().await;
        match frame["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited", "{frame}");
                refused.push(frame["id"].as_str().unwrap().to_string());
            }
            _ => {}
        }
    }
    // Six a minute: whatever the session's own queue allowed of the first
    // six, the other six are refused by the address's allowance.
    assert!(acks <= 6, "{acks} acknowledged");
    for i in 6..12 {
        assert!(refused.contains(&format!("m{i}")), "{refused:?}");
    }
    // Another connection from the same address shares its allowance.
    let mut again = connect_from(&app, "203.0.113.9").await;
    again
        .send_json(json!({"type": "message", "id": "x", "text": "hello?"}))
        .await;
    let frames = again.recv_until("error").await;
    assert_eq!(frames.last().unwrap()["code"], "rate_limited");

    let mut customer = connect_from(&app, "198.51.100.7").await;
    customer.hello(None, None).await;
    let exchange = customer
        .ask("q", "Which payment methods do you accept?")
        .await;
    assert_eq!(exchange.reply["type"], "reply");
}

#[tokio::test]
async fn a_session_with_answers_queued_refuses_more_until_they_are_done() {
    let app = spawn_app_with(
        AppOptions {
            generator: Some(std::sync::Arc::new(
                ScriptedGenerator::new(["You can reset your password with Forgot password. "; 20])
                    .slow(Duration::from_millis(50)),
            )),
            configure: |c| c.answer_style = frontdesk::answer::compose::AnswerStyle::Generated,
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let mut ws = app.connect().await;
    ws.hello(None, None).await;
    for i in 0..8 {
        ws.send_json(json!({"type": "message", "id": format!("m{i}"), "text": "How do I reset my password?"}))
            .await;
    }
    let mut acks = 0;
    let mut refused = Vec::new();
    while acks + refused.len() < 8 {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => refused.push(frame["id"].as_str().unwrap().to_string()),
            _ => {}
        }
    }
    assert_eq!(acks, 5);
    assert_eq!(refused, ["m5", "m6", "m7"]);
}

#[tokio::test]
async fn console_sign_ins_are_throttled_per_address_with_retry_after() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.sign_ins_per_minute = 3,
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    app.add_agent("sam", "correct horse battery");
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = client
            .post(app.url("/api/console/login"))
            .json(&json!({"name": "sam", "password": "wrong"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn an_address_holding_its_sockets_gets_429_and_another_is_served() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.sockets_per_ip = 2;
                c.behind_proxy = true;
            },
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let _one = connect_from(&app, "203.0.113.9").await;
    let _two = connect_from(&app, "203.0.113.9").await;
    let third = reqwest::Client::new()
        .get(app.url("/ws"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    let mut customer = connect_from(&app, "198.51.100.7").await;
    customer.hello(None, None).await;
    // A closed socket gives its place back.
    drop(_one);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let response = reqwest::Client::new()
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if response.contains("frontdesk_chat_connections 2") {
            again = Some(connect_from(&app, "203.0.113.9").await);
            break;
        }
    }
    assert!(again.is_some(), "the closed socket's place never came back");
}

#[tokio::test]
async fn an_address_starting_too_many_conversations_is_refused() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.sessions_per_minute = 1;
                c.behind_proxy = true;
            },
            generator: Some(std::sync::Arc::new(ScriptedGenerator::new(["Hi."]))),
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let mut first = connect_from(&app, "203.0.113.9").await;
    first.hello(None, None).await;
    first
        .send_json(json!({"type": "message", "id": "a", "text": "hello"}))
        .await;
    assert_eq!(first.recv_until("ack").await.pop().unwrap()["id"], "a");
    // Saying hello costs nothing; the first message of a second
    // conversation is refused, and the first conversation goes on.
    let mut second = connect_from(&app, "203.0.113.9").await;
    second.hello(None, None).await;
    second
        .send_json(json!({"type": "message", "id": "b", "text": "hello"}))
        .await;
    let refused = second.recv_until("error").await.pop().unwrap();
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["id"], "b");
    first
        .send_json(json!({"type": "message", "id": "c", "text": "thanks"}))
        .await;
    assert_eq!(first.recv_until("ack").await.pop().unwrap()["id"], "c");
}

#[tokio::test]
async fn admin_writes_past_their_allowance_get_429_and_reads_go_on() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.admin_token = Some("t".into());
                c.admin_writes_per_minute = 2;
            },
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    let create = |i: usize| {
        client
            .post(app.url("/api/admin/articles"))
            .bearer_auth("t")
            .json(&json!({"id": format!("limit-{i}"), "title": "Limit", "body": "A body."}))
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..3 {
        statuses.push(create(i).await.unwrap());
    }
    assert_eq!(statuses[0].status(), reqwest::StatusCode::CREATED);
    assert_eq!(statuses[1].status(), reqwest::StatusCode::CREATED);
    let refused = statuses.pop().unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let list = client
        .get(app.url("/api/admin/articles"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), reqwest::StatusCode::OK);
}
