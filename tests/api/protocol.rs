//! Bad frames get typed errors and the connection stays usable.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn each_bad_frame_gets_its_error_code_and_the_connection_survives() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;

    let cases: Vec<(String, &str)> = vec![
        ("{this is not json".into(), "invalid_json"),
        (json!({"type": "dance"}).to_string(), "unknown_type"),
        (json!({"no_type": 1}).to_string(), "invalid_frame"),
        (
            json!({"type": "message", "id": "m1", "text": ""}).to_string(),
            "empty_message",
        ),
        (
            json!({"type": "message", "id": "m2", "text": "x".repeat(5000)}).to_string(),
            "message_too_long",
        ),
        (
            json!({"type": "hello", "session_id": "not-a-uuid"}).to_string(),
            "invalid_session_id",
        ),
    ];
    for (frame, code) in cases {
        ws.send_text(&frame).await;
        let reply = ws.recv().await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    ws.send_binary(vec![1, 2, 3]).await;
    assert_eq!(ws.recv().await["code"], "unsupported_frame");

    // Still usable: a ping is answered and a session can start.
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    let welcome = ws.hello(None, None).await;
    assert_eq!(welcome["resumed"], false);
    ws.send_json(json!({"type": "hello"})).await;
    assert_eq!(ws.recv().await["code"], "session_already_started");
}

#[tokio::test]
async fn oversized_error_names_the_message() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.send_json(json!({"type": "message", "id": "big", "text": "y".repeat(4097)}))
        .await;
    let reply = ws.recv().await;
    assert_eq!(reply["code"], "message_too_long");
    assert_eq!(reply["id"], "big");
}

#[tokio::test]
async fn a_frame_far_over_the_limit_is_refused_and_closes_the_connection() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.send_json(json!({"type": "message", "id": "huge", "text": "z".repeat(64 * 1024)}))
        .await;
    assert_eq!(ws.recv().await["code"], "message_too_long");
    ws.expect_closed().await;
}

#[tokio::test]
async fn flooding_bad_frames_closes_the_connection() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    for _ in 0..20 {
        ws.send_text("nope").await;
    }
    for _ in 0..20 {
        assert_eq!(ws.recv().await["code"], "invalid_json");
    }
    ws.expect_closed().await;
}
