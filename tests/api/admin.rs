//! The knowledge-base admin API: every route, its errors, imports, and
//! that changes reach chat at once and survive a restart.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{AppOptions, TestApp, spawn_app, spawn_app_with};
use frontdesk::storage::agents::Role;

pub const TOKEN: &str = "kb-admin-token";

pub async fn spawn_admin_app(data_dir: TempDir) -> TestApp {
    spawn_app_with(
        AppOptions {
            configure: |c| {
                c.admin_token = Some(TOKEN.into());
                c.max_upload_bytes = 64 * 1024;
            },
            ..Default::default()
        },
        data_dir,
    )
    .await
}

/// A signed-in admin client for one app.
pub struct Admin<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

impl<'a> Admin<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Admin {
            app,
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, self.app.url(&format!("/api/admin{path}")))
            .bearer_auth(TOKEN)
            .header("X-Frontdesk-User", "ana");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn create(&self, article: Value) -> Value {
        let (status, body) = self.call(Method::POST, "/articles", Some(article)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn search(&self, query: &str) -> Value {
        let (status, body) = self
            .call(Method::POST, "/search", Some(json!({"query": query})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn gift_wrap(price: &str) -> Value {
    json!({
        "title": "Gift wrapping",
        "body": format!("We gift wrap any order for {price}. Choose gift wrapping at checkout and add a card with your message."),
        "tags": ["gift-wrap", "checkout"],
    })
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let client = reqwest::Client::new();
    let routes = [
        (Method::GET, "/articles"),
        (Method::POST, "/articles"),
        (Method::GET, "/articles/returns"),
        (Method::PUT, "/articles/returns"),
        (Method::DELETE, "/articles/returns"),
        (Method::POST, "/articles/returns/restore"),
        (Method::GET, "/articles/returns/versions"),
        (Method::GET, "/articles/returns/versions/1"),
        (Method::GET, "/articles/returns/diff?from=1"),
        (Method::POST, "/import"),
        (Method::GET, "/export"),
        (Method::POST, "/search"),
        (Method::GET, "/gaps"),
    ];
    for (method, path) in routes {
        let url = app.url(&format!("/api/admin{path}"));
        for token in [None, Some("wrong")] {
            let mut request = client.request(method.clone(), &url).json(&json!({}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized");
        }
    }
    // Without a configured token the admin API is off altogether.
    let app = spawn_app().await;
    let response = client
        .get(app.url("/api/admin/articles"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "admin_disabled"
    );
}

#[tokio::test]
async fn articles_are_created_listed_edited_versioned_and_compared() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);

    // The shipped knowledge base seeded the store.
    let (status, page) = admin.call(Method::GET, "/articles?per_page=5", None).await;
    assert_eq!(status, 200);
    assert!(page["total"].as_u64().unwrap() >= 40, "{page}");
    assert_eq!(page["articles"].as_array().unwrap().len(), 5);
    let (_, page2) = admin
        .call(Method::GET, "/articles?per_page=5&page=2", None)
        .await;
    assert_ne!(page["articles"][0]["id"], page2["articles"][0]["id"]);

    let created = admin.create(gift_wrap("3 euros")).await;
    assert_eq!(created["id"], "gift-wrapping");
    assert_eq!(created["version"], 1);
    assert_eq!(created["author"], "ana");
    let (status, again) = admin
        .call(Method::POST, "/articles", Some(gift_wrap("3 euros")))
        .await;
    assert_eq!(status, 409);
    assert_eq!(again["code"], "article_exists");

    let (_, by_tag) = admin
        .call(Method::GET, "/articles?tag=gift-wrap", None)
        .await;
    assert_eq!(by_tag["total"], 1);
    let (_, by_text) = admin
        .call(Method::GET, "/articles?q=ADD%20A%20CARD", None)
        .await;
    assert_eq!(by_text["articles"][0]["id"], "gift-wrapping");

    let mut edit = gift_wrap("4 euros");
    edit["version"] = json!(1);
    let (status, updated) = admin
        .call(Method::PUT, "/articles/gift-wrapping", Some(edit.clone()))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    // The same edit, made from version 1 again, is stale.
    let (status, stale) = admin
        .call(Method::PUT, "/articles/gift-wrapping", Some(edit))
        .await;
    assert_eq!(status, 409);
    assert_eq!(stale["code"], "version_conflict");
    assert_eq!(stale["current_version"], 2);

    let (_, versions) = admin
        .call(Method::GET, "/articles/gift-wrapping/versions", None)
        .await;
    let changes: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["created", "updated"]);
    let (_, v1) = admin
        .call(Method::GET, "/articles/gift-wrapping/versions/1", None)
        .await;
    assert!(v1["body"].as_str().unwrap().contains("3 euros"));
    let (_, diff) = admin
        .call(
            Method::GET,
            "/articles/gift-wrapping/diff?from=1&to=2",
            None,
        )
        .await;
    assert_eq!(diff["changed"], json!(["body"]));
    let body_diff = diff["body_diff"].as_str().unwrap();
    assert!(
        body_diff.contains("-We gift wrap any order for 3 euros"),
        "{body_diff}"
    );
    assert!(
        body_diff.contains("+We gift wrap any order for 4 euros"),
        "{body_diff}"
    );

    for path in [
        "/articles/nope",
        "/articles/nope/versions",
        "/articles/gift-wrapping/versions/9",
    ] {
        let (status, body) = admin.call(Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["code"], "not_found");
    }
    let (status, _) = admin
        .call(
            Method::PUT,
            "/articles/nope",
            Some(json!({"version": 1, "title": "T", "body": "B"})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn invalid_articles_and_oversized_uploads_are_refused_with_reasons() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let (status, body) = admin
        .call(
            Method::POST,
            "/articles",
            Some(json!({"id": "Bad Id", "title": " ", "body": "", "url": "ftp://x"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "invalid_article");
    for field in ["id", "title", "body", "url"] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let (status, body) = admin
        .call(
            Method::PUT,
            "/articles/returns",
            Some(json!({"title": "T", "body": "B"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["fields"]["version"].is_string(), "{body}");
    let (status, body) = admin
        .call(
            Method::POST,
            "/articles",
            Some(json!({"title": "T", "body": "B", "colour": "red"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );

    let huge = "x".repeat(70 * 1024);
    let (status, body) = admin
        .call(
            Method::POST,
            "/import",
            Some(json!({"files": [{"name": "big.md", "content": huge}]})),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
}

fn import_batch() -> Value {
    json!({"files": [
        {"name": "loyalty.md", "content": "---\nid: loyalty\ntitle: Loyalty points\ntags: [account]\n---\nYou earn one point per euro spent."},
        {"name": "Store Hours.md", "content": "# Store hours\n\nOur Amsterdam store is open 10:00 to 18:00, Monday to Saturday."},
        {"name": "faq.jsonl", "content": "{\"id\":\"click-and-collect\",\"title\":\"Click and collect\",\"body\":\"Collect your order at the Amsterdam store two hours after ordering.\",\"tags\":[\"delivery\"]}\n"},
        {"name": "qa.csv", "content": "question,answer,tags\nDo you sell gift cards?,\"Yes, from 10 to 200 euros, in store and online.\",gift-card\n"},
        {"name": "care.html", "content": "<html><head><title>Care</title></head><body><nav>Home | Shop</nav><main><h1>Caring for wool</h1><p>Hand wash wool jumpers in cold water.</p></main><footer>(c) 2026</footer></body></html>"},
    ]})
}

#[tokio::test]
async fn imports_are_all_or_nothing_and_idempotent_and_export_round_trips() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let (status, report) = admin
        .call(Method::POST, "/import", Some(import_batch()))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["counts"]["created"], 5, "{report}");
    let ids: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "loyalty",
            "store-hours",
            "click-and-collect",
            "do-you-sell-gift-cards",
            "care"
        ]
    );
    let (_, wool) = admin.call(Method::GET, "/articles/care", None).await;
    assert_eq!(wool["title"], "Caring for wool");
    assert_eq!(wool["body"], "Hand wash wool jumpers in cold water.");

    // The same batch again changes nothing.
    let (_, again) = admin
        .call(Method::POST, "/import", Some(import_batch()))
        .await;
    assert_eq!(again["counts"]["unchanged"], 5, "{again}");
    let (_, versions) = admin
        .call(Method::GET, "/articles/loyalty/versions", None)
        .await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);

    // One bad item rejects the whole batch, with every reason, and writes nothing.
    let bad = json!({"files": [
        {"name": "new.md", "content": "# New article\n\nSomething new."},
        {"name": "broken.jsonl", "content": "{\"id\":\"x\",\"title\":\"X\",\"body\":\"ok\"}\n{not json\n{\"id\":\"y\",\"title\":\"\",\"body\":\"b\"}\n"},
        {"name": "dup.jsonl", "content": "{\"id\":\"x\",\"title\":\"X again\",\"body\":\"dup\"}\n"},
        {"name": "notes.txt", "content": "hello"},
    ]});
    let (status, rejected) = admin.call(Method::POST, "/import", Some(bad)).await;
    assert_eq!(status, 422, "{rejected}");
    assert_eq!(rejected["code"], "import_rejected");
    let report = &rejected["report"];
    assert_eq!(report["applied"], false);
    assert_eq!(report["counts"]["rejected"], 4, "{report}");
    let reasons: Vec<(String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "rejected")
        .map(|i| {
            (
                i["source"].as_str().unwrap().into(),
                i["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        reasons[0].0 == "broken.jsonl:2" && reasons[0].1.contains("invalid JSON"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0 == "broken.jsonl:3" && reasons[1].1.contains("title"),
        "{reasons:?}"
    );
    assert!(reasons[2].1.contains("duplicate id"), "{reasons:?}");
    assert!(reasons[3].1.contains("unknown file type"), "{reasons:?}");
    let (status, _) = admin.call(Method::GET, "/articles/new-article", None).await;
    assert_eq!(status, 404, "nothing from the rejected batch was written");

    // Export, change nothing, import the export: all unchanged.
    let response = reqwest::Client::new()
        .get(app.url("/api/admin/export"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let export = response.text().await.unwrap();
    let lines = export.lines().count();
    assert!(lines >= 45, "{lines}");
    let (_, round_trip) = admin
        .call(
            Method::POST,
            "/import",
            Some(json!({"files": [{"name": "export.jsonl", "content": export}]})),
        )
        .await;
    assert_eq!(round_trip["counts"]["unchanged"], lines, "{round_trip}");
}

#[tokio::test]
async fn an_edit_reaches_chat_at_once_and_a_retired_article_is_no_longer_cited() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let mut ws = app.connect().await;
    ws.start_session().await;

    let declined = admin.search("How much does gift wrapping cost?").await;
    assert_eq!(declined["would_answer"], false, "{declined}");

    admin.create(gift_wrap("3 euros")).await;
    let answer = ws.ask("q1", "How much does gift wrapping cost?").await;
    assert_eq!(answer.cited(), ["gift-wrapping"]);
    assert!(answer.text().contains('3'), "{}", answer.text());

    let mut edit = gift_wrap("4 euros");
    edit["version"] = json!(1);
    let (status, _) = admin
        .call(Method::PUT, "/articles/gift-wrapping", Some(edit))
        .await;
    assert_eq!(status, 200);
    let hit = admin.search("How much does gift wrapping cost?").await;
    assert_eq!(hit["would_answer"], true, "{hit}");
    assert_eq!(hit["passages"][0]["article_id"], "gift-wrapping");
    assert!(
        hit["reply"]["text"].as_str().unwrap().contains("4 euros"),
        "{hit}"
    );
    assert!(hit["passages"][0]["bm25"]["rank"].is_number());
    assert!(hit["passages"][0]["dense"]["score"].is_number());
    assert!(hit["passages"][0]["fused"].is_number());
    let answer = ws.ask("q2", "What does gift wrapping cost?").await;
    assert_eq!(answer.cited(), ["gift-wrapping"]);
    assert!(!answer.text().contains("3 euros"), "{}", answer.text());

    let (status, retired) = admin
        .call(Method::DELETE, "/articles/gift-wrapping?version=2", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(retired["retired"], true);
    let answer = ws.ask("q3", "How much does gift wrapping cost?").await;
    assert!(
        !answer.cited().contains(&"gift-wrapping".to_string()),
        "{:?}",
        answer.reply
    );
    let (_, listed) = admin
        .call(Method::GET, "/articles?tag=gift-wrap", None)
        .await;
    assert_eq!(listed["total"], 0);
    let (_, listed) = admin
        .call(
            Method::GET,
            "/articles?tag=gift-wrap&include_retired=true",
            None,
        )
        .await;
    assert_eq!(listed["total"], 1);

    let (status, restored) = admin
        .call(Method::POST, "/articles/gift-wrapping/restore", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(restored["version"], 4);
    assert_eq!(restored["change"], "restored");
    let hit = admin.search("How much does gift wrapping cost?").await;
    assert_eq!(hit["passages"][0]["article_id"], "gift-wrapping");
}

#[tokio::test]
async fn hit_testing_says_what_the_bot_would_do() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let hit = admin
        .search("How long do I have to return something?")
        .await;
    assert_eq!(hit["would_answer"], true, "{hit}");
    assert_eq!(hit["passages"][0]["article_id"], "return-policy");
    assert_eq!(hit["reply"]["citation"]["article_id"], "return-policy");
    let france = admin.search("what's the capital of France").await;
    assert_eq!(france["would_answer"], false, "{france}");
    assert_eq!(france["reply"]["kind"], "declined");
    let (status, body) = admin
        .call(Method::POST, "/search", Some(json!({"query": ""})))
        .await;
    assert_eq!(status, 422);
    assert!(body["fields"]["query"].is_string());
}

#[tokio::test]
async fn unanswered_questions_are_grouped_into_gaps() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    for (id, q) in [
        ("g1", "Do you offer engraving on jewellery?"),
        ("g2", "do you offer engraving on rings?"),
        ("g3", "Is there a loyalty programme for frequent buyers?"),
    ] {
        let reply = ws.ask(id, q).await;
        let kind = reply.reply["kind"].as_str().unwrap();
        assert!(
            kind == "no_answer" || kind == "declined",
            "{q}: {:?}",
            reply.reply
        );
    }
    app.gaps_recorded(3).await;
    let (status, gaps) = Admin::new(&app).call(Method::GET, "/gaps", None).await;
    assert_eq!(status, 200);
    assert_eq!(gaps["questions"], 3);
    let groups = gaps["gaps"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{gaps}");
    assert_eq!(groups[0]["count"], 2);
    let reasons = groups[0]["reasons"].as_object().unwrap();
    assert_eq!(
        reasons.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        2
    );
    assert!(groups[0]["question"].as_str().unwrap().contains("engrav"));
}

#[tokio::test]
async fn restart_keeps_articles_versions_and_the_index() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    admin.create(gift_wrap("3 euros")).await;
    let (_, retired) = admin
        .call(Method::DELETE, "/articles/how-to-return", None)
        .await;
    assert_eq!(retired["retired"], true);
    let data_dir = app.stop().await;

    let app = spawn_admin_app(data_dir).await;
    let admin = Admin::new(&app);
    let (status, article) = admin
        .call(Method::GET, "/articles/gift-wrapping", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(article["version"], 1);
    let (_, returns) = admin
        .call(Method::GET, "/articles/how-to-return/versions", None)
        .await;
    assert_eq!(returns["versions"].as_array().unwrap().len(), 2);
    let hit = admin.search("How much does gift wrapping cost?").await;
    assert_eq!(hit["passages"][0]["article_id"], "gift-wrapping");
    // The retired article stayed retired: the shipped folder does not re-seed it.
    let (_, page) = admin
        .call(Method::GET, "/articles?q=return&per_page=100", None)
        .await;
    assert!(
        page["articles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["id"] != "how-to-return"),
        "{page}"
    );
}

#[tokio::test]
async fn the_openapi_document_names_every_route() {
    let app = spawn_app().await;
    let doc = reqwest::get(app.url("/api/admin/openapi.yaml"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&doc).unwrap();
    let paths = doc["paths"].as_mapping().unwrap();
    for path in [
        "/api/admin/articles",
        "/api/admin/articles/{id}",
        "/api/admin/articles/{id}/restore",
        "/api/admin/articles/{id}/versions",
        "/api/admin/articles/{id}/versions/{version}",
        "/api/admin/articles/{id}/diff",
        "/api/admin/import",
        "/api/admin/export",
        "/api/admin/search",
        "/api/admin/gaps",
        "/api/insights/overview",
        "/api/insights/conversations.csv",
        "/api/insights/topics",
        "/api/insights/gaps",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
}

#[tokio::test]
async fn example_questions_are_kept_versioned_and_find_their_article() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    let mut article = json!({
        "title": "Engraving",
        "body": "We engrave boards and knives with up to 20 letters for €8 per item.",
        "tags": ["personalisation"],
    });
    admin.create(article.clone()).await;
    // Without questions, a customer's own wording misses the article.
    let asked = "Can you put a name on a board?";
    let before = admin.search(asked).await;
    assert_ne!(
        before["reply"]["citation"]["article_id"], "engraving",
        "{before}"
    );
    article["version"] = json!(1);
    article["questions"] = json!([
        "Can you put a name on a board?",
        "  ",
        "Do you personalise knives?"
    ]);
    let (status, updated) = admin
        .call(Method::PUT, "/articles/engraving", Some(article))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["questions"],
        json!([
            "Can you put a name on a board?",
            "Do you personalise knives?"
        ]),
        "blank questions are dropped"
    );
    let (_, diff) = admin
        .call(Method::GET, "/articles/engraving/diff?from=1&to=2", None)
        .await;
    assert_eq!(diff["changed"], json!(["questions"]), "{diff}");
    let after = admin.search(asked).await;
    assert_eq!(
        after["reply"]["citation"]["article_id"], "engraving",
        "{after}"
    );
    assert!(
        after["reply"]["text"].as_str().unwrap().contains("€8"),
        "{after}"
    );
    let (status, refused) = admin
        .call(
            Method::POST,
            "/articles",
            Some(json!({"title": "T", "body": "B", "questions": ["x".repeat(400)]})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["fields"]["questions"].is_string(), "{refused}");
}

#[tokio::test]
async fn script_links_are_refused_on_edit_and_import_and_never_rendered() {
    let app = spawn_admin_app(TempDir::new().unwrap()).await;
    let admin = Admin::new(&app);
    for (field, article) in [
        (
            "body",
            json!({"title": "T", "body": "Click [here](javascript:alert(document.cookie))."}),
        ),
        (
            "body",
            json!({"title": "T", "body": "Click [here](&#106;avascript:alert(1))."}),
        ),
        (
            "body",
            json!({"title": "T", "body": "See <vbscript:msgbox(1)>."}),
        ),
        (
            "body",
            json!({"title": "T", "body": "![x](data:text/html;base64,PHNjcmlwdD4=)"}),
        ),
        (
            "url",
            json!({"title": "T", "body": "B", "url": "javascript:alert(1)"}),
        ),
        (
            "url",
            json!({"title": "T", "body": "B", "url": "//evil.example"}),
        ),
        (
            "url",
            json!({"title": "T", "body": "B", "url": "/\\evil.example"}),
        ),
    ] {
        let (status, body) = admin
            .call(Method::POST, "/articles", Some(article.clone()))
            .await;
        assert_eq!(status, 422, "{article}: {body}");
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    // Markdown import holds front matter and links to the same rules.
    let files = json!({"files": [
        {"name": "evil.md", "content": "---\nid: evil\ntitle: Evil\nurl: javascript:alert(1)\n---\nHello."},
        {"name": "worse.md", "content": "---\nid: worse\ntitle: Worse\n---\n[Track](javascript:alert(1))"},
    ]});
    let (status, rejected) = admin.call(Method::POST, "/import", Some(files)).await;
    assert_eq!(status, 422, "{rejected}");
    assert_eq!(rejected["report"]["counts"]["rejected"], 2, "{rejected}");
    for id in ["evil", "worse"] {
        let (status, _) = admin
            .call(Method::GET, &format!("/articles/{id}"), None)
            .await;
        assert_eq!(status, 404);
    }
    // The preview keeps a script link's words, never the link.
    let (status, preview) = admin
        .call(
            Method::POST,
            "/preview",
            Some(json!({"body": "[a](javascript:alert(1)) [b](VBScript:x) [c](/kb/returns)"})),
        )
        .await;
    assert_eq!(status, 200);
    let html = preview["html"].as_str().unwrap();
    assert!(
        !html.to_lowercase().contains("script:"),
        "a script link was rendered: {html}"
    );
    assert!(html.contains("href=\"/kb/returns\""), "{html}");
}

#[tokio::test]
async fn named_admins_author_their_changes_and_agents_cannot_edit() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let articles = app.url("/api/admin/articles");
    // Neither a token nor an admin account: the admin API is off.
    let response = client.get(&articles).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "admin_disabled"
    );

    app.add_account("Ana", "ana's long password", Role::Admin);
    app.add_agent("Sam", "sam's long password");
    let response = client.get(&articles).send().await.unwrap();
    assert_eq!(response.status(), 401, "on once an admin exists");

    // An agent works in the console, not here.
    let sam = app.sign_in("Sam", "sam's long password").await;
    let response = client
        .get(&articles)
        .bearer_auth(&sam)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "admin_role_required"
    );

    // An admin signs in once for the console and the admin page: the
    // cookie is for all of `/api`, and says the role.
    let login = client
        .post(app.url("/api/console/login"))
        .json(&json!({"name": "Ana", "password": "ana's long password"}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Path=/api;"), "{cookie}");
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["agent"], json!({"name": "Ana", "role": "admin"}));
    let ana = login["token"].as_str().unwrap().to_string();
    let cookie_header = format!("fd_agent={ana}");

    // Her change is hers, whatever header a client adds.
    let created: Value = client
        .post(&articles)
        .header("cookie", &cookie_header)
        .header("X-Frontdesk-User", "someone else")
        .json(&gift_wrap("3 euros"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["author"], "Ana", "{created}");
    let me: Value = client
        .get(app.url("/api/console/me"))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["agent"]["role"], "admin");

    // A changed role ends her sign-ins at once.
    app.state
        .store
        .set_role_blocking("Ana", Role::Agent)
        .unwrap();
    let response = client
        .get(app.url("/api/console/me"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
