//! The agent console over its API and websockets: sign-in, takeover (with
//! the bot's streaming reply cancelled), agent-to-customer delivery,
//! hand-back, closing, and several agents at once.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use frontdesk::generation::ScriptedGenerator;

use crate::helpers::{TestApp, WsClient, spawn_app, spawn_scripted};

const PASSWORD: &str = "correct horse battery";
const SOON: Duration = Duration::from_secs(5);

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, app.url(&format!("/api/console{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// `POST /api/console/conversations/{session}/{action}` as the agent of `token`.
async fn act(
    app: &TestApp,
    token: &str,
    session: &str,
    action: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let path = format!("/conversations/{session}/{action}");
    call(app, Method::POST, &path, token, body).await
}

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |f| f["type"] == kind
}

#[tokio::test]
async fn every_console_route_and_the_console_socket_refuse_anonymous_and_bad_tokens() {
    let app = spawn_app().await;
    // Without accounts there is nobody to sign in.
    let (status, body) = call(
        &app,
        Method::POST,
        "/login",
        "",
        Some(json!({"name": "sam", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("console_disabled"))
    );

    app.add_agent("sam", PASSWORD);
    let id = Uuid::new_v4();
    let routes = [
        (Method::GET, "/me".to_string()),
        (Method::POST, "/logout".to_string()),
        (Method::GET, "/conversations".to_string()),
        (Method::GET, format!("/conversations/{id}")),
        (Method::POST, format!("/conversations/{id}/takeover")),
        (Method::POST, format!("/conversations/{id}/messages")),
        (Method::POST, format!("/conversations/{id}/handback")),
        (Method::POST, format!("/conversations/{id}/close")),
        (Method::POST, format!("/conversations/{id}/typing")),
        (Method::GET, "/ws".to_string()),
        (Method::GET, "/no-such-route".to_string()),
    ];
    let client = reqwest::Client::new();
    for (method, path) in &routes {
        let url = app.url(&format!("/api/console{path}"));
        let attempts = [
            client.request(method.clone(), &url),
            client.request(method.clone(), &url).bearer_auth("guess"),
            client
                .request(method.clone(), &url)
                .header("cookie", "fd_agent=guess"),
            client.request(method.clone(), format!("{url}?token=guess")),
        ];
        for attempt in attempts {
            let response = attempt
                .json(&json!({"text": "hi", "outcome": "resolved"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized", "{method} {path}");
        }
    }
    // The websocket handshake itself is refused.
    let refused =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/api/console/ws", app.port))
            .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("the anonymous console socket was not refused: {other:?}"),
    }

    for (name, password) in [("sam", "wrong password"), ("nobody", PASSWORD)] {
        let (status, body) = call(
            &app,
            Method::POST,
            "/login",
            "",
            Some(json!({"name": name, "password": password})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
    }
    let token = app.sign_in("sam", PASSWORD).await;
    let (status, me) = call(&app, Method::GET, "/me", &token, None).await;
    assert_eq!(
        (status, &me["agent"]["name"]),
        (StatusCode::OK, &json!("sam"))
    );
    // The cookie the page uses works like the bearer token.
    let by_cookie = client
        .get(app.url("/api/console/conversations"))
        .header("cookie", format!("fd_agent={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    app.console_feed(&token).await;
    let (status, _) = call(&app, Method::POST, "/logout", &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&app, Method::GET, "/me", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Collects the customer's frames until both a `reply_cancelled` and the
/// `agent_joined` event have come.
async fn until_cancelled_and_joined(customer: &mut WsClient) -> Vec<Value> {
    let mut frames = Vec::new();
    let started = Instant::now();
    while !(frames.iter().any(is("reply_cancelled"))
        && frames.iter().any(|f: &Value| f["event"] == "agent_joined"))
    {
        assert!(
            started.elapsed() < SOON,
            "no cancel and join in {frames:#?}"
        );
        frames.push(customer.recv_within(SOON).await.expect("a frame"));
    }
    frames
}

#[tokio::test]
async fn an_agent_takes_over_mid_reply_writes_to_the_customer_hands_back_and_closes() {
    // The model writes slowly, so the takeover lands mid-reply.
    let app = spawn_scripted(
        ScriptedGenerator::new(["You can return most items within 30 days of delivery. "; 50])
            .slow(Duration::from_millis(100)),
    )
    .await;
    app.add_agent("sam", PASSWORD);
    let token = app.sign_in("sam", PASSWORD).await;
    let mut feed = app.console_feed(&token).await;
    let mut customer = app.connect().await;
    let session = customer.start_session().await;

    customer
        .send_json(json!({"type": "message", "id": "q1", "text": "How long do I have to return something?"}))
        .await;
    let first_token = customer.recv_until("token").await.pop().unwrap();
    let (status, taken) = act(&app, &token, &session, "takeover", None).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["conversation"]["status"], "agent");
    assert_eq!(taken["conversation"]["agent"], "sam");

    // The streaming reply stops: its draft is withdrawn and it is never stored.
    let frames = until_cancelled_and_joined(&mut customer).await;
    let cancelled = frames
        .iter()
        .find(|f| f["type"] == "reply_cancelled")
        .unwrap();
    assert_eq!(cancelled["reply_id"], first_token["reply_id"]);
    assert!(!frames.iter().any(is("reply")), "{frames:#?}");
    let joined = frames.iter().find(|f| f["type"] == "event").unwrap();
    assert_eq!(joined["agent"], "sam");
    assert!(
        joined["text"].as_str().unwrap().contains("joined"),
        "{joined}"
    );

    // The agent writes; the customer gets it live.
    let (status, sent) = act(
        &app,
        &token,
        &session,
        "messages",
        Some(json!({"text": "Hi, I'm Sam. Returns are free within 30 days."})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let delivered = customer
        .recv_until_where(SOON, is("agent_message"))
        .await
        .pop()
        .unwrap();
    assert_eq!(delivered["agent"], "sam");
    assert_eq!(
        delivered["text"],
        "Hi, I'm Sam. Returns are free within 30 days."
    );

    // While the agent has it, the bot stays quiet, and the console sees the
    // customer's message with what it means.
    customer
        .send_json(json!({"type": "message", "id": "q2", "text": "great, thanks! and what about sale items?"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    let understood = feed
        .recv_until_where(SOON, |f| {
            f["type"] == "message"
                && f["message"]["id"] == "q2"
                && f["message"]["intent"].is_object()
        })
        .await
        .pop()
        .unwrap();
    assert_eq!(understood["session_id"], session.as_str());
    if let Some(frame) = customer.recv_within(Duration::from_secs(3)).await {
        panic!("the bot spoke while a person had the conversation: {frame}");
    }

    // Handed back, the bot answers again.
    let (status, _) = act(&app, &token, &session, "handback", None).await;
    assert_eq!(status, StatusCode::OK);
    let left = customer
        .recv_until_where(SOON, is("event"))
        .await
        .pop()
        .unwrap();
    assert_eq!(left["event"], "agent_left");
    let (status, body) = act(
        &app,
        &token,
        &session,
        "messages",
        Some(json!({"text": "still here?"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_taken"))
    );
    let answered = customer.ask("q3", "thank you!").await;
    assert_eq!(answered.reply["kind"], "smalltalk");

    // Closed with an outcome.
    let (status, closed) = act(
        &app,
        &token,
        &session,
        "close",
        Some(json!({"outcome": "resolved"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["conversation"]["status"], "closed");
    assert_eq!(closed["conversation"]["outcome"], "resolved");
    assert_eq!(
        customer
            .recv_until_where(SOON, is("event"))
            .await
            .pop()
            .unwrap()["event"],
        "closed"
    );

    // The transcript keeps everything in order, and a reconnecting widget
    // gets the agent's message and the events too.
    let (_, transcript) = call(
        &app,
        Method::GET,
        &format!("/conversations/{session}"),
        &token,
        None,
    )
    .await;
    let roles: Vec<&str> = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "customer", "event", "agent", "customer", "event", "customer", "bot", "event"
        ]
    );
    let mut again = app.connect().await;
    again.hello(Some(&session), Some(0)).await;
    let mut history = Vec::new();
    for _ in 0..8 {
        history.push(again.recv().await);
    }
    assert_eq!(history[2]["role"], "agent");
    assert_eq!(history[2]["agent"], "sam");
    assert_eq!(history[1]["event"], "agent_joined");
    let seqs: Vec<i64> = history.iter().map(|h| h["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_handoff_reaches_every_console_at_once_with_a_summary_and_one_agent_gets_it() {
    let app = spawn_app().await;
    app.add_agent("sam", PASSWORD);
    app.add_agent("ana", PASSWORD);
    let sam = app.sign_in("sam", PASSWORD).await;
    let ana = app.sign_in("ana", PASSWORD).await;
    let mut sam_feed = app.console_feed(&sam).await;
    let mut ana_feed = app.console_feed(&ana).await;

    let mut customer = app.connect().await;
    let session = customer.start_session().await;
    // A plain question first: an impatient one ("it has been two weeks")
    // may itself be flagged as very unhappy, and this test is about the
    // request for a person.
    customer.ask("m1", "where is my order?").await;
    let asked = Instant::now();
    let handoff = customer.ask("m2", "I want to talk to a real person").await;
    assert_eq!(handoff.reply["kind"], "handoff");
    for feed in [&mut sam_feed, &mut ana_feed] {
        let flagged = feed
            .recv_until_where(SOON, |f| {
                f["type"] == "conversation" && f["conversation"]["flagged"] == true
            })
            .await
            .pop()
            .unwrap();
        let conversation = &flagged["conversation"];
        assert_eq!(conversation["session_id"], session.as_str());
        assert_eq!(conversation["flag"]["reason"], "asked_for_human");
        let summary = conversation["summary"].as_str().unwrap();
        assert!(summary.contains("asked for a person"), "{summary}");
        assert!(summary.contains("where is my order"), "{summary}");
    }
    eprintln!(
        "flag reached both consoles {:?} after the message",
        asked.elapsed()
    );

    // Sam takes it; Ana sees that, and cannot take it or write into it.
    let (status, _) = act(&app, &sam, &session, "takeover", None).await;
    assert_eq!(status, StatusCode::OK);
    let taken = ana_feed
        .recv_until_where(SOON, |f| {
            f["type"] == "conversation" && f["conversation"]["status"] == "agent"
        })
        .await
        .pop()
        .unwrap();
    assert_eq!(taken["conversation"]["agent"], "sam");
    let (status, body) = act(&app, &ana, &session, "takeover", None).await;
    assert_eq!(
        (status, body["code"].as_str(), body["agent"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("conversation_taken"),
            Some("sam")
        )
    );
    let (status, _) = act(
        &app,
        &ana,
        &session,
        "messages",
        Some(json!({"text": "hello"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Taking it again is harmless for the one who has it.
    let (status, _) = act(&app, &sam, &session, "takeover", None).await;
    assert_eq!(status, StatusCode::OK);
    // Sam typing shows on the customer's side.
    let (status, _) = act(&app, &sam, &session, "typing", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let typing = customer
        .recv_until_where(SOON, is("typing"))
        .await
        .pop()
        .unwrap();
    assert_eq!(typing["agent"], "sam");
}
