//! The prefix cache as patched in vendor/mistralrs-core (vendor/README.md),
//! with the real model: a reply that reuses an earlier prompt's KV cache is
//! the reply the model gives without reuse, for the prompts Frontdesk builds
//! and for a prompt that continues an earlier reply word for word (where
//! mistral.rs 0.8.1 matched one position past what it stored); and the cache
//! keeps to its byte budget. Also the batching patch beside it: replies
//! decoded together, at different lengths, equal replies decoded alone.
//! And the tokenizer patch: the model reads the tokens llama.cpp gives it.
//!
//! A test binary of its own: the byte budgets of the prefix cache and of the
//! dense weights, and the batching switch, are per process, and these tests
//! set them.
//!
//! `FRONTDESK_TEST_DEVICE=cuda` runs them on the GPU (a build with
//! `--features cuda`); the batching patch is the CPU's, so there the test of
//! replies decoded together checks only that they equal replies alone.

use std::path::{Path, PathBuf};

use frontdesk::config::DeviceKind;
use frontdesk::generation::{
    Admission, ChatTurn, GenEvent, GenerationRequest, MistralGenerator, Speaker, TextGenerator,
    prompt,
};
use frontdesk::knowledge::Passage;
use frontdesk::model_files::{self, DEFAULT_CHAT_MODEL, DEFAULT_MODEL_FILE};
use mistralrs::core::{padded_decode, prefix_cache_budget};

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// No dense weights: candle's quantized kernel computes each prompt row on
/// its own, so a reply that reuses rows is bit for bit the reply without
/// reuse. With dense weights the matrix product's shape (the whole prompt,
/// or the few rows after the reused ones) changes the rounding, and a greedy
/// reply can take the other side of a near tie (README, "Generation speed").
const DENSE_MB: u32 = 0;

/// The CPU unless `FRONTDESK_TEST_DEVICE=cuda`.
fn device() -> DeviceKind {
    match std::env::var("FRONTDESK_TEST_DEVICE").as_deref() {
        Ok("cuda") => DeviceKind::Cuda,
        _ => DeviceKind::Cpu,
    }
}

async fn load(prefix_cache_mb: u32) -> MistralGenerator {
    load_running(prefix_cache_mb, 1).await
}

/// The default model, decoding up to `running` customers' replies at once.
async fn load_running(prefix_cache_mb: u32, running: usize) -> MistralGenerator {
    let model = repo_path("models").join(DEFAULT_MODEL_FILE);
    model_files::ensure(&DEFAULT_CHAT_MODEL, &model)
        .await
        .expect("fetch the default model");
    MistralGenerator::load(
        &model,
        device(),
        Some(&repo_path("target/test-data/models")),
        Admission::new(running, 8),
        running,
        DENSE_MB,
        prefix_cache_mb,
    )
    .await
    .expect("load the default model")
}

async fn reply(generator: &MistralGenerator, request: &GenerationRequest) -> String {
    let mut events = generator.start(request.clone()).expect("admitted");
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            GenEvent::Token(token) => text.push_str(&token),
            GenEvent::Done { .. } => return text,
            GenEvent::Failed(e) => panic!("generation failed: {e}"),
        }
    }
    text
}

fn returns_passage() -> Passage {
    Passage {
        id: "returns#0".into(),
        article_id: "returns".into(),
        article_title: "Returns".into(),
        heading: "Sending something back".into(),
        text: "You can return any unused item within 30 days of delivery. Print the \
               prepaid label from your account, pack the item in its original box and \
               drop it at any post office. We refund the price to the card you paid with \
               within 5 working days of receiving the parcel. Sale items can be returned \
               too, but made-to-measure curtains cannot."
            .into(),
        tags: Vec::new(),
        url: "/kb/returns".into(),
        questions: Vec::new(),
    }
}

fn turn(speaker: Speaker, text: &str) -> ChatTurn {
    ChatTurn {
        speaker,
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_reuse_a_cached_prompt_equal_replies_without_reuse() {
    let without = load(0).await;
    let with = load(256).await;
    let passage = returns_passage();
    let ask =
        |history: &[ChatTurn], question: &str| prompt::build(history, question, &passage, 300, 48);

    let first = ask(&[], "How long do I have to return a lamp?");
    let same_article = ask(&[], "Who pays for the return label?");
    let follow_up_history = [
        turn(Speaker::Customer, "How long do I have to return a lamp?"),
        turn(
            Speaker::Assistant,
            "You can return it within 30 days of delivery.",
        ),
    ];
    let follow_up = ask(&follow_up_history, "And when do I get my money back?");

    let (hits_before, past_before) = prefix_cache_budget::hits();
    let first_reply = reply(&with, &first).await;
    assert_eq!(
        first_reply,
        reply(&without, &first).await,
        "nothing cached yet"
    );
    assert!(!first_reply.trim().is_empty());

    // Frontdesk's own prompt shapes: another question about the same article
    // (the instruction and the article are shared), the same prompt again,
    // and a follow-up with history. None reaches past what was stored.
    for request in [&same_article, &first, &follow_up] {
        let reused = reply(&with, request).await;
        assert_eq!(reused, reply(&without, request).await, "{request:?}");
    }
    let (hits, past) = prefix_cache_budget::hits();
    assert_eq!(hits - hits_before, 3, "each of the three reused a cache");
    assert_eq!(past, past_before, "our prompts never reach past the cache");

    // A prompt that repeats the first exchange word for word matches the
    // stored tokens one past the KV cache (the reply's last token was
    // sampled but never run); the patched cache stops where its rows end.
    let mut continued = first.clone();
    continued.turns.push(turn(Speaker::Assistant, &first_reply));
    continued
        .turns
        .push(turn(Speaker::Customer, "Does that include sale items?"));
    let reused = reply(&with, &continued).await;
    assert_eq!(reused, reply(&without, &continued).await);
    let (_, past_after) = prefix_cache_budget::hits();
    assert_eq!(
        past_after - past,
        1,
        "this prompt reached past the stored rows"
    );

    // Bounded by bytes: with room for about one reply's cache, one is kept.
    let (held, entries) = prefix_cache_budget::held();
    assert!(entries >= 2, "{entries} kept within 256 MB");
    let one = held / entries;
    prefix_cache_budget::set_max_bytes(one + one / 2);
    let _ = reply(&with, &ask(&[], "Can I return curtains?")).await;
    // The engine stores and evicts just after it sends the last token.
    let mut kept = prefix_cache_budget::held();
    for _ in 0..200 {
        if kept.1 == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        kept = prefix_cache_budget::held();
    }
    let (held, entries) = kept;
    assert_eq!(entries, 1);
    assert!(held <= one + one / 2, "{held} bytes held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_decoded_together_at_different_lengths_equal_replies_decoded_alone() {
    let generator = load_running(0, 4).await;
    let on_cpu = device() == DeviceKind::Cpu;
    assert_eq!(
        padded_decode::enabled(),
        on_cpu,
        "the default model is a llama"
    );
    let passage = returns_passage();
    // Questions of different lengths: their prompts, and so their replies'
    // positions, differ, which mistral.rs 0.8.1 never batched.
    let requests: Vec<GenerationRequest> = [
        "How long do I have to return a lamp?",
        "Who pays for the return label?",
        "I bought curtains made to measure for our living room last month; can I still send them back?",
        "Refund when?",
    ]
    .iter()
    .map(|question| prompt::build(&[], question, &passage, 300, 48))
    .collect();

    let mut alone = Vec::new();
    for request in &requests {
        alone.push(reply(&generator, request).await);
    }
    let padded_before = padded_decode::padded_steps();
    let beside_before = padded_decode::prompts_beside_decode();
    let together =
        futures_util::future::join_all(requests.iter().map(|request| reply(&generator, request)))
            .await;
    if on_cpu {
        assert!(
            padded_decode::padded_steps() > padded_before,
            "replies of different lengths decoded in one batch"
        );
        assert!(
            padded_decode::prompts_beside_decode() > beside_before,
            "later prompts ran in the same steps as the replies already decoding"
        );
    }
    assert_eq!(together, alone);
}

/// The model reads the tokens it was trained on: SmolLM2's pre-tokenizer
/// (vendor/README.md), chat template included. The expected ids are
/// llama.cpp's (llama-cpp-python 0.3.36, same GGUF, the GGUF's chat
/// template rendered with jinja2). Before the patch, "\n\n" was one token
/// where SmolLM2 and llama.cpp have two, and "(30" one piece instead of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_reads_the_tokens_llama_cpp_gives_it() {
    let generator = load(0).await;
    let texts: [(&str, &[u32]); 3] = [
        ("Hello\n\nWorld", &[19556, 198, 198, 11265]),
        (
            "(returns) within 30 days.\n\nQuestion: can I?",
            &[
                24, 27675, 25, 1127, 216, 35, 32, 2009, 30, 198, 198, 17872, 42, 416, 339, 47,
            ],
        ),
        (
            "I'll say 12345 don't  two  spaces",
            &[
                57, 3060, 1643, 216, 33, 34, 35, 36, 37, 1326, 982, 216, 827, 216, 5600,
            ],
        ),
    ];
    for (text, expected) in texts {
        let tokens = generator.tokenize(text).await.expect("tokenize");
        assert_eq!(tokens, expected, "{text:?}");
    }

    let request = GenerationRequest {
        system: "Answer from the article.\n\nReturns (30 days): unused items only.".into(),
        turns: vec![ChatTurn {
            speaker: Speaker::Customer,
            text: "Can I return a pan I've used?".into(),
        }],
        max_tokens: 1,
    };
    let expected: &[u32] = &[
        1, 9690, 198, 21350, 429, 260, 2524, 30, 198, 198, 25671, 365, 35, 32, 2009, 727, 25989,
        3723, 805, 30, 2, 198, 1, 4093, 198, 7306, 339, 1003, 253, 3557, 339, 3543, 804, 47, 2,
        198, 1, 520, 9531, 198,
    ];
    let tokens = generator.prompt_tokens(&request).await.expect("tokenize");
    assert_eq!(tokens, expected);
}
