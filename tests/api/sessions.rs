//! Sessions: replay after reconnect, restart with history, duplicate ids.

use serde_json::{Value, json};

use crate::helpers::{AppOptions, spawn_app, spawn_app_with};

fn seqs(frames: &[Value]) -> Vec<i64> {
    frames.iter().filter_map(|f| f["seq"].as_i64()).collect()
}

#[tokio::test]
async fn reconnect_with_last_seq_replays_exactly_the_missed_messages() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let first = ws.ask("q1", "Which payment methods do you accept?").await;
    assert_eq!(first.reply["seq"], 2);

    // Send, get the ack, and drop the connection before the reply comes.
    ws.send_json(json!({"type": "message", "id": "q2", "text": "How do I reset my password?"}))
        .await;
    let ack = ws.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["seq"], 3);
    ws.close().await;

    // The widget saw everything up to seq 3; the reply (seq 4) must arrive
    // once, whether it was stored before the reconnect (history) or after (live).
    let mut ws = app.connect().await;
    let welcome = ws.hello(Some(&session), Some(3)).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["session_id"], session.as_str());
    let mut replies = Vec::new();
    while replies.is_empty() {
        let frame = ws.recv().await;
        match frame["type"].as_str().unwrap() {
            "history" => {
                assert_eq!(
                    frame["seq"], 4,
                    "only missed messages are replayed: {frame}"
                );
                assert_eq!(frame["role"], "bot");
                replies.push(frame);
            }
            "reply" => replies.push(frame),
            "token" => {}
            other => panic!("unexpected {other}: {frame}"),
        }
    }
    assert_eq!(seqs(&replies), vec![4]);
    assert_eq!(
        replies[0]["id"]
            .as_str()
            .or(replies[0]["reply_to"].as_str()),
        Some("q2")
    );

    // A reconnect that saw seq 2 gets 3 and 4, nothing else.
    let mut again = app.connect().await;
    again.hello(Some(&session), Some(2)).await;
    let history = [again.recv().await, again.recv().await];
    assert_eq!(seqs(&history), vec![3, 4]);
    assert_eq!(history[0]["role"], "customer");
    assert_eq!(history[0]["id"], "q2");
    again.send_json(json!({"type": "ping"})).await;
    assert_eq!(again.recv().await["type"], "pong", "no more history frames");
}

#[tokio::test]
async fn restart_keeps_the_session_and_its_history() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let first = ws.ask("q1", "Do you have express delivery?").await;
    ws.close().await;
    let data_dir = app.stop().await;

    let app = spawn_app_with(AppOptions::default(), data_dir).await;
    let mut ws = app.connect().await;
    let welcome = ws.hello(Some(&session), None).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["last_seq"], 2);
    let history = [ws.recv().await, ws.recv().await];
    assert_eq!(history[0]["role"], "customer");
    assert_eq!(history[0]["text"], "Do you have express delivery?");
    assert_eq!(history[1]["role"], "bot");
    assert_eq!(history[1]["text"], first.reply["text"]);
    assert_eq!(history[1]["citations"], first.reply["citations"]);

    // The conversation context came back too.
    let follow = ws.ask("q2", "And how much does it cost?").await;
    assert_eq!(follow.ack["seq"], 3);
    assert!(
        follow.cited().contains(&"express-delivery".to_string()),
        "{:?}",
        follow.reply
    );
}

#[tokio::test]
async fn a_resent_message_is_answered_once() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let first = ws.ask("same-id", "How do I reset my password?").await;
    assert_eq!(first.ack["seq"], 1);

    ws.send_json(
        json!({"type": "message", "id": "same-id", "text": "How do I reset my password?"}),
    )
    .await;
    let ack = ws.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["duplicate"], true);
    assert_eq!(ack["seq"], 1);

    // Replies in a session are answered in order, so a second answer to the
    // duplicate would arrive before this one.
    let next = ws.ask("other", "Can I pay with Klarna?").await;
    assert_eq!(next.ack["seq"], 3);
    assert_eq!(next.reply["seq"], 4);
    assert_eq!(next.reply["reply_to"], "other");

    let mut check = app.connect().await;
    check.hello(Some(&session), None).await;
    let mut history = Vec::new();
    for _ in 0..4 {
        history.push(check.recv().await);
    }
    assert_eq!(seqs(&history), vec![1, 2, 3, 4]);
    check.send_json(json!({"type": "ping"})).await;
    assert_eq!(check.recv().await["type"], "pong");
}

#[tokio::test]
async fn first_message_without_hello_opens_a_session() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.send_json(json!({"type": "message", "id": "x", "text": "What's the capital of France?"}))
        .await;
    let frames = ws.recv_until("reply").await;
    assert_eq!(frames[0]["type"], "welcome");
    assert_eq!(frames[0]["resumed"], false);
    assert_eq!(frames[1]["type"], "ack");
}

#[tokio::test]
async fn an_unknown_session_id_starts_a_new_session() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let welcome = ws.hello(Some(&unknown), Some(5)).await;
    assert_eq!(welcome["resumed"], false);
    assert_ne!(welcome["session_id"], unknown.as_str());
}

#[tokio::test]
async fn a_message_stored_before_a_crash_is_answered_when_the_session_returns() {
    // The state a crash leaves: the message was stored (and acknowledged),
    // the reply never was.
    let (data_dir, session) = crashed_with_a_pending_message().await;
    let session = session.to_string();
    let app = spawn_app_with(AppOptions::default(), data_dir).await;
    let mut ws = app.connect().await;
    let welcome = ws.hello(Some(&session), Some(1)).await;
    assert_eq!(welcome["resumed"], true);
    let frames = ws.recv_until("reply").await;
    let reply = frames.last().unwrap();
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["reply_to"], "lost");
    assert!(
        reply["citations"][0]["article_id"]
            .as_str()
            .unwrap()
            .starts_with("reset-password"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_by_the_heartbeat() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.heartbeat_secs = 1;
                c.client_timeout_secs = 2;
            },
            ..Default::default()
        },
        tempfile::TempDir::new().unwrap(),
    )
    .await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    ws.stay_silent(std::time::Duration::from_secs(4)).await;
    ws.expect_closed().await;
}

#[tokio::test]
async fn a_hello_costs_no_session_until_the_first_message() {
    let app = spawn_app().await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut ws = app.connect().await;
        let welcome = ws.hello(None, None).await;
        assert_eq!(welcome["resumed"], false);
        idle.push((ws, welcome["session_id"].as_str().unwrap().to_string()));
    }
    assert_eq!(app.state.hub.len(), 0, "idle connections hold sessions");
    let (ws, id) = &mut idle[0];
    let id: uuid::Uuid = id.parse().unwrap();
    assert!(!app.state.store.session_exists(id).await.unwrap());
    // The first message stores the session under the id the welcome gave.
    let exchange = ws.ask("q1", "Which payment methods do you accept?").await;
    assert_eq!(exchange.ack["seq"], 1);
    assert!(app.state.store.session_exists(id).await.unwrap());
    assert_eq!(app.state.hub.len(), 1);
    let mut again = app.connect().await;
    let welcome = again.hello(Some(&id.to_string()), Some(0)).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["last_seq"], 2);
}

#[tokio::test]
async fn a_client_ahead_of_the_store_is_told_and_still_gets_replies() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "Which payment methods do you accept?").await;
    ws.close().await;
    // The client remembers seq 40; the store (restored from a backup) has 2.
    let mut ws = app.connect().await;
    let welcome = ws.hello(Some(&session), Some(40)).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["last_seq"], 2);
    let next = ws.ask("q2", "How do I reset my password?").await;
    assert_eq!(next.ack["seq"], 3);
    assert_eq!(next.reply["seq"], 4);
}

#[tokio::test]
async fn two_connections_after_a_restart_answer_a_stored_message_once() {
    let (data_dir, session) = crashed_with_a_pending_message().await;
    let app = spawn_app_with(AppOptions::default(), data_dir).await;
    let (mut a, mut b) = (app.connect().await, app.connect().await);
    let id = session.to_string();
    let (wa, wb) = tokio::join!(a.hello(Some(&id), Some(1)), b.hello(Some(&id), Some(1)));
    assert_eq!(
        (wa["resumed"].clone(), wb["resumed"].clone()),
        (json!(true), json!(true))
    );
    a.recv_until("reply").await;
    b.stay_silent(std::time::Duration::from_millis(500)).await;
    let stored = app.state.store.messages_after(session, 0).await.unwrap();
    let replies = stored
        .iter()
        .filter(|m| m.role == frontdesk::storage::Role::Bot)
        .count();
    assert_eq!(replies, 1, "{stored:?}");
}

/// The state a crash leaves: a customer message (id `lost`) stored and
/// acknowledged, its reply never written.
async fn crashed_with_a_pending_message() -> (tempfile::TempDir, uuid::Uuid) {
    let data_dir = tempfile::TempDir::new().unwrap();
    let store =
        frontdesk::storage::Store::open(&data_dir.path().join("frontdesk.sqlite3")).unwrap();
    let id = uuid::Uuid::new_v4();
    store.open_session(id).await.unwrap();
    store
        .append_customer(id, "lost".into(), "How do I reset my password?".into())
        .await
        .unwrap();
    (data_dir, id)
}
