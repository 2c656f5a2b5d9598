//! What the bot does in the shop's order system at a customer's request
//! (a return of named items, a cancellation), recorded in the transcript
//! for the widget and the console, and the signed identity a shop's site
//! gives the widget.

use frontdesk::storage::privacy::Subject;
use serde_json::Value;
use tempfile::TempDir;

use crate::answers::quick_replies;
use crate::helpers::{
    AppOptions, IDENTITY_SECRET, TestApp, WsClient, hello_as, identity_app, signed, spawn_app,
    spawn_app_with,
};

/// The next frames up to the transcript event the bot's action caused.
async fn event_after(ws: &mut WsClient) -> Value {
    ws.recv_until("event").await.pop().unwrap()
}

async fn console_conversation(app: &TestApp, session: &str) -> Value {
    app.add_agent("sam", "a long enough password");
    let token = app.sign_in("sam", "a long enough password").await;
    app.get_json(&format!("/api/console/conversations/{session}"), &token)
        .await
}

#[tokio::test]
async fn named_items_are_returned_after_a_yes_and_the_console_sees_the_order_and_the_event() {
    let app = spawn_app().await;
    let r = &app.state.texts.orders.returns;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let asked = ws
        .ask(
            "q1",
            "I'd like to return the mugs from order LO-10482007, my email is gwen.visser@example.com",
        )
        .await;
    assert_eq!(asked.reply["kind"], "order_status", "{}", asked.reply);
    assert_eq!(
        asked.text(),
        r.confirm
            .replace("{items}", "4 × Stoneware mug")
            .replace("{order}", "LO-10482007")
    );
    assert_eq!(quick_replies(&asked.reply), [r.yes.as_str(), r.no.as_str()]);
    let done = ws.ask("q2", "yes please").await;
    let text = done.text();
    assert!(text.contains("RT-10482007-1"), "{text}");
    assert!(
        text.contains("https://returns.example/label/RT-10482007-1"),
        "{text}"
    );
    let event = event_after(&mut ws).await;
    assert_eq!(event["event"], "return_started", "{event}");
    assert_eq!(event["agent"], "assistant");
    assert!(
        event["text"].as_str().unwrap().contains("RT-10482007-1"),
        "{event}"
    );

    // The same mugs cannot go back twice.
    let again = ws
        .ask("q3", "I want to return the mugs from order LO-10482007 too")
        .await;
    assert_eq!(
        again.text(),
        r.confirm
            .replace("{items}", "4 × Stoneware mug")
            .replace("{order}", "LO-10482007")
    );
    let refused = ws.ask("q4", "yes").await;
    assert_eq!(
        refused.text(),
        r.not_allowed.replace("{order}", "LO-10482007"),
        "{}",
        refused.reply
    );

    let seen = console_conversation(&app, &session).await;
    let orders = seen["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{seen}");
    assert_eq!(orders[0]["number"], "LO-10482007");
    assert_eq!(orders[0]["status"], "delivered");
    let events: Vec<&Value> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "event")
        .collect();
    assert_eq!(events.len(), 1, "{seen}");
    assert_eq!(events[0]["event"], "return_started");

    // The event replays to the widget like any stored message.
    let mut back = app.connect().await;
    back.hello(Some(&session), Some(0)).await;
    let replayed = back.recv_until_where(std::time::Duration::from_secs(5), |f| {
        f["type"] == "history" && f["role"] == "event"
    });
    let replayed = replayed.await;
    assert_eq!(replayed.last().unwrap()["event"], "return_started");
}

#[tokio::test]
async fn the_bot_asks_which_items_when_none_is_named_and_refuses_an_undelivered_order() {
    let app = spawn_app().await;
    let r = &app.state.texts.orders.returns;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let asked = ws
        .ask(
            "q1",
            "I want to send back something from order LO-10482007, email gwen.visser@example.com",
        )
        .await;
    assert_eq!(
        asked.text(),
        r.which_items.replace("{order}", "LO-10482007"),
        "{}",
        asked.reply
    );
    assert_eq!(
        quick_replies(&asked.reply),
        [
            "Linen throw 130x170",
            "Stoneware mug",
            "Linen tea towel",
            r.all_items.as_str()
        ]
    );
    let confirm = ws.ask("q2", "the throw and the tea towels").await;
    assert_eq!(
        confirm.text(),
        r.confirm
            .replace("{items}", "1 × Linen throw 130x170 and 2 × Linen tea towel")
            .replace("{order}", "LO-10482007")
    );
    let kept = ws.ask("q3", r.no.as_str()).await;
    assert_ne!(kept.reply["kind"], "order_status", "{}", kept.reply);

    let mut other = app.connect().await;
    other.start_session().await;
    let early = other
        .ask(
            "q1",
            "how do I return the tea set from order LO-10482003? email chloe.peeters@example.com",
        )
        .await;
    assert_eq!(
        early.text(),
        r.not_delivered.replace("{order}", "LO-10482003"),
        "{}",
        early.reply
    );
}

#[tokio::test]
async fn a_cancellation_is_a_transcript_event() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    ws.ask(
        "q1",
        "please cancel my order LO-10482006, my email is finn.smit@example.com",
    )
    .await;
    ws.ask("q2", "yes").await;
    let event = event_after(&mut ws).await;
    assert_eq!(event["event"], "order_cancelled", "{event}");
    assert_eq!(
        event["text"],
        app.state
            .texts
            .orders
            .cancel_event
            .replace("{order}", "LO-10482006")
    );
}

#[tokio::test]
async fn a_signed_in_customer_is_not_asked_for_their_email_and_the_console_shows_who_they_are() {
    let app = identity_app().await;
    let mut ws = app.connect().await;
    let frames = hello_as(
        &mut ws,
        None,
        signed("cust-7", "ben.jansen@example.com", IDENTITY_SECRET),
    )
    .await;
    let session = frames.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let told = ws.ask("q1", "where is my order LO-10482002?").await;
    assert_eq!(told.reply["kind"], "order_status", "{}", told.reply);
    assert!(
        told.text().contains("on its way with PostNL"),
        "{}",
        told.text()
    );

    let seen = console_conversation(&app, &session).await;
    assert_eq!(seen["conversation"]["customer"]["id"], "cust-7", "{seen}");
    assert_eq!(
        seen["conversation"]["customer"]["email"],
        "ben.jansen@example.com"
    );
    assert_eq!(seen["orders"][0]["number"], "LO-10482002");

    // Another customer signed in on the same browser does not get this chat.
    let mut switched = app.connect().await;
    let frames = hello_as(
        &mut switched,
        Some(&session),
        signed("cust-8", "anna.devries@example.com", IDENTITY_SECRET),
    )
    .await;
    let welcome = frames.last().unwrap();
    assert_ne!(welcome["session_id"], session.as_str(), "{welcome}");
    assert_eq!(welcome["resumed"], false);
    // Nor does a visitor who is not signed in.
    let mut anonymous = app.connect().await;
    let welcome = anonymous.hello(Some(&session), None).await;
    assert_ne!(welcome["session_id"], session.as_str(), "{welcome}");
    // The customer themselves does.
    let mut again = app.connect().await;
    let frames = hello_as(
        &mut again,
        Some(&session),
        signed("cust-7", "ben.jansen@example.com", IDENTITY_SECRET),
    )
    .await;
    assert_eq!(frames.last().unwrap()["session_id"], session.as_str());

    // Erasing the customer by the address their site vouched for (they
    // never typed it) takes the conversation and its orders.
    let store = &app.state.store;
    let id = uuid::Uuid::parse_str(&session).unwrap();
    let erased = store
        .erase(
            Subject::Email("Ben.Jansen@example.com".into()),
            "ana".into(),
        )
        .await
        .unwrap();
    assert_eq!(erased, [id]);
    assert!(store.conversation_orders(id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_forged_identity_is_refused_and_the_chat_goes_on_anonymously() {
    let app = identity_app().await;
    let mut ws = app.connect().await;
    let frames = hello_as(
        &mut ws,
        None,
        signed("cust-7", "ben.jansen@example.com", "a guessed secret"),
    )
    .await;
    assert_eq!(frames[0]["type"], "error", "{frames:?}");
    assert_eq!(frames[0]["code"], "identity_refused");
    let session = frames.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let asked = ws.ask("q1", "where is my order LO-10482002?").await;
    let orders = &app.state.texts.orders;
    assert!(
        asked
            .text()
            .ends_with(&orders.ask_verifier.replace("{order}", "LO-10482002")),
        "{}",
        asked.text()
    );
    let seen = console_conversation(&app, &session).await;
    assert!(seen["conversation"]["customer"].is_null(), "{seen}");

    // Without an identity secret no identity is taken.
    let plain = spawn_app().await;
    let mut ws = plain.connect().await;
    let frames = hello_as(
        &mut ws,
        None,
        signed("cust-7", "ben.jansen@example.com", IDENTITY_SECRET),
    )
    .await;
    assert_eq!(frames[0]["code"], "identity_refused", "{frames:?}");
}

#[tokio::test]
async fn every_order_state_is_told_in_the_shops_words() {
    // Six lookups from one address: more than the default burst allows.
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.order_checks_per_minute = 60,
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let t = &app.state.texts.orders;
    let cases = [
        ("LO-10482001", "anna.devries@example.com", &t.placed),
        ("LO-10482002", "ben.jansen@example.com", &t.shipped),
        (
            "LO-10482003",
            "chloe.peeters@example.com",
            &t.out_for_delivery,
        ),
        ("LO-10482004", "david.muller@example.com", &t.delivered),
        ("LO-10482005", "eva.bakker@example.com", &t.cancelled),
        ("LO-10482006", "finn.smit@example.com", &t.backorder),
    ];
    let mut ws = app.connect().await;
    ws.start_session().await;
    for (n, (number, email, wording)) in cases.into_iter().enumerate() {
        let told = ws
            .ask(
                &format!("q{n}"),
                &format!("where is my order {number}? my email is {email}"),
            )
            .await;
        assert_eq!(told.reply["kind"], "order_status", "{}", told.reply);
        // The status sentence up to its first placeholder after the number.
        let expected = wording.replace("{order}", number);
        let expected = expected.split("{carrier}").next().unwrap();
        assert!(told.text().contains(expected), "{number}: {}", told.text());
    }
}
