//! The conversations shops see most, through the real server and protocol:
//! offers answered with yes or no, follow-ups, complaints, order status,
//! two questions at once, a choice between two articles, nothing unchecked
//! on screen, and the admin hit test agreeing with chat.

use frontdesk::generation::ScriptedGenerator;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{AppOptions, TestApp, spawn_app, spawn_app_with, spawn_scripted};

async fn flag_of(app: &TestApp, session: &str) -> Option<String> {
    let id = uuid::Uuid::parse_str(session).unwrap();
    let conversation = app.state.store.conversation(id).await.unwrap().unwrap();
    conversation.flag.map(|f| f.reason.as_str().to_string())
}

pub(crate) fn quick_replies(reply: &Value) -> Vec<String> {
    reply["quick_replies"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_question_about_the_team_is_answered_and_a_request_for_a_person_hands_over() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let about = ws
        .ask("q1", "do real people work there or is it only bots")
        .await;
    assert_eq!(about.reply["kind"], "extractive", "{}", about.reply);
    assert_eq!(
        about.reply["citations"][0]["article_id"],
        "talk-to-a-person"
    );
    assert_eq!(
        quick_replies(&about.reply),
        ["Yes, connect me", "No, thanks"]
    );
    assert_eq!(flag_of(&app, &session).await, None);
    let yes = ws.ask("q2", "Yes, connect me").await;
    assert_eq!(yes.reply["kind"], "handoff", "{}", yes.reply);

    let mut other = app.connect().await;
    other.start_session().await;
    let request = other.ask("q1", "can I speak to a human").await;
    assert_eq!(request.reply["kind"], "handoff", "{}", request.reply);
}

#[tokio::test]
async fn yes_to_the_offer_of_a_person_hands_over_and_no_does_not() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let unknown = ws.ask("q1", "Do you offer gift wrapping?").await;
    assert_eq!(unknown.reply["kind"], "no_answer", "{}", unknown.reply);
    let buttons = quick_replies(&unknown.reply);
    assert_eq!(buttons, ["Yes, connect me", "No, thanks"]);
    // The button sends its label; asking for a person again is not needed.
    let yes = ws.ask("q2", &buttons[0]).await;
    assert_eq!(yes.reply["kind"], "handoff", "{}", yes.reply);
    assert_eq!(
        flag_of(&app, &session).await.as_deref(),
        Some("asked_for_human")
    );

    let mut other = app.connect().await;
    let other_session = other.start_session().await;
    other
        .ask("q1", "Do you have a loyalty points programme?")
        .await;
    let no = other.ask("q2", "no thanks").await;
    assert_eq!(no.reply["kind"], "smalltalk", "{}", no.reply);
    assert!(no.text().contains("anything else"), "{}", no.text());
    assert_eq!(flag_of(&app, &other_session).await, None);
    // Typed "yes" after an answer with no offer is not a hand-off.
    let answer = other
        .ask("q3", "How long do I have to return something?")
        .await;
    assert!(quick_replies(&answer.reply).is_empty());
    let yes = other.ask("q4", "yes").await;
    assert_ne!(yes.reply["kind"], "handoff", "{}", yes.reply);
}

#[tokio::test]
async fn a_question_after_an_off_topic_turn_stands_on_its_own_and_a_follow_up_leans_on_the_topic() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let off = ws
        .ask("q1", "what's the weather like in Utrecht today?")
        .await;
    assert_eq!(off.reply["kind"], "declined", "{}", off.reply);
    let paypal = ws.ask("q2", "can i pay with paypal").await;
    assert_eq!(paypal.cited(), ["payment-methods"], "{}", paypal.reply);
    assert!(paypal.text().contains("PayPal"), "{}", paypal.text());

    let costs = ws
        .ask("q3", "how much is shipping in the netherlands")
        .await;
    assert!(
        costs.cited().contains(&"shipping-costs".to_string()),
        "{}",
        costs.reply
    );
    let belgium = ws.ask("q4", "and to belgium?").await;
    assert!(
        belgium.cited().contains(&"shipping-costs".to_string()),
        "{}",
        belgium.reply
    );
    assert!(belgium.text().contains("7.95"), "{}", belgium.text());
}

#[tokio::test]
async fn a_furious_complaint_hears_sorry_then_the_steps_and_the_remedy_then_the_offer_of_a_person()
{
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let ex = ws
        .ask(
            "q1",
            "My skillet arrived cracked AGAIN and nobody answers my emails. I am furious!",
        )
        .await;
    assert_eq!(ex.cited(), ["damaged-delivery"], "{}", ex.reply);
    let text = ex.text();
    let sorry = &app.state.texts.sorry;
    assert!(text.starts_with(sorry.as_str()), "{text}");
    assert!(text.contains("48 hours"), "{text}");
    // What the shop does about it, from the article's other section.
    assert!(text.contains("free replacement"), "{text}");
    assert!(
        text.ends_with(app.state.texts.offer_person.as_str()),
        "{text}"
    );
    assert_eq!(quick_replies(&ex.reply), ["Yes, connect me", "No, thanks"]);
    assert!(
        flag_of(&app, &session).await.is_some(),
        "a furious customer is flagged"
    );
    let yes = ws.ask("q2", "yes please").await;
    assert_eq!(yes.reply["kind"], "handoff");
}

#[tokio::test]
async fn order_status_without_a_connector_explains_tracking_and_asks_for_the_number() {
    // No shop connected, and no demo shop either.
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.demo_page = false,
            ..AppOptions::default()
        },
        tempfile::TempDir::new().unwrap(),
    )
    .await;
    assert!(app.state.orders.is_none());
    let mut ws = app.connect().await;
    ws.start_session().await;
    let ex = ws.ask("q1", "where is my order?").await;
    assert!(
        ex.cited()
            .iter()
            .any(|c| c == "track-your-order" || c == "order-status"),
        "{}",
        ex.reply
    );
    assert!(ex.text().contains("tracking link"), "{}", ex.text());
    assert!(
        ex.text()
            .ends_with(app.state.texts.ask_order_number.as_str()),
        "{}",
        ex.text()
    );
    let with_number = ws.ask("q2", "where is my order LO-12345678?").await;
    assert!(
        with_number.text().contains("LO-12345678"),
        "{}",
        with_number.text()
    );
}

#[tokio::test]
async fn order_status_with_the_demo_shop_asks_for_the_details_and_tells_what_the_shop_says() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let asked = ws.ask("q1", "where is my order LO-10482002?").await;
    let orders = &app.state.texts.orders;
    assert!(
        asked
            .text()
            .ends_with(&orders.ask_verifier.replace("{order}", "LO-10482002")),
        "{}",
        asked.text()
    );
    // The detail alone, in the next message, completes the lookup.
    let told = ws.ask("q2", "it's ben.jansen@example.com").await;
    assert_eq!(told.reply["kind"], "order_status", "{}", told.reply);
    let text = told.text();
    assert!(text.contains("on its way with PostNL"), "{text}");
    assert!(text.contains("https://jouw.postnl.nl/"), "{text}");
    assert!(text.contains("Expected delivery"), "{text}");
    // Then what the knowledge base says to do if it is late, cited.
    assert!(
        text.find("Expected delivery") < text.find("2 business days"),
        "{text}"
    );
    assert_eq!(told.cited(), ["late-or-lost-parcel"]);
    // Someone else's details get nothing about the order.
    let mut other = app.connect().await;
    other.start_session().await;
    let refused = other
        .ask(
            "q1",
            "status of order LO-10482002 please, my email is eve@example.com",
        )
        .await;
    assert_eq!(refused.reply["kind"], "order_status", "{}", refused.reply);
    assert!(!refused.text().contains("PostNL"), "{}", refused.text());
    assert_eq!(
        refused.text(),
        orders.not_verified.replace("{order}", "LO-10482002")
    );
    let unknown = other.ask("q2", "and order LO-99999999?").await;
    assert_eq!(
        unknown.text(),
        orders.not_found.replace("{order}", "LO-99999999"),
        "{}",
        unknown.reply
    );
}

#[tokio::test]
async fn after_three_order_details_that_do_not_match_only_a_person_is_offered() {
    let app = spawn_app_with(AppOptions::default(), TempDir::new().unwrap()).await;
    let orders = app.state.texts.orders.clone();
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    for (i, guess) in ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .enumerate()
    {
        let reply = ws
            .ask(
                &format!("q{i}"),
                &format!("where is order LO-10482002? my email is {guess}"),
            )
            .await;
        assert_eq!(
            reply.text(),
            orders.not_verified.replace("{order}", "LO-10482002"),
            "{}",
            reply.reply
        );
    }
    // Even the right address is not checked any more.
    let stopped = ws.ask("q9", "it's ben.jansen@example.com").await;
    assert_eq!(
        stopped.text(),
        orders.too_many_attempts,
        "{}",
        stopped.reply
    );
    assert!(!stopped.text().contains("PostNL"));
    assert_eq!(
        quick_replies(&stopped.reply),
        ["Yes, connect me", "No, thanks"]
    );

    // A restart does not give the conversation its guesses back.
    ws.close().await;
    let data = app.stop().await;
    let app = spawn_app_with(AppOptions::default(), data).await;
    let mut ws = app.connect().await;
    ws.hello(Some(&session), None).await;
    let after_restart = ws
        .ask(
            "q10",
            "where is order LO-10482002? my email is ben.jansen@example.com",
        )
        .await;
    assert_eq!(
        after_restart.text(),
        app.state.texts.orders.too_many_attempts,
        "{}",
        after_restart.reply
    );
}

#[tokio::test]
async fn order_checks_are_limited_per_address_across_conversations() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.order_checks_per_minute = 1,
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let ask = "where is order LO-10482003? email chloe.peeters@example.com";
    let mut first = app.connect().await;
    first.start_session().await;
    let told = first.ask("q1", ask).await;
    assert!(told.text().contains("out for delivery"), "{}", told.text());
    // A new conversation from the same address does not reset it.
    let mut second = app.connect().await;
    second.start_session().await;
    let refused = second.ask("q1", ask).await;
    assert_eq!(
        refused.text(),
        app.state.texts.orders.too_many_attempts,
        "{}",
        refused.reply
    );
}

#[tokio::test]
async fn an_order_is_cancelled_through_the_demo_shop_only_after_the_customer_says_yes() {
    let app = spawn_app().await;
    let orders = &app.state.texts.orders;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let asked = ws
        .ask(
            "q1",
            "please cancel my order LO-10482001, my email is anna.devries@example.com",
        )
        .await;
    assert_eq!(
        asked.text(),
        orders.confirm_cancel.replace("{order}", "LO-10482001"),
        "{}",
        asked.reply
    );
    assert_eq!(
        quick_replies(&asked.reply),
        [orders.yes_cancel.as_str(), orders.no_keep.as_str()]
    );
    let done = ws.ask("q2", orders.yes_cancel.as_str()).await;
    assert_eq!(
        done.text(),
        orders.cancelled_now.replace("{order}", "LO-10482001"),
        "{}",
        done.reply
    );
    // The shop's own record says so now.
    let status = ws.ask("q3", "where is my order LO-10482001?").await;
    assert!(status.text().contains("was cancelled"), "{}", status.text());

    // A shipped order cannot be cancelled any more.
    let mut other = app.connect().await;
    other.start_session().await;
    other
        .ask(
            "q1",
            "I want to cancel order LO-10482002, email ben.jansen@example.com",
        )
        .await;
    let refused = other.ask("q2", "yes").await;
    assert_eq!(
        refused.text(),
        orders.cancel_not_allowed.replace("{order}", "LO-10482002"),
        "{}",
        refused.reply
    );
}

#[tokio::test]
async fn two_questions_in_one_message_get_both_answers() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let ex = ws
        .ask(
            "q1",
            "How much is express delivery and do you deliver on saturdays?",
        )
        .await;
    assert!(ex.text().contains("9.95"), "{}", ex.text());
    assert!(ex.text().contains("Saturday"), "{}", ex.text());
    let ex = ws
        .ask("q2", "Do you ship to Norway and how long does it take?")
        .await;
    let cited = ex.cited();
    assert!(
        cited.contains(&"shipping-countries".to_string()),
        "{cited:?}"
    );
    assert!(cited.contains(&"delivery-times".to_string()), "{cited:?}");
    assert!(ex.text().contains("5 to 8"), "{}", ex.text());
}

/// Two articles with the same answer under different titles.
fn twin_knowledge() -> TempDir {
    let dir = TempDir::new().unwrap();
    for (id, title) in [
        ("wrap-birthday", "Birthday wrapping"),
        ("wrap-wedding", "Wedding wrapping"),
    ] {
        std::fs::write(
            dir.path().join(format!("{id}.md")),
            format!(
                "---\nid: {id}\ntitle: {title}\ntags: [wrapping]\n---\nWe wrap presents in recycled paper with a ribbon for 3 euros per item.\n"
            ),
        )
        .unwrap();
    }
    dir
}

#[tokio::test]
async fn when_two_articles_fit_equally_the_bot_asks_which_and_answers_the_choice() {
    let knowledge = twin_knowledge();
    let app = spawn_app_with(
        AppOptions {
            knowledge: knowledge.path().to_path_buf(),
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let ask = ws.ask("q1", "gift wrapping?").await;
    assert_eq!(ask.reply["kind"], "clarify", "{}", ask.reply);
    let buttons = quick_replies(&ask.reply);
    assert_eq!(buttons.len(), 2, "{}", ask.reply);
    assert!(ask.tokens.is_empty(), "a question back is not streamed");
    let chosen = ws.ask("q2", "the second one").await;
    let wanted = if buttons[1].starts_with("Wedding") {
        "wrap-wedding"
    } else {
        "wrap-birthday"
    };
    assert_eq!(chosen.cited(), [wanted], "{}", chosen.reply);
    assert!(chosen.text().contains("3 euros"), "{}", chosen.text());
}

#[tokio::test]
async fn a_model_sentence_that_fails_the_check_never_reaches_the_websocket() {
    let app = spawn_scripted(ScriptedGenerator::new([
        "You have 30 days ",
        "to return most items. ",
        "Returns cost €10.95 and ",
        "refunds take 2 weeks. ",
        "Our CEO Amazon says hi.",
    ]))
    .await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let ex = ws
        .ask("q1", "How long do I have to return something?")
        .await;
    let streamed = ex.tokens.concat();
    assert_eq!(streamed, ex.text(), "what was streamed is the reply");
    assert!(
        streamed.contains("You have 30 days to return most items."),
        "{streamed}"
    );
    for invented in ["10.95", "2 weeks", "Amazon"] {
        assert!(
            !streamed.contains(invented),
            "{invented} reached the customer: {streamed}"
        );
    }
    assert_eq!(ex.reply["kind"], "generated");
    assert_eq!(ex.reply["grounded"], true);
}

#[tokio::test]
async fn the_admin_hit_test_gives_the_answer_chat_gives_in_the_same_conversation() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| c.admin_token = Some("secret-token".into()),
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    let hit = |body: Value| {
        let client = client.clone();
        let url = app.url("/api/admin/search");
        async move {
            client
                .request(Method::POST, url)
                .bearer_auth("secret-token")
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "how much is shipping in the netherlands")
        .await;
    // In this conversation "and to belgium?" is a follow-up; on its own it is not.
    let predicted = hit(json!({"query": "and to belgium?", "session_id": session})).await;
    let chat = ws.ask("q2", "and to belgium?").await;
    assert_eq!(
        predicted["reply"]["text"], chat.reply["text"],
        "{predicted}"
    );
    assert_eq!(predicted["reply"]["kind"], chat.reply["kind"]);
    assert_eq!(predicted["reply"]["citations"], chat.reply["citations"]);
    // The same through `context`, the previous question.
    let with_context = hit(json!({
        "query": "and to belgium?",
        "context": "how much is shipping in the netherlands"
    }))
    .await;
    assert_eq!(with_context["reply"]["text"], chat.reply["text"]);
    // And an offer pending in the conversation is answered the same way.
    ws.ask("q3", "Do you offer gift wrapping?").await;
    let predicted = hit(json!({"query": "yes", "session_id": session})).await;
    assert_eq!(predicted["reply"]["kind"], "handoff", "{predicted}");
}

#[tokio::test]
async fn a_town_or_country_code_gets_the_sentence_about_its_country() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    for (id, question) in [
        ("q1", "is delivery free to Rotterdam?"),
        ("q2", "from what amount is delivery free in NL?"),
    ] {
        let reply = ws.ask(id, question).await;
        assert_eq!(reply.cited(), vec!["shipping-costs".to_string()]);
        assert!(reply.text().contains("€50"), "{question}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_yes_no_question_about_an_option_no_article_mentions_is_declined() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    // The list of payment methods does not say yes or no to bitcoin.
    let unknown = ws.ask("q1", "Can I pay with bitcoin?").await;
    assert_eq!(unknown.reply["kind"], "no_answer", "{}", unknown.reply);
    assert!(unknown.cited().is_empty());
    assert_eq!(
        quick_replies(&unknown.reply),
        ["Yes, connect me", "No, thanks"]
    );
    // A place the articles name by its region is no unknown word, and a
    // question that holds most of an article's words is answered from it.
    let island = ws.ask("q2", "Do you deliver to Tenerife?").await;
    assert_eq!(island.cited(), vec!["shipping-countries".to_string()]);
    assert!(
        island.text().contains("Canary Islands"),
        "{}",
        island.text()
    );
    let dryer = ws
        .ask("q3", "Can I put the linen sheets in the tumble dryer?")
        .await;
    assert_eq!(dryer.cited(), vec!["care-linen".to_string()]);
}

#[tokio::test]
async fn a_new_question_about_the_topic_stays_with_its_article() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let first = ws.ask("q1", "can I cancel my order?").await;
    assert_eq!(first.cited(), vec!["cancel-an-order".to_string()]);
    // No pointing words, but the cancellation is what the money is about.
    let money = ws.ask("q2", "when do I get the money back?").await;
    assert_eq!(money.cited(), vec!["cancel-an-order".to_string()]);
    // A question that clearly means another article leaves the topic.
    let other = ws.ask("q3", "Which payment methods do you accept?").await;
    assert_eq!(other.cited(), vec!["payment-methods".to_string()]);
}

#[tokio::test]
async fn a_misspelt_question_is_understood_as_meant() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let reply = ws.ask("q1", "how do i cancle my oder").await;
    assert_eq!(reply.cited(), vec!["cancel-an-order".to_string()]);
}
