//! Running it for a real shop: an online backup, and the demo page off.

use reqwest::StatusCode;
use tempfile::TempDir;

use crate::helpers::{AppOptions, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_online_backup_holds_every_conversation_and_opens_as_a_store() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "can I pay with PayPal?").await;
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("backup.sqlite3");
    app.state.store.backup_to(file.clone()).await.unwrap();
    // Never over an existing file.
    assert!(app.state.store.backup_to(file.clone()).await.is_err());
    let copy = frontdesk::storage::Store::open(&file).unwrap();
    let id = uuid::Uuid::parse_str(&session).unwrap();
    let transcript = copy.transcript(id).await.unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(transcript[0].text, "can I pay with PayPal?");
}

#[tokio::test]
async fn the_demo_shop_can_be_turned_off_and_the_widget_stays() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.demo_page = false,
            ..Default::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let request = client.get(app.url(path));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status("/").await, StatusCode::NOT_FOUND);
    assert_eq!(status("/widget.js").await, StatusCode::OK);
    assert_eq!(status("/console.html").await, StatusCode::OK);
    // The default keeps it on.
    let demo = spawn_app().await;
    let page = reqwest::get(demo.url("/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}
