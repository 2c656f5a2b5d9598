//! Start-up: HTTP endpoints, a broken article, a missing or bad model file.

use frontdesk::config::Config;
use frontdesk::startup::load_generator;
use frontdesk::state::StartupError;

use crate::helpers::{AppOptions, model_path, repo_path, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_readiness_demo_page_and_article_pages_are_served() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["articles"].as_u64().unwrap() >= 40, "{ready}");
    assert_eq!(ready["skipped_articles"], serde_json::json!([]));
    assert!(ready["intents"].as_u64().unwrap() >= 31, "{ready}");
    let page = http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<script src="/widget.js""#), "{page}");
    let widget = http.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(widget.status(), 200);
    assert!(widget.text().await.unwrap().contains("attachShadow"));
    let console = http.get(app.url("/console.html")).send().await.unwrap();
    assert_eq!(console.status(), 200);
    let article = http.get(app.url("/kb/return-policy")).send().await.unwrap();
    assert_eq!(article.status(), 200);
    assert!(article.text().await.unwrap().contains("30 days"));
    let missing = http.get(app.url("/kb/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_broken_article_is_skipped_and_the_rest_load() {
    let kb = tempfile::TempDir::new().unwrap();
    for id in ["return-policy", "refund-policy"] {
        std::fs::copy(
            repo_path(&format!("knowledge/{id}.md")),
            kb.path().join(format!("{id}.md")),
        )
        .unwrap();
    }
    std::fs::write(
        kb.path().join("broken.md"),
        "---\nid: broken\ntitle: [unclosed\n---\nBody.\n",
    )
    .unwrap();
    let app = spawn_app_with(
        AppOptions {
            knowledge: kb.path().to_path_buf(),
            ..Default::default()
        },
        tempfile::TempDir::new().unwrap(),
    )
    .await;
    let ready: serde_json::Value = reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["articles"], 2);
    let skipped = &ready["skipped_articles"][0];
    assert!(
        skipped["file"].as_str().unwrap().ends_with("broken.md"),
        "{ready}"
    );
    assert_eq!(skipped["line"], 3);
    assert!(
        skipped["message"]
            .as_str()
            .unwrap()
            .contains("front matter")
    );

    let mut ws = app.connect().await;
    ws.hello(None, None).await;
    let ex = ws.ask("q", "How long do I have to return something?").await;
    assert!(ex.cited().contains(&"return-policy".to_string()));
}

#[tokio::test]
async fn a_missing_or_invalid_model_file_is_a_clear_error() {
    let dir = tempfile::TempDir::new().unwrap();
    let missing = dir.path().join("nowhere.gguf");
    let config = Config::for_dirs(dir.path(), &repo_path("knowledge"), &missing).unwrap();
    let err = load_generator(&config)
        .await
        .err()
        .expect("missing model fails");
    assert!(matches!(err, StartupError::Model(_)), "{err}");
    assert!(
        err.to_string().contains("nowhere.gguf") && err.to_string().contains("--model"),
        "{err}"
    );

    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, "hello").unwrap();
    let config = Config::for_dirs(dir.path(), &repo_path("knowledge"), &not_gguf).unwrap();
    let err = load_generator(&config)
        .await
        .err()
        .expect("bad model fails");
    assert!(err.to_string().contains("not a GGUF"), "{err}");
    assert!(model_path().exists());
}
