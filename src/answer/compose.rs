//! The async step of answering: turn a [`Plan`] into the reply the customer
//! reads, streaming it piece by piece. Nothing unverified reaches the
//! stream: the plan's own words are fixed text and the source's sentences
//! are the source; with `answer_style = "generated"` the model rewrites the
//! source sentences, and each sentence it writes is released only once it
//! passes the check, so the streamed text and the final reply agree.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::plan::Plan;
use crate::generation::grounding;
use crate::generation::{ChatTurn, GenEvent, GenerationError, TextGenerator, prompt};
use crate::knowledge::Analyzer;
use crate::storage::ReplyKind;

/// A setting, so it lives with the others (config imports nothing of
/// answering).
pub use crate::config::AnswerStyle;

/// What the model may use.
pub struct Generation<'a> {
    pub generator: &'a dyn TextGenerator,
    pub history: &'a [ChatTurn],
    pub history_budget: usize,
    pub max_tokens: usize,
    /// Personal data in the customer's words is replaced by markers before
    /// the model reads them.
    pub redact: bool,
}

/// The reply as streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    pub text: String,
    pub kind: ReplyKind,
    /// Every sentence is the source's or passed the check against it.
    pub grounded: bool,
    /// From the start of composing to the first piece streamed.
    pub first_visible: Option<Duration>,
    /// Model tokens read (shown or not).
    pub tokens: usize,
    /// From the start of composing to the model's first token.
    pub first_token: Option<Duration>,
    /// Time the model ran.
    pub generation: Duration,
    /// The prompt's length in tokens, when the model reports it.
    pub prompt_tokens: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("cancelled: a person took over")]
    Cancelled,
    #[error(transparent)]
    Generation(#[from] GenerationError),
}

/// Streams the reply through `emit`, one verified piece at a time.
pub async fn compose(
    plan: &Plan,
    question: &str,
    style: AnswerStyle,
    generation: Generation<'_>,
    cancel: &CancellationToken,
    mut emit: impl FnMut(&str),
) -> Result<Composed, ComposeError> {
    let started = Instant::now();
    // A fixed reply (a decline, small talk, a hand-off) comes whole, as `reply`.
    let mut out = Stream {
        text: String::new(),
        first_visible: None,
        started,
        streams: plan.answers_from_kb(),
    };
    if let Some(lead) = &plan.lead {
        out.push(lead, &mut emit);
    }
    let mut model = ModelRun::default();
    // Only an answer from the knowledge base is rewritten; an order's
    // status is the shop's words, and so is the advice said after it.
    let said = if style == AnswerStyle::Generated
        && plan.kind == ReplyKind::Extractive
        && plan.answers_from_kb()
    {
        generate(
            plan,
            question,
            &generation,
            cancel,
            &mut out,
            &mut emit,
            &mut model,
        )
        .await?
    } else {
        String::new()
    };
    let generated = !said.is_empty();
    // The facts the source's chosen sentences hold are said, whatever the
    // model did (with nothing said, every sentence is).
    for sentence in plan.parts.iter().flat_map(|p| &p.sentences) {
        if !covers(&said, sentence) {
            out.push(sentence, &mut emit);
        }
    }
    if let Some(tail) = &plan.tail {
        out.push(tail, &mut emit);
    }
    let kind = match plan.kind {
        ReplyKind::Extractive if generated => ReplyKind::Generated,
        kind => kind,
    };
    Ok(Composed {
        text: out.text,
        kind,
        grounded: plan.answers_from_kb(),
        first_visible: out.first_visible,
        tokens: model.tokens,
        first_token: model.first_token,
        generation: model.ran,
        prompt_tokens: model.prompt_tokens,
    })
}

/// What the model did for one reply.
#[derive(Default)]
struct ModelRun {
    tokens: usize,
    first_token: Option<Duration>,
    ran: Duration,
    prompt_tokens: Option<usize>,
}

struct Stream {
    text: String,
    first_visible: Option<Duration>,
    started: Instant,
    streams: bool,
}

impl Stream {
    fn push(&mut self, piece: &str, emit: &mut impl FnMut(&str)) {
        let piece = piece.trim();
        if piece.is_empty() {
            return;
        }
        let piece = if self.text.is_empty() {
            piece.to_string()
        } else {
            format!(" {piece}")
        };
        self.first_visible
            .get_or_insert_with(|| self.started.elapsed());
        self.text.push_str(&piece);
        if self.streams {
            emit(&piece);
        }
    }
}

/// Runs the model over the first part's passage and releases each of its
/// sentences that the source supports. Returns what it released.
async fn generate(
    plan: &Plan,
    question: &str,
    generation: &Generation<'_>,
    cancel: &CancellationToken,
    out: &mut Stream,
    emit: &mut impl FnMut(&str),
    run: &mut ModelRun,
) -> Result<String, ComposeError> {
    let started = Instant::now();
    let passage = &plan.parts[0].passage;
    let redacted_history;
    let (history, model_question) = if generation.redact {
        redacted_history = generation
            .history
            .iter()
            .map(|t| ChatTurn {
                speaker: t.speaker,
                text: crate::privacy::redact(&t.text).into_owned(),
            })
            .collect::<Vec<_>>();
        (
            redacted_history.as_slice(),
            crate::privacy::redact(question),
        )
    } else {
        (generation.history, std::borrow::Cow::Borrowed(question))
    };
    let chosen = &plan.parts[0].sentences;
    let request = prompt::build(
        history,
        &model_question,
        passage,
        generation.history_budget,
        fitted_length(chosen, generation.max_tokens),
    );
    let mut events = generation.generator.start(request)?;
    let source = format!(
        "{}\n{}\n{}",
        passage.article_title, passage.heading, passage.text
    );
    let source_sentences = grounding::sentences(&passage.text);
    let mut pending = String::new();
    let mut said = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut finished = false;
    loop {
        let event = tokio::select! {
            // Dropping `events` on the way out stops the model.
            _ = cancel.cancelled() => return Err(ComposeError::Cancelled),
            event = events.recv() => event,
        };
        let done = match event {
            Some(GenEvent::Token(token)) => {
                run.tokens += 1;
                run.first_token.get_or_insert_with(|| out.started.elapsed());
                pending.push_str(&token);
                false
            }
            Some(GenEvent::Failed(message)) => {
                tracing::error!(error = %message, "generation failed; answering from the source");
                true
            }
            Some(GenEvent::Done { prompt_tokens, .. }) => {
                run.prompt_tokens = prompt_tokens;
                true
            }
            None => true,
        };
        while let Some(end) = sentence_end(&pending, done) {
            let sentence: String = pending.drain(..end).collect();
            let sentence = clean(&sentence);
            if sentence.is_empty() {
                continue;
            }
            if !seen.insert(sentence.to_lowercase()) {
                // A small model that repeats itself has nothing left to say.
                finished = true;
                break;
            }
            if supported(&sentence, &source, &source_sentences, question) {
                said.push_str(&sentence);
                said.push(' ');
                out.push(&sentence, emit);
                // Everything the chosen sentences hold is said: what the
                // model writes after it would only be more to check.
                finished |= !chosen.is_empty() && chosen.iter().all(|c| covers(&said, c));
            } else {
                tracing::info!(%sentence, "model sentence not supported by the source; not shown");
            }
        }
        if done || finished {
            break;
        }
    }
    run.ran = started.elapsed();
    Ok(said)
}

/// The most tokens a rewording of `chosen` needs: half as long again as
/// they are (about 4 characters a token), with room for a friendly frame,
/// never more than `cap`.
fn fitted_length(chosen: &[String], cap: usize) -> usize {
    let chars: usize = chosen.iter().map(|s| s.chars().count()).sum();
    if chars == 0 {
        return cap;
    }
    (chars * 3 / 8 + FRAME_TOKENS).min(cap)
}

/// Tokens for the words around a rewording ("Sure! ...").
const FRAME_TOKENS: usize = 24;

/// Where the first complete sentence of `text` ends, if it does; at the end
/// of generation the rest counts as one.
fn sentence_end(text: &str, done: bool) -> Option<usize> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?' | b'\n')
            && bytes.get(i + 1).is_some_and(|c| c.is_ascii_whitespace())
        {
            let before = &text[..i];
            // "e.g." and decimals ("9.95") do not end a sentence.
            if b == b'.' && (before.ends_with("e.g") || before.ends_with("i.e")) {
                continue;
            }
            return Some(i + 1);
        }
    }
    (done && !text.trim().is_empty()).then_some(text.len())
}

fn clean(sentence: &str) -> String {
    static MARKER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\s?\[\d+\]").expect("valid regex"));
    MARKER.replace_all(sentence.trim(), "").trim().to_string()
}

/// Least share of a model sentence's content words that one source sentence
/// must hold: a rewording keeps most of the words of what it rewords.
const MIN_CLOSENESS: f32 = 0.6;

/// A model sentence is shown when every fact in it is the source's, it
/// denies nothing the source does not, and it stays close to one source
/// sentence (its words mostly from that sentence, or the question).
pub fn supported(
    sentence: &str,
    source: &str,
    source_sentences: &[String],
    question: &str,
) -> bool {
    let verdict = grounding::check(sentence, &[source], question);
    if !verdict.is_grounded() || verdict.flips_polarity {
        return false;
    }
    let mut analyzer = Analyzer::default();
    let terms = analyzer.distinct_terms(sentence);
    if terms.is_empty() {
        return false;
    }
    let asked: std::collections::HashSet<String> = analyzer.terms(question).into_iter().collect();
    source_sentences.iter().any(|s| {
        let own: std::collections::HashSet<String> = analyzer.terms(s).into_iter().collect();
        let held = terms
            .iter()
            .filter(|t| own.contains(*t) || asked.contains(*t))
            .count();
        held as f32 / terms.len() as f32 >= MIN_CLOSENESS
    })
}

/// Whether `said` already states the facts of `sentence` (all its numbers,
/// amounts, names and links), so repeating the source's sentence adds nothing.
fn covers(said: &str, sentence: &str) -> bool {
    let facts = grounding::facts(sentence);
    if facts.is_empty() {
        return !said.trim().is_empty() && grounding::check(sentence, &[said], "").on_topic >= 0.8;
    }
    let known = grounding::facts(said);
    facts.iter().all(|f| known.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::questions::Part;
    use crate::generation::ScriptedGenerator;
    use crate::knowledge::Passage;

    fn plan() -> Plan {
        let passage = Passage {
            id: "return-policy#0".into(),
            article_id: "return-policy".into(),
            article_title: "Our returns policy".into(),
            heading: String::new(),
            text: "You can return most items within 30 days of delivery for a full refund, no reason needed. Items must be unused.".into(),
            tags: vec![],
            url: "/kb/return-policy".into(),
            questions: vec![],
        };
        Plan {
            kind: ReplyKind::Extractive,
            lead: Some("Sorry to hear that.".into()),
            parts: vec![Part {
                sentences: vec!["You can return most items within 30 days of delivery for a full refund, no reason needed.".into()],
                passage,
            }],
            tail: Some("Anything else?".into()),
            offer: None,
            quick_replies: vec![],
            topic: None,
            why: String::new(),
            order: None,
            solved: false,
        }
    }

    async fn run(style: AnswerStyle, script: Vec<&'static str>) -> (Composed, Vec<String>) {
        let generator = ScriptedGenerator::new(script);
        let mut streamed = Vec::new();
        let composed = compose(
            &plan(),
            "How long do I have to return something?",
            style,
            Generation {
                generator: &generator,
                history: &[],
                history_budget: 100,
                max_tokens: 64,
                redact: true,
            },
            &CancellationToken::new(),
            |piece| streamed.push(piece.to_string()),
        )
        .await
        .unwrap();
        (composed, streamed)
    }

    #[tokio::test]
    async fn the_model_is_stopped_once_it_has_said_the_chosen_sentences_or_repeats_itself() {
        let (done, _) = run(
            AnswerStyle::Generated,
            vec![
                "You have 30 days ",
                "to return items for a full refund. ",
                "Items must be unused. ",
                "Thanks for asking. ",
            ],
        )
        .await;
        assert_eq!(done.tokens, 2, "{}", done.text);
        let (repeats, _) = run(
            AnswerStyle::Generated,
            vec![
                "Items must be unused. ",
                "Items must be unused. ",
                "Items must be unused. ",
            ],
        )
        .await;
        assert_eq!(repeats.tokens, 2, "{}", repeats.text);
        // The source's sentence is still said.
        assert!(repeats.text.contains("30 days"), "{}", repeats.text);
    }

    #[test]
    fn the_reply_length_is_fitted_to_the_chosen_sentences() {
        let short = vec!["Returns are free.".to_string()];
        assert_eq!(fitted_length(&short, 120), 17 * 3 / 8 + FRAME_TOKENS);
        let long = vec!["x".repeat(1000)];
        assert_eq!(fitted_length(&long, 120), 120);
        assert_eq!(fitted_length(&[], 120), 120);
    }

    #[tokio::test]
    async fn extractive_streams_lead_source_and_tail_and_the_stream_is_the_reply() {
        let (composed, streamed) = run(AnswerStyle::Extractive, vec![]).await;
        assert_eq!(streamed.concat(), composed.text);
        assert!(
            composed
                .text
                .starts_with("Sorry to hear that. You can return most items within 30 days")
        );
        assert!(composed.text.ends_with("Anything else?"));
        assert_eq!(composed.kind, ReplyKind::Extractive);
        assert!(composed.grounded);
    }

    #[tokio::test]
    async fn a_model_sentence_that_fails_the_check_never_reaches_the_stream() {
        let (composed, streamed) = run(
            AnswerStyle::Generated,
            vec![
                "You have ",
                "30 days ",
                "to return most items. ",
                "Returns cost ",
                "€10.95 ",
                "and take 2 weeks.",
            ],
        )
        .await;
        let all = streamed.concat();
        assert_eq!(all, composed.text);
        assert!(
            all.contains("You have 30 days to return most items."),
            "{all}"
        );
        assert!(!all.contains("10.95") && !all.contains("2 weeks"), "{all}");
        assert_eq!(composed.kind, ReplyKind::Generated);
        // The source sentence was covered by the model's; it is not repeated.
        assert!(!all.contains("for a full refund"), "{all}");
    }

    #[tokio::test]
    async fn when_the_model_misses_the_fact_the_source_sentence_says_it() {
        let (composed, _) = run(
            AnswerStyle::Generated,
            vec!["Sure! ", "Python code: ", "print('hello')"],
        )
        .await;
        assert!(
            composed.text.contains("within 30 days of delivery"),
            "{}",
            composed.text
        );
        assert!(!composed.text.contains("print"), "{}", composed.text);
        assert_eq!(composed.kind, ReplyKind::Extractive);
    }

    #[test]
    fn sentences_end_at_stops_but_not_inside_amounts() {
        let first = "It costs €9.95 per order.";
        assert_eq!(
            sentence_end(&format!("{first} Next"), false),
            Some(first.len())
        );
        assert_eq!(sentence_end("It costs €9.95", false), None);
        assert_eq!(
            sentence_end("It costs €9.95", true),
            Some("It costs €9.95".len())
        );
    }

    #[tokio::test]
    async fn personal_data_is_redacted_before_the_model_reads_it() {
        let history = [ChatTurn {
            speaker: crate::generation::Speaker::Customer,
            text: "I'm jan@example.com, card 4111 1111 1111 1111".into(),
        }];
        for redact in [true, false] {
            let generator = ScriptedGenerator::new(["You can return most items within 30 days."]);
            compose(
                &plan(),
                "Call me on +31 6 12345678 about my return",
                AnswerStyle::Generated,
                Generation {
                    generator: &generator,
                    history: &history,
                    history_budget: 100,
                    max_tokens: 64,
                    redact,
                },
                &CancellationToken::new(),
                |_| {},
            )
            .await
            .unwrap();
            let prompt: String = generator.requests()[0]
                .turns
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            for secret in ["jan@example.com", "4111 1111 1111 1111", "+31 6 12345678"] {
                assert_eq!(prompt.contains(secret), !redact, "{secret} in {prompt}");
            }
            if redact {
                for marker in ["[email]", "[card]", "[phone]"] {
                    assert!(prompt.contains(marker), "{prompt}");
                }
            }
        }
    }
}
