//! Escalation signals: what a person reads as "this customer is about to
//! leave". Rules, not a model: each one must be explainable to the agent who
//! sees it, and they are cheap.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Shouting, furious wording or a strongly negative tone.
    Anger,
    Profanity,
    /// "Third time I ask", "still nothing", "again".
    RepeatedFailure,
    /// Cancelling, leaving for a competitor, chargebacks, lawyers.
    CancelThreat,
    /// An explicit request for a person.
    HumanRequest,
}

fn words(pattern: &str) -> Regex {
    Regex::new(&format!(r"(?i)\b(?:{pattern})\b")).expect("signal pattern")
}

static PROFANITY: LazyLock<Regex> =
    LazyLock::new(|| words(&crate::language::words().understanding.signals.profanity));
static ANGER: LazyLock<Regex> =
    LazyLock::new(|| words(&crate::language::words().understanding.signals.anger));
static REPEATED: LazyLock<Regex> = LazyLock::new(|| {
    words(
        &crate::language::words()
            .understanding
            .signals
            .repeated_failure,
    )
});
static CANCEL: LazyLock<Regex> =
    LazyLock::new(|| words(&crate::language::words().understanding.signals.cancel_threat));
static HUMAN: LazyLock<Regex> =
    LazyLock::new(|| words(&crate::language::words().understanding.signals.human_request));

/// Finds the signals in one message. `compound` is the lexicon's tone in
/// [-1, 1]; a very negative tone counts as anger.
pub fn detect(text: &str, compound: f64) -> Vec<Signal> {
    let mut found = Vec::new();
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let shouting = letters.len() >= 12
        && letters.iter().filter(|c| c.is_uppercase()).count() * 10 >= letters.len() * 8;
    if shouting || ANGER.is_match(text) || text.contains("!!!") || compound <= -0.75 {
        found.push(Signal::Anger);
    }
    if PROFANITY.is_match(text) {
        found.push(Signal::Profanity);
    }
    if REPEATED.is_match(text) {
        found.push(Signal::RepeatedFailure);
    }
    if CANCEL.is_match(text) {
        found.push(Signal::CancelThreat);
    }
    if HUMAN.is_match(text) {
        found.push(Signal::HumanRequest);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use Signal::*;

    #[test]
    fn finds_each_signal() {
        let cases: &[(&str, &[Signal])] = &[
            (
                "This is the third time I ask about my refund",
                &[RepeatedFailure],
            ),
            ("THIS IS COMPLETELY UNACCEPTABLE", &[Anger]),
            ("what the hell, the damn lamp is broken", &[Profanity]),
            ("I'll cancel my account and shop elsewhere", &[CancelThreat]),
            ("let me talk to a real person", &[HumanRequest]),
            ("can I speak to someone from your team", &[HumanRequest]),
            ("still no reply from you", &[RepeatedFailure]),
            ("where is my order", &[]),
            ("I want to cancel my order", &[]),
            ("thanks, that helped", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(&detect(text, 0.0), expected, "{text}");
        }
    }

    #[test]
    fn a_very_negative_tone_counts_as_anger() {
        assert_eq!(detect("so bad", -0.9), vec![Anger]);
        assert!(detect("so bad", -0.3).is_empty());
    }
}
