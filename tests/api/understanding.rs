//! Understanding in the conversation: intents steer the reply, sentiment and
//! requests for a person flag the session, and a shop's edited catalogue
//! takes effect without a rebuild.

use std::path::Path;

use frontdesk::storage::FlagReason;
use tempfile::TempDir;
use uuid::Uuid;

use crate::helpers::{AppOptions, TestApp, repo_path, spawn_app, spawn_app_with, understanding};

async fn flag_of(app: &TestApp, session: &str) -> Option<FlagReason> {
    let id = Uuid::parse_str(session).unwrap();
    app.state.store.flag_of(id).await.unwrap().map(|f| f.reason)
}

#[tokio::test]
async fn asking_for_a_person_flags_the_session_and_offers_one() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let ex = ws.ask("q1", "I want to talk to a real person").await;
    assert_eq!(ex.reply["kind"], "handoff", "{}", ex.reply);
    assert_eq!(ex.reply["intent"]["name"], "contact_human_agent");
    assert!(ex.tokens.is_empty(), "no model involved");
    assert!(ex.text().contains("someone from our team"), "{}", ex.text());
    assert_eq!(
        flag_of(&app, &session).await,
        Some(FlagReason::AskedForHuman)
    );
}

#[tokio::test]
async fn an_angry_message_is_flagged_with_its_signals() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let ex = ws
        .ask(
            "q1",
            "This is the third time I ask!!! Where is my damn refund? Absolutely ridiculous",
        )
        .await;
    let sentiment = &ex.reply["sentiment"];
    assert_eq!(sentiment["label"], "negative", "{sentiment}");
    assert!(sentiment["score"].as_f64().unwrap() < 0.0);
    let signals: Vec<&str> = sentiment["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for expected in ["anger", "profanity", "repeated_failure"] {
        assert!(signals.contains(&expected), "{expected} in {signals:?}");
    }
    assert_eq!(
        flag_of(&app, &session).await,
        Some(FlagReason::StronglyNegative)
    );
}

#[tokio::test]
async fn a_calm_question_about_returns_is_not_flagged() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    let ex = ws
        .ask(
            "q1",
            "Hi, I bought a linen tablecloth last week. How do I send it back?",
        )
        .await;
    let sentiment = &ex.reply["sentiment"];
    assert_ne!(sentiment["label"], "negative", "{sentiment}");
    assert_eq!(sentiment["signals"], serde_json::json!([]), "{sentiment}");
    assert_eq!(flag_of(&app, &session).await, None);
}

#[tokio::test]
async fn small_talk_is_answered_without_retrieval_or_the_model() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    for (id, text, intent) in [
        ("g", "hi there!", "greeting"),
        ("t", "thanks a lot", "thanks"),
    ] {
        let ex = ws.ask(id, text).await;
        assert_eq!(ex.reply["kind"], "smalltalk", "{}", ex.reply);
        assert_eq!(ex.reply["intent"]["name"], intent);
        assert!(ex.tokens.is_empty());
        assert!(ex.reply["sentiment"]["label"].is_string());
        let alternatives = ex.reply["intent"]["alternatives"].as_array().unwrap();
        assert_eq!(alternatives.len(), 3, "top-3 intents are reported");
    }
    // A pleasant conversation is not flagged.
    assert_eq!(flag_of(&app, &session).await, None);
}

#[tokio::test]
async fn stored_messages_keep_their_intent_and_sentiment() {
    let app = spawn_app().await;
    let mut ws = app.connect().await;
    let session = ws.start_session().await;
    ws.ask("q1", "where is my order? I placed it last week")
        .await;
    let mut again = app.connect().await;
    again.hello(Some(&session), Some(0)).await;
    let history = again.recv_until("history").await;
    let customer = &history[0];
    assert_eq!(customer["role"], "customer", "{customer}");
    assert_eq!(customer["intent"]["name"], "track_order", "{customer}");
    assert!(customer["sentiment"]["label"].is_string());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn an_edited_catalogue_changes_classification_without_a_rebuild() {
    let knowledge = TempDir::new().unwrap();
    copy_dir(&repo_path("knowledge"), knowledge.path());
    std::fs::write(
        knowledge.path().join("intents/showroom_visit.yaml"),
        "name: showroom_visit
description: The customer wants to visit the showroom in person.
action: reply
reply: Our showroom at Oudegracht 12 is open Thursday to Saturday, 10:00-17:00.
examples:
  - can I visit your showroom
  - where is your showroom
  - can I come see the furniture in person
  - do you have a store I can visit
  - when is the showroom open
  - is there a place to look at the tables before buying
  - can i drop by your shop
  - showroom opening hours
  - i'd like to see the sofa in real life
  - where can I try the chairs
",
    )
    .unwrap();
    let app = spawn_app_with(
        AppOptions {
            knowledge: knowledge.path().to_path_buf(),
            own_understanding: true,
            ..Default::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let mut ws = app.connect().await;
    ws.start_session().await;
    let ex = ws
        .ask("q1", "Could I visit the showroom this Saturday?")
        .await;
    assert_eq!(ex.reply["intent"]["name"], "showroom_visit", "{}", ex.reply);
    assert_eq!(ex.reply["kind"], "smalltalk");
    assert!(ex.text().contains("Oudegracht 12"), "{}", ex.text());
}

#[tokio::test]
async fn the_console_lists_flagged_conversations_first() {
    let app = spawn_app().await;
    app.add_agent("sam", "correct horse battery");
    let token = app.sign_in("sam", "correct horse battery").await;
    let mut calm = app.connect().await;
    calm.start_session().await;
    calm.ask("c1", "hello").await;
    let mut upset = app.connect().await;
    let upset_id = upset.start_session().await;
    upset.ask("u1", "get me a human, now").await;
    calm.ask("c2", "thanks!").await;

    let list = app.get_json("/api/console/conversations", &token).await;
    let conversations = list["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 2);
    // Flagged first, although the calm one wrote last.
    assert_eq!(conversations[0]["session_id"], upset_id.as_str());
    assert_eq!(conversations[0]["flag"]["reason"], "asked_for_human");
    assert_eq!(conversations[1]["flagged"], false);
    assert_eq!(
        conversations[1]["sentiment_trend"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn messages_arriving_together_are_embedded_together_and_correctly() {
    let understanding = understanding();
    let texts = [
        "where is my parcel",
        "I forgot my password",
        "hello!",
        "this is the worst shop ever",
        "can I pay with klarna",
        "cancel my order please",
    ];
    let together =
        futures_util::future::join_all(texts.iter().map(|t| understanding.understand(t))).await;
    for (text, batched) in texts.iter().zip(together) {
        let batched = batched.unwrap();
        let alone = understanding.understand_now(text).unwrap();
        assert_eq!(batched.intent.name, alone.intent.name, "{text}");
        assert!(
            (batched.intent.confidence - alone.intent.confidence).abs() < 1e-3,
            "{text}: padding in a batch must not change the result"
        );
        assert_eq!(batched.sentiment.label, alone.sentiment.label, "{text}");
    }
}

/// The encoder's own int8 forward pass against candle-transformers' f32
/// `BertModel` on the same files: the embeddings must agree.
#[test]
fn the_int8_encoder_agrees_with_the_f32_reference() {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};

    let understanding = understanding();
    let encoder = understanding.encoder();
    let dir = repo_path("models").join(frontdesk::model_files::DEFAULT_ENCODER_DIR);
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    // SAFETY: the model file is not modified while the test runs.
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    };
    let reference = BertModel::load(vb, &config).unwrap();
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    let texts = [
        "hi",
        "where is my parcel? it's been two weeks",
        "I want to cancel my subscription and get a refund for last month",
        "wat r ur opening hrs",
    ];
    let ours = encoder.embed(&texts).unwrap();
    for (text, ours) in texts.iter().zip(ours) {
        let ids = tokenizer.encode(*text, true).unwrap().get_ids().to_vec();
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let hidden = reference
            .forward(&ids, &ids.zeros_like().unwrap(), None)
            .unwrap();
        let mean: Vec<f32> = hidden
            .mean(1)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        let cosine: f32 = mean.iter().zip(&ours).map(|(r, o)| r / norm * o).sum();
        assert!(cosine > 0.995, "{text}: cosine {cosine}");
    }
}

#[tokio::test]
async fn eval_trains_on_a_file_and_counts_unknown_labels_as_errors() {
    use frontdesk::evaluation::understanding as eval;
    let dir = TempDir::new().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut train = String::from("text,label\n");
    for (label, words) in [
        (
            "weather",
            [
                "is it going to rain",
                "weather forecast today",
                "will it be sunny",
                "how cold is it outside",
                "do I need an umbrella",
            ],
        ),
        (
            "music",
            [
                "play some jazz",
                "put on my playlist",
                "next song please",
                "turn the music up",
                "play the new album",
            ],
        ),
        (
            "oos",
            [
                "what is the meaning of life",
                "tell me about dinosaurs",
                "how do magnets work",
                "who painted the mona lisa",
                "what's a black hole",
            ],
        ),
    ] {
        for w in words {
            train.push_str(&format!("{w},{label}\n"));
        }
    }
    let train = write("train.csv", &train);
    let test = write(
        "test.csv",
        "text,label\n\"will it rain tomorrow, do you think\",weather\nplay something by Miles Davis,music\norder a taxi,taxi\n",
    );
    let understanding = understanding();
    let (test_rows, train_rows) = (
        eval::read_csv(&test).unwrap(),
        eval::read_csv(&train).unwrap(),
    );
    let report = tokio::task::spawn_blocking(move || {
        eval::intent(&understanding, &test_rows, Some(&train_rows)).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(report.n, 3);
    assert_eq!(report.unknown_labels, 1, "`taxi` is not a trained label");
    assert!(
        report.accuracy <= 0.667,
        "the unknown label is a miss: {report:?}"
    );
    assert!(
        report.p50_ms > 0.0 && report.train_seconds > 0.0,
        "{report:?}"
    );
}
