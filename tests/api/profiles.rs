//! The customer's profile in the console: every conversation of one signed
//! identity (or, for an anonymous customer, of one browser), how they felt,
//! what they raised, their ratings and the at-risk heuristic with its
//! reasons.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{IDENTITY_SECRET, TestApp, WsClient, identity_app, signed};
use crate::insights::{post, rate};

const PASSWORD: &str = "a long enough password";

async fn profile(app: &TestApp, token: &str, session: &str) -> (StatusCode, Value) {
    app.get_with_status(
        &format!("/api/console/conversations/{session}/customer"),
        token,
    )
    .await
}

/// A new conversation opened with this `hello`: its socket and session id.
async fn opened_with(app: &TestApp, hello: Value) -> (WsClient, String) {
    let mut ws = app.connect().await;
    ws.send_json(hello).await;
    let frames = ws.recv_until("welcome").await;
    let session = frames.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    (ws, session)
}

/// A signed-in customer's new conversation: its socket and session id.
async fn signed_in(app: &TestApp, identity: Value) -> (WsClient, String) {
    opened_with(app, json!({"type": "hello", "identity": identity})).await
}

fn codes(profile: &Value) -> Vec<&str> {
    profile["risk"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_customers_profile_gathers_their_conversations_and_says_why_they_look_at_risk() {
    let app = identity_app().await;
    app.add_agent("sam", PASSWORD);
    let token = app.sign_in("sam", PASSWORD).await;
    let ben = || signed("cust-9", "ben@example.com", IDENTITY_SECRET);

    // A first conversation: a broken skillet, closed by a person, rated 2.
    let (mut first, one) = signed_in(&app, ben()).await;
    first
        .ask(
            "q1",
            "My skillet arrived cracked, this is really disappointing",
        )
        .await;
    post(&app, &token, &one, "takeover", json!({})).await;
    post(&app, &token, &one, "close", json!({"outcome": "resolved"})).await;
    first
        .recv_until_where(Duration::from_secs(5), |f| f["event"] == "closed")
        .await;
    rate(&mut first, 2, None).await;

    // A second conversation on another device: worse, and a threat to leave.
    let (mut second, two) = signed_in(&app, ben()).await;
    assert_ne!(one, two);
    second
        .ask(
            "q1",
            "The mug you sent is broken too. This is unacceptable, I will shop elsewhere!",
        )
        .await;

    // Someone else, anonymous.
    let mut other = app.connect().await;
    let stranger = other.start_session().await;
    other
        .ask("q1", "how long do I have to return something?")
        .await;

    let (status, seen) = profile(&app, &token, &two).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["customer"]["id"], "cust-9", "{seen}");
    let sessions: Vec<&str> = seen["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["session"].as_str().unwrap())
        .collect();
    assert_eq!(sessions, [one.as_str(), two.as_str()], "oldest first");
    assert_eq!(seen["conversations"][0]["rating"], 2);
    assert_eq!(seen["conversations"][0]["outcome"], "resolved_with_person");
    assert_eq!(seen["ratings"], json!({"mean": 2.0, "count": 1}));
    // One point per customer message, each a score in -1..1.
    let points = seen["sentiment"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{seen}");
    assert!(
        points.iter().all(|p| p["score"].as_f64().unwrap() < 0.0),
        "{seen}"
    );
    let products: Vec<&str> = seen["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(
        products.contains(&"skillet") && products.contains(&"mug"),
        "{seen}"
    );
    // Labelled a heuristic, with reasons an agent can check.
    assert_eq!(seen["risk"]["heuristic"], true);
    assert_eq!(seen["risk"]["at_risk"], true);
    let found = codes(&seen);
    for code in ["repeated_complaints", "cancel_threat", "low_rating"] {
        assert!(found.contains(&code), "{code} missing: {seen}");
    }
    // The same customer whichever of their conversations is open.
    let (_, from_first) = profile(&app, &token, &one).await;
    assert_eq!(from_first["conversations"], seen["conversations"]);

    // An anonymous visitor is known by their one conversation.
    let (_, anonymous) = profile(&app, &token, &stranger).await;
    assert_eq!(anonymous["customer"], Value::Null);
    assert_eq!(anonymous["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(anonymous["risk"]["at_risk"], false, "{anonymous}");

    let (status, error) = profile(&app, &token, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "not_found", "{error}");
    let response = reqwest::get(app.url(&format!("/api/console/conversations/{two}/customer")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// An anonymous visitor's new conversation with one question, from the
/// browser whose widget sent `visitor` in `hello`: its session id.
async fn as_visitor(app: &TestApp, visitor: &str, question: &str) -> String {
    let (mut ws, session) = opened_with(app, json!({"type": "hello", "visitor_id": visitor})).await;
    ws.ask("q1", question).await;
    session
}

#[tokio::test]
async fn an_anonymous_customers_profile_gathers_the_conversations_of_their_browser() {
    let app = identity_app().await;
    app.add_agent("sam", PASSWORD);
    let token = app.sign_in("sam", PASSWORD).await;
    let browser = uuid::Uuid::new_v4().to_string();
    let first = as_visitor(&app, &browser, "my skillet arrived cracked").await;
    let second = as_visitor(&app, &browser, "how do I care for a linen tablecloth?").await;
    let elsewhere = as_visitor(
        &app,
        &uuid::Uuid::new_v4().to_string(),
        "do you ship to Belgium?",
    )
    .await;
    // A signed-in customer on the same browser is known by their identity,
    // not by the browser.
    let identity = signed("cust-3", "ana@example.com", IDENTITY_SECRET);
    let (mut signed_ws, signed_session) = opened_with(
        &app,
        json!({"type": "hello", "visitor_id": browser, "identity": identity}),
    )
    .await;
    signed_ws.ask("q1", "where is my order?").await;

    let sessions = |profile: &Value| -> Vec<String> {
        profile["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["session"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, seen) = profile(&app, &token, &second).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["customer"], Value::Null);
    assert_eq!(seen["visitor"], browser.as_str());
    assert_eq!(sessions(&seen), [first.clone(), second.clone()], "{seen}");
    let products: Vec<&str> = seen["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(products.contains(&"skillet"), "{seen}");

    let (_, other) = profile(&app, &token, &elsewhere).await;
    assert_eq!(sessions(&other), [elsewhere], "{other}");
    let (_, known) = profile(&app, &token, &signed_session).await;
    assert_eq!(known["customer"]["id"], "cust-3");
    assert_eq!(known["visitor"], Value::Null);
    assert_eq!(sessions(&known), [signed_session], "{known}");

    // Not a UUID: refused with its own code, before any session starts.
    let mut bad = app.connect().await;
    bad.send_json(json!({"type": "hello", "visitor_id": "me, honestly"}))
        .await;
    let refused = bad.recv().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "invalid_visitor_id", "{refused}");
}
