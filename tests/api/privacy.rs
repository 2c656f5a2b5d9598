//! A customer's data on request: export (redacted by default), erasure
//! that leaves nothing of them in any table, retention, and the audit of
//! each without the content.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use crate::admin::{Admin, spawn_admin_app};

const EMAIL: &str = "jan.devries@example.com";

#[tokio::test]
async fn a_customer_is_exported_and_erased_by_e_mail_and_nothing_of_them_is_left() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let mut jan = app.connect().await;
    let jan_session = jan.start_session().await;
    jan.ask(
        "q1",
        &format!("hi, this is {EMAIL}, do you sell garden gnomes?"),
    )
    .await;
    jan.ask("q2", "how long do I have to return something?")
        .await;
    let mut other = app.connect().await;
    let other_session = other.start_session().await;
    other.ask("q1", "what is your return policy?").await;

    // The question nobody could answer is a gap, without the address.
    app.gaps_recorded(1).await;
    let (_, gaps) = admin.call(Method::GET, "/gaps", None).await;
    assert!(gaps.to_string().contains("[email]"), "{gaps}");
    assert!(!gaps.to_string().contains(EMAIL), "{gaps}");

    let path = format!("/privacy/conversations?email={}", EMAIL.to_uppercase());
    let (status, export) = admin.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(export["redacted"], true);
    let conversations = export["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0]["session_id"], jan_session.as_str());
    assert!(!export.to_string().contains(EMAIL), "{export}");
    assert!(export.to_string().contains("[email]"));
    // The customer's own access request gets their words as written.
    let (_, full) = admin
        .call(Method::GET, &format!("{path}&redact=false"), None)
        .await;
    assert!(full.to_string().contains(EMAIL));
    assert!(
        full["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );

    let (status, erased) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["erased"], 1);

    let store = &app.state.store;
    let jan_id = uuid::Uuid::parse_str(&jan_session).unwrap();
    assert!(store.conversation(jan_id).await.unwrap().is_none());
    assert!(store.transcript(jan_id).await.unwrap().is_empty());
    // Jan's gaps went with the conversation, and one heard on the event
    // bus after the erasure keeps nothing.
    let late = store
        .record_gap(
            jan_id,
            "a question still on its way".into(),
            frontdesk::storage::gaps::GapReason::NoAnswer,
            None,
            None,
        )
        .await
        .unwrap();
    assert!(!late);
    assert!(
        store
            .recent_gaps(100)
            .await
            .unwrap()
            .iter()
            .all(|g| g.session_id != jan_id)
    );
    let other_id = uuid::Uuid::parse_str(&other_session).unwrap();
    assert!(store.conversation(other_id).await.unwrap().is_some());
    // Nothing left to export.
    let (_, again) = admin.call(Method::GET, &path, None).await;
    assert_eq!(again["conversations"].as_array().unwrap().len(), 0);

    let (_, audit) = admin.call(Method::GET, "/privacy/audit", None).await;
    let records = audit["records"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["export", "erase", "export", "export"]);
    assert!(
        records
            .iter()
            .all(|r| r["actor"] == "ana" && r["selector"] == "email")
    );
    assert_eq!(records[1]["conversations"], 1);
    assert!(!audit.to_string().contains(EMAIL), "{audit}");
}

#[tokio::test]
async fn one_conversation_is_erased_by_its_session_id() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "can I pay with PayPal?").await;
    let path = format!("/privacy/conversations?session={session}");
    let (status, body) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(
        (status, body["erased"].clone()),
        (StatusCode::OK, Value::from(1))
    );
    let id = uuid::Uuid::parse_str(&session).unwrap();
    assert!(app.state.store.conversation(id).await.unwrap().is_none());
    assert!(app.state.hub.get(id).is_none());
}

#[tokio::test]
async fn a_request_without_exactly_one_subject_is_refused() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    for path in [
        "/privacy/conversations",
        "/privacy/conversations?session=not-a-uuid",
        "/privacy/conversations?email=nobody",
        "/privacy/conversations?email=a@b.nl&session=00000000-0000-0000-0000-000000000000",
    ] {
        let (status, body) = admin.call(Method::DELETE, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], "bad_request", "{body}");
    }
    // Without the token, nothing.
    let response = reqwest::Client::new()
        .delete(app.url("/api/admin/privacy/conversations?email=a@b.nl"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn conversations_past_the_retention_period_are_deleted_with_their_gaps() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "do you sell garden gnomes?").await;
    app.gaps_recorded(1).await;
    let store = &app.state.store;
    let id = uuid::Uuid::parse_str(&session).unwrap();
    // Nothing is older than a day yet.
    let day_ago = frontdesk::storage::now_ms() - 86_400_000;
    assert!(store.delete_older_than(day_ago).await.unwrap().is_empty());
    assert!(store.conversation(id).await.unwrap().is_some());
    // Everything is older than a moment from now.
    let later = frontdesk::storage::now_ms() + 1_000;
    assert_eq!(store.delete_older_than(later).await.unwrap(), vec![id]);
    assert!(store.conversation(id).await.unwrap().is_none());
    assert!(store.recent_gaps(10).await.unwrap().is_empty());
    let audit = store.privacy_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "retention");
    assert_eq!(audit[0].conversations, 1);
}
