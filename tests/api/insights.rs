//! The customer's rating over the websocket and the insights figures on a
//! small history whose numbers are counted by hand.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, spawn_app, spawn_app_for_many_customers};

const PASSWORD: &str = "a long enough password";

async fn agent(app: &TestApp) -> String {
    app.add_agent("sam", PASSWORD);
    app.sign_in("sam", PASSWORD).await
}

pub(crate) async fn post(app: &TestApp, token: &str, session: &str, action: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(app.url(&format!("/api/console/conversations/{session}/{action}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{action}");
}

async fn overview(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    app.get_with_status(&format!("/api/insights/overview{query}"), token)
        .await
}

/// The insights' CSV export for `query`, checked to be CSV.
async fn conversations_csv(app: &TestApp, token: &str, query: &str) -> String {
    let response = reqwest::Client::new()
        .get(app.url(&format!("/api/insights/conversations.csv{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    response.text().await.unwrap()
}

/// A conversation in which the customer asks for a person, who takes it
/// over and closes it with `outcome`.
async fn closed_by_a_person(app: &TestApp, token: &str, outcome: &str) -> (WsClient, String) {
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "I want to talk to a human").await;
    post(app, token, &session, "takeover", json!({})).await;
    post(app, token, &session, "close", json!({"outcome": outcome})).await;
    (ws, session)
}

/// Rates the conversation and returns the `rated` event it caused.
pub(crate) async fn rate(ws: &mut WsClient, score: u8, comment: Option<&str>) -> Value {
    let mut frame = json!({"type": "rating", "score": score});
    if let Some(c) = comment {
        frame["comment"] = json!(c);
    }
    ws.send_json(frame).await;
    ws.recv_until_where(Duration::from_secs(5), |f| f["event"] == "rated")
        .await
        .pop()
        .unwrap()
}

#[tokio::test]
async fn a_closed_conversation_is_rated_and_the_rating_replays_and_counts() {
    let app = spawn_app().await;
    let token = agent(&app).await;
    let mut ws = app.connect().await;
    // Nothing to rate before the conversation exists.
    ws.send_json(json!({"type": "rating", "score": 5})).await;
    let refused = ws.recv().await;
    assert_eq!(refused["code"], "no_conversation", "{refused}");
    let session = ws.start_session().await;
    ws.ask("q1", "how long do I have to return something?")
        .await;
    post(&app, &token, &session, "takeover", json!({})).await;
    post(
        &app,
        &token,
        &session,
        "close",
        json!({"outcome": "resolved"}),
    )
    .await;
    ws.recv_until_where(Duration::from_secs(5), |f| f["event"] == "closed")
        .await;
    for bad in [json!(0), json!(6), json!("5")] {
        ws.send_json(json!({"type": "rating", "score": bad})).await;
        assert_eq!(ws.recv().await["code"], "invalid_frame");
    }
    let rated = rate(&mut ws, 4, Some("  quick, thanks ")).await;
    assert_eq!(rated["agent"], "customer");
    let text = rated["text"].as_str().unwrap();
    assert!(
        text.contains("4 of 5") && text.contains("\"quick, thanks\""),
        "{text}"
    );

    let mut back = app.connect().await;
    back.hello(Some(&session), None).await;
    let replayed = back
        .recv_until_where(Duration::from_secs(5), |f| f["event"] == "rated")
        .await;
    assert_eq!(replayed.last().unwrap()["type"], "history");

    let (_, figures) = overview(&app, &token, "").await;
    let now = &figures["current"];
    assert_eq!(
        now["csat_person"],
        json!({"mean": 4.0, "count": 1}),
        "{figures}"
    );
    assert_eq!(now["csat_bot"]["count"], 0);
}

#[tokio::test]
async fn the_overview_counts_a_known_history_and_compares_it_with_the_period_before() {
    let app = spawn_app().await;
    let token = agent(&app).await;

    // A: the bot alone, two questions, rated 5.
    let mut a = app.connect().await;
    a.start_session().await;
    a.ask("q1", "how long do I have to return something?").await;
    a.ask("q2", "do you ship to Belgium?").await;
    rate(&mut a, 5, None).await;
    // B: asks for a person, who takes it over and closes it; rated 2.
    let (mut b, _) = closed_by_a_person(&app, &token, "resolved").await;
    rate(&mut b, 2, Some("slow")).await;
    // C: the bot alone, not rated.
    let mut c = app.connect().await;
    c.start_session().await;
    c.ask("q1", "which payment methods do you accept?").await;
    // D: opened, never wrote: not a conversation.
    let mut d = app.connect().await;
    d.start_session().await;

    let (status, figures) = overview(&app, &token, "?days=7").await;
    assert_eq!(status, StatusCode::OK, "{figures}");
    assert_eq!(figures["days"], 7);
    let now = &figures["current"];
    assert_eq!(now["conversations"], 3, "{figures}");
    assert_eq!(now["bot_alone"], 2);
    assert_eq!(now["with_person"], 1);
    let containment = now["containment"].as_f64().unwrap();
    assert!((containment - 2.0 / 3.0).abs() < 1e-9, "{containment}");
    assert_eq!(
        now["flags"],
        json!([{"name": "asked_for_human", "count": 1}])
    );
    assert_eq!(now["csat_bot"], json!({"mean": 5.0, "count": 1}));
    assert_eq!(now["csat_person"], json!({"mean": 2.0, "count": 1}));
    // Every customer message is counted under its intent: four in all.
    let intents = now["top_intents"].as_array().unwrap();
    let counted: i64 = intents.iter().map(|i| i["count"].as_i64().unwrap()).sum();
    assert_eq!(counted, 4, "{intents:?}");
    assert!(now["sentiment"].is_f64());
    // The lines over time: every day of the period, today's point last,
    // adding up to the period.
    let daily = now["daily"].as_array().unwrap();
    assert!(daily.len() >= 7 && daily.len() <= 8, "{daily:?}");
    let per_day: i64 = daily
        .iter()
        .map(|d| d["conversations"].as_i64().unwrap())
        .sum();
    assert_eq!(per_day, 3, "{daily:?}");
    assert_eq!(daily.last().unwrap()["conversations"], 3, "{daily:?}");
    assert_eq!(daily.last().unwrap()["bot_alone"], 2, "{daily:?}");
    let before = &figures["previous"];
    assert_eq!(before["conversations"], 0);
    assert!(before["containment"].is_null());

    let (status, _) = overview(&app, &token, "?days=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let anonymous = reqwest::get(app.url("/api/insights/overview"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// The products and aspects `knowledge/catalogue/` names, as a customer
/// raises them over the websocket: stored with the message, shown in the
/// console's transcript and counted in the insights.
#[tokio::test]
async fn products_and_aspects_a_customer_raises_are_stored_shown_and_counted() {
    let app = spawn_app().await;
    let token = agent(&app).await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask(
        "q1",
        "the tea towels barely absorb anything, so disappointed",
    )
    .await;
    ws.ask("q2", "how much does the cast-iron skillet cost?")
        .await;
    // The skillet again, at another place in its message: counted by key.
    ws.ask("q3", "is the skillet oven safe?").await;

    let detail = app
        .get_json(&format!("/api/console/conversations/{session}"), &token)
        .await;
    let customer: Vec<&Value> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "customer")
        .collect();
    let mentions = |m: &Value| -> Vec<(String, String)> {
        m["demand"]["mentions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap().to_string(),
                    d["key"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let first = mentions(customer[0]);
    assert!(
        first.contains(&("product".into(), "tea-towel".into()))
            && first.contains(&("aspect".into(), "quality".into())),
        "{}",
        customer[0]
    );
    let towels = &customer[0]["demand"]["mentions"][0];
    assert_eq!(towels["sentiment"], "negative", "{}", customer[0]);
    assert_eq!(
        customer[0]["demand"]["kind"], "complaint",
        "{}",
        customer[0]
    );
    // "cast-iron" names the skillet here: not the category, not a material.
    assert_eq!(
        mentions(customer[1]),
        [
            ("aspect".to_string(), "price".to_string()),
            ("product".to_string(), "skillet".to_string())
        ],
        "{}",
        customer[1]
    );
    assert_eq!(customer[1]["demand"]["kind"], "question");

    let (_, figures) = overview(&app, &token, "?days=7").await;
    let now = &figures["current"];
    let keys = |field: &str| -> Vec<(String, i64)> {
        now[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["key"].as_str().unwrap().to_string(),
                    m["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let products = keys("top_products");
    assert!(products.contains(&("tea-towel".into(), 1)), "{products:?}");
    assert!(products.contains(&("skillet".into(), 2)), "{products:?}");
    let aspects = keys("top_aspects");
    assert!(aspects.contains(&("quality".into(), 1)), "{aspects:?}");
    assert!(aspects.contains(&("price".into(), 1)), "{aspects:?}");
    let kinds: i64 = now["message_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["count"].as_i64().unwrap())
        .sum();
    assert_eq!(kinds, 3, "{now}");
}

/// The period's conversations as CSV: one row each, with what the customer
/// raised; an empty period is a header alone.
#[tokio::test]
async fn the_conversations_of_a_period_download_as_csv() {
    let app = spawn_app().await;
    let token = agent(&app).await;
    let empty = conversations_csv(&app, &token, "?days=1").await;
    assert_eq!(
        empty.trim(),
        "session,started,customer_messages,person_joined,flag_reason,outcome,rating,rating_comment,sentiment,intents,kinds,products,aspects"
    );

    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask(
        "q1",
        "the tea towels barely absorb anything, so disappointed",
    )
    .await;
    ws.ask("q2", "do you sell the stoneware mugs in blue?")
        .await;
    rate(&mut ws, 3, Some("ok, I guess")).await;
    let mut idle = app.connect().await;
    idle.start_session().await;

    let text = conversations_csv(&app, &token, "?days=7").await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let row = &rows[0];
    assert_eq!(&row[0], session.as_str());
    assert!(row[1].ends_with('Z'), "{text}");
    assert_eq!(&row[2], "2");
    assert_eq!(&row[3], "false");
    // Just written in: not over yet.
    assert_eq!(&row[5], "open");
    assert_eq!(&row[6], "3");
    assert_eq!(&row[7], "ok, I guess");
    let products: Vec<&str> = row[11].split(',').collect();
    assert!(
        products.contains(&"tea-towel") && products.contains(&"mug"),
        "{text}"
    );
    assert!(row[12].split(',').any(|a| a == "quality"), "{text}");
}

/// Closed by a person, reopened by the customer, or still going: each
/// conversation gets its outcome in the overview and the export (the rules
/// for quiet conversations are unit tests of `storage::outcomes`).
#[tokio::test]
async fn how_conversations_end_is_counted() {
    let app = spawn_app().await;
    let token = agent(&app).await;
    let mut open = app.connect().await;
    let open_session = open.start_session().await;
    open.ask("q1", "how long do I have to return something?")
        .await;
    let (_resolved, resolved_session) = closed_by_a_person(&app, &token, "resolved").await;
    let (mut reopened, reopened_session) = closed_by_a_person(&app, &token, "unresolved").await;
    reopened
        .ask("q2", "it still is not sorted, where is my refund?")
        .await;
    // Saying goodbye after an answer closes it as solved, and the widget
    // is asked for a rating as after a person closes it.
    let mut solved = app.connect().await;
    let solved_session = solved.start_session().await;
    solved.ask("q1", "do you ship to Belgium?").await;
    let bye = solved.ask("q2", "that's all, bye").await;
    assert_eq!(bye.reply["kind"], "smalltalk", "{}", bye.reply);
    let closed = solved
        .recv_until_where(Duration::from_secs(5), |f| f["event"] == "closed")
        .await
        .pop()
        .unwrap();
    assert_eq!(closed["agent"], "customer", "{closed}");
    // Goodbye without an answer first is only small talk.
    let mut greeted = app.connect().await;
    let greeted_session = greeted.start_session().await;
    greeted.ask("q1", "bye").await;

    let (status, figures) = overview(&app, &token, "?days=7").await;
    assert_eq!(status, StatusCode::OK, "{figures}");
    let now = &figures["current"];
    let count = |name: &str| {
        now["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {figures}"))["count"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count("open"), 2, "{figures}");
    assert_eq!(count("resolved_with_person"), 1, "{figures}");
    assert_eq!(count("reopened"), 1, "{figures}");
    assert_eq!(count("resolved_by_bot"), 1, "{figures}");
    assert_eq!(count("abandoned") + count("unresolved"), 0);
    // Of the three that are over, two were resolved and one reopened.
    let rate = |name: &str| now[name].as_f64().unwrap();
    assert!(
        (rate("resolution_rate") - 2.0 / 3.0).abs() < 1e-9,
        "{figures}"
    );
    assert!((rate("reopen_rate") - 1.0 / 3.0).abs() < 1e-9, "{figures}");

    let text = conversations_csv(&app, &token, "?days=7").await;
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let outcomes: Vec<Option<String>> = [
        &open_session,
        &resolved_session,
        &reopened_session,
        &solved_session,
        &greeted_session,
    ]
    .iter()
    .map(|session| {
        rows.iter()
            .find(|r| &r[0] == session.as_str())
            .map(|r| r[5].to_string())
    })
    .collect();
    assert_eq!(
        outcomes,
        [
            Some("open".to_string()),
            Some("resolved_with_person".to_string()),
            Some("reopened".to_string()),
            Some("resolved_by_bot".to_string()),
            Some("open".to_string()),
        ],
        "{text}"
    );
}

/// Every number of the insights page clicks through to its conversations:
/// the same period, filtered by outcome, hand-off reason, a person joining,
/// intent, kind, product or aspect, as JSON (newest first) and as CSV; a
/// filter that does not parse is a JSON `bad_request`.
#[tokio::test]
async fn a_number_clicks_through_to_its_conversations() {
    let app = spawn_app().await;
    let token = agent(&app).await;
    let mut alone = app.connect().await;
    let bot_session = alone.start_session().await;
    alone
        .ask(
            "q1",
            "the tea towels barely absorb anything, so disappointed",
        )
        .await;
    let (_person, person_session) = closed_by_a_person(&app, &token, "resolved").await;

    let list = |query: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let (status, body) = app
                .get_with_status(&format!("/api/insights/conversations{query}"), token)
                .await;
            (status, body)
        }
    };
    let sessions = |body: &Value| -> Vec<String> {
        body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["session"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, all) = list("?days=7").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 2);
    // Newest first.
    assert_eq!(
        sessions(&all),
        [person_session.clone(), bot_session.clone()]
    );

    for (query, expected) in [
        ("?days=7&person=true", &person_session),
        ("?days=7&flag=asked_for_human", &person_session),
        ("?days=7&outcome=resolved_with_person", &person_session),
        ("?days=7&person=false", &bot_session),
        ("?days=7&product=tea-towel", &bot_session),
        ("?days=7&aspect=quality&kind=complaint", &bot_session),
    ] {
        let (status, body) = list(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(
            sessions(&body),
            std::slice::from_ref(expected),
            "{query}: {body}"
        );
    }
    let (_, none) = list("?days=7&product=tea-towel&person=true").await;
    assert_eq!(none["total"], 0);
    // An intent the bot row raised finds it.
    let intent = all["conversations"][1]["intents"]
        .as_str()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let (_, by_intent) = app
        .get_with_status(
            &format!("/api/insights/conversations?days=7&intent={intent}"),
            &token,
        )
        .await;
    assert!(sessions(&by_intent).contains(&bot_session), "{by_intent}");

    let text = conversations_csv(&app, &token, "?days=7&person=true").await;
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(&rows[0][0], person_session.as_str());

    for bad in ["?outcome=happy", "?colour=red", "?person=maybe", "?days=0"] {
        let (status, body) = list(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["code"], "bad_request", "{bad}: {body}");
    }
}

/// Rising topics: words customers use more this period than in the one
/// before (here: yesterday against the day before), grouped, with
/// examples, clicking through to the conversations that used them.
#[tokio::test]
async fn words_customers_suddenly_use_are_a_rising_topic_that_clicks_through() {
    // Thirteen customers from one address within seconds.
    let app = spawn_app_for_many_customers().await;
    let token = agent(&app).await;
    let ask = |text: &'static str| {
        let app = &app;
        async move {
            let mut ws = app.connect().await;
            let session = ws.start_session().await;
            ws.ask("q1", text).await;
            (ws, session)
        }
    };
    let mut open = Vec::new();
    let mut before = Vec::new();
    for _ in 0..3 {
        let (ws, session) = ask("where is my parcel?").await;
        open.push(ws);
        before.push(session);
    }
    // Those three were the day before yesterday.
    let db = rusqlite::Connection::open(app.data_dir.path().join("frontdesk.sqlite3")).unwrap();
    for session in &before {
        for table in ["sessions", "messages"] {
            let column = if table == "sessions" {
                "id"
            } else {
                "session_id"
            };
            db.execute(
                &format!(
                    "UPDATE {table} SET created_at_ms = created_at_ms - 129600000 WHERE {column} = ?1"
                ),
                [session],
            )
            .unwrap();
        }
    }
    // Yesterday: six like those, and four about something new.
    for _ in 0..6 {
        open.push(ask("where is my parcel?").await.0);
    }
    let mut cracked = Vec::new();
    for text in [
        "the lid of my teapot arrived cracked",
        "my teapot lid is cracked, what now?",
        "Cracked lid on the teapot I got today",
        "teapot lid came cracked",
    ] {
        let (ws, session) = ask(text).await;
        open.push(ws);
        cracked.push(session);
    }

    let (status, body) = app
        .get_with_status("/api/insights/topics?days=1", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let topics = body["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1, "{body}");
    let topic = &topics[0];
    assert_eq!(topic["conversations"], 4, "{body}");
    assert_eq!(topic["previous"], 0, "{body}");
    let terms: Vec<&str> = topic["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(terms.contains(&"lid") && terms.contains(&"crack"), "{body}");
    assert_eq!(topic["examples"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(
        topic["examples"][0]["session"],
        cracked[3].as_str(),
        "{body}"
    );

    let (status, list) = app
        .get_with_status(
            &format!(
                "/api/insights/conversations?days=1&topic={}",
                terms.join(",")
            ),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 4, "{list}");

    let (status, bad) = app
        .get_with_status("/api/insights/topics?days=0", &token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], "bad_request");
}

#[tokio::test]
async fn questions_the_bot_could_not_answer_in_a_period_are_grouped_with_their_wordings() {
    let app = spawn_app().await;
    let token = agent(&app).await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    for (id, q) in [
        ("g1", "Do you offer engraving on jewellery?"),
        ("g2", "do you offer engraving on rings?"),
        ("g3", "Is there a loyalty programme for frequent buyers?"),
        ("g4", "Can I book a pottery class in your studio?"),
    ] {
        let reply = ws.ask(id, q).await;
        let kind = reply.reply["kind"].as_str().unwrap();
        assert!(kind == "no_answer" || kind == "declined", "{q}: {kind}");
    }
    app.gaps_recorded(4).await;
    // The last question was asked two days ago: outside a one-day period.
    let db = rusqlite::Connection::open(app.data_dir.path().join("frontdesk.sqlite3")).unwrap();
    db.execute(
        "UPDATE gaps SET at_ms = at_ms - 172800000 WHERE question LIKE '%pottery%'",
        [],
    )
    .unwrap();

    let (status, body) = app
        .get_with_status("/api/insights/gaps?days=1", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["questions"], 3, "{body}");
    let gaps = body["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2, "{body}");
    assert_eq!(gaps[0]["count"], 2, "{body}");
    assert_eq!(gaps[0]["sessions"], 1, "{body}");
    // Newest first: the group's question is its latest wording.
    assert_eq!(gaps[0]["question"], "do you offer engraving on rings?");
    assert_eq!(
        gaps[0]["examples"],
        json!([
            "do you offer engraving on rings?",
            "Do you offer engraving on jewellery?"
        ])
    );
    assert!(gaps[1]["question"].as_str().unwrap().contains("loyalty"));
    // The count clicks through to the conversations that asked.
    assert_eq!(gaps[0]["conversations"], json!([session]), "{body}");
    let (status, list) = app
        .get_with_status(
            &format!("/api/insights/conversations?days=1&conversations={session}"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["conversations"][0]["session"], session.as_str());
    let (_, none) = app
        .get_with_status(
            &format!(
                "/api/insights/conversations?days=1&conversations={}",
                uuid::Uuid::new_v4()
            ),
            &token,
        )
        .await;
    assert_eq!(none["total"], 0, "{none}");

    let (_, week) = app
        .get_with_status("/api/insights/gaps?days=7", &token)
        .await;
    assert_eq!(week["questions"], 4, "{week}");

    let (status, body) = app
        .get_with_status("/api/insights/gaps?days=0", &token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request", "{body}");
    let anonymous = reqwest::get(app.url("/api/insights/gaps")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
