//! Answers: streamed, cited, grounded, in context, declined when unknown.

use frontdesk::generation::{Admission, ScriptedGenerator};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_scripted};

#[tokio::test]
async fn knowledge_base_question_streams_a_cited_grounded_answer() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let welcome = ws.hello(None, None).await;
    assert_eq!(welcome["resumed"], false);

    let ex = ws
        .ask("q1", "How long do I have to return something?")
        .await;
    assert_eq!(ex.ack["seq"], 1);
    assert_eq!(ex.ack["duplicate"], false);
    assert!(
        !ex.tokens.is_empty(),
        "tokens are streamed before the reply"
    );
    assert_eq!(ex.reply["seq"], 2);
    assert_eq!(ex.reply["reply_to"], "q1");
    assert!(
        ex.cited().contains(&"return-policy".to_string()),
        "{:?}",
        ex.reply
    );
    assert!(
        ex.text().contains("30"),
        "the key fact (30 days) is in the reply: {}",
        ex.text()
    );
    assert_eq!(ex.reply["citations"][0]["url"], "/kb/return-policy");
    // The article's own sentences, streamed as they are: the stream is the reply.
    assert_eq!(ex.reply["kind"], "extractive");
    assert_eq!(ex.reply["grounded"], true);
    assert_eq!(ex.tokens.concat(), ex.text());
}

#[tokio::test]
async fn question_outside_the_knowledge_base_is_declined_not_invented() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.hello(None, None).await;
    let ex = ws.ask("q1", "What's the capital of France?").await;
    assert_eq!(ex.reply["kind"], "declined");
    assert_eq!(ex.reply["intent"]["name"], "out_of_scope");
    assert!(ex.tokens.is_empty(), "the model is not asked");
    assert_eq!(ex.reply["citations"], json!([]));
    assert!(!ex.text().contains("Paris"));
    assert!(
        ex.text().contains("connect you with a person"),
        "a human is offered: {}",
        ex.text()
    );
}

#[tokio::test]
async fn follow_up_is_answered_in_context() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.hello(None, None).await;
    let first = ws.ask("q1", "Do you have express delivery?").await;
    assert!(
        first.cited().contains(&"express-delivery".to_string()),
        "{:?}",
        first.reply
    );
    // "it" only makes sense with the previous question.
    let follow = ws.ask("q2", "And how much does it cost?").await;
    assert!(
        follow.cited().contains(&"express-delivery".to_string()),
        "{:?}",
        follow.reply
    );
    assert!(follow.text().contains("9.95"), "{}", follow.text());
}

#[tokio::test]
async fn a_full_queue_answers_busy_instead_of_hanging() {
    // One reply may run and none may wait; the model writes slowly: one
    // sentence the article supports (streamed), then words it does not (held
    // back, never repeated, which would end the reply early).
    let script = std::iter::once("You can reset your password with Forgot password. ".to_string())
        .chain((1..=40).map(|i| format!("Step {i} of many. ")));
    let app = spawn_scripted(
        ScriptedGenerator::new(script)
            .slow(std::time::Duration::from_millis(100))
            .with_admission(Admission::new(1, 0)),
    )
    .await;
    let mut first = app.connect().await;
    first.hello(None, None).await;
    first
        .send_json(json!({"type": "message", "id": "a", "text": "How do I reset my password?"}))
        .await;
    // Once tokens flow, the only model slot is taken.
    let frames = first.recv_until("token").await;
    assert!(frames.iter().any(|f| f["type"] == "ack"));

    let mut second = app.connect().await;
    second.hello(None, None).await;
    let ex = second
        .ask("b", "Which payment methods do you accept?")
        .await;
    assert_eq!(ex.reply["kind"], "busy", "{:?}", ex.reply);
    assert!(ex.text().contains("again"));

    let rest = first.recv_until("reply").await;
    assert_ne!(rest.last().unwrap()["kind"], "busy");
}
