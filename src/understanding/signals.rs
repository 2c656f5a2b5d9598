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

static PROFANITY: LazyLock<Regex> = LazyLock::new(|| {
    words(
        r"f+u+c+k\w*|shit\w*|crap|damn\w*|bloody|wtf|bullshit|ass(?:hole)?s?|bastards?|piss(?:ed)?|sucks?|screw (?:you|this)|hell",
    )
});
static ANGER: LazyLock<Regex> = LazyLock::new(|| {
    words(
        r"furious|angry|livid|outraged|fuming|unacceptable|ridiculous|disgrace(?:ful)?|pathetic|useless|scam|rip[- ]?off|fed up|sick of|had it|joke|nightmare|incompetent|worst|hate",
    )
});
static REPEATED: LazyLock<Regex> = LazyLock::new(|| {
    words(
        r"(?:second|third|fourth|fifth|\d+(?:st|nd|rd|th)) time|again|still (?:no|not|nothing|waiting|haven'?t|hasn'?t|didn'?t)|keep (?:asking|telling|getting|calling|waiting)|already (?:asked|told|called|wrote|written|sent|explained)|how many times|(?:several|many|multiple|\d+) times|for (?:weeks|days|ages)|no one (?:answers|replies|responds|helps)|nobody (?:answers|replies|responds|helps|cares)",
    )
});
static CANCEL: LazyLock<Regex> = LazyLock::new(|| {
    words(
        r"cancel (?:my account|everything|all my orders|my membership)|(?:shop|buy|order|go) (?:elsewhere|somewhere else)|never (?:order|buy|shop)\w* (?:here |from you )?again|never again|take my business|charge ?back|dispute (?:the|this) (?:charge|payment)|lawyer|legal action|sue you|report you|consumer (?:protection|authority)|(?:one|1)[- ]star review|close my account",
    )
});
static HUMAN: LazyLock<Regex> = LazyLock::new(|| {
    words(
        r"(?:real|actual|live) (?:person|human|agent|people)|(?:speak|talk|chat) (?:to|with) (?:a |an |the |some)?(?:one|body|human|person|agent|manager|supervisor|representative|employee|operator|staff)|human (?:please|being|agent)|(?:get|give|put|transfer|connect) me (?:to |through to |with )?(?:a |an )?(?:human|person|agent|manager|representative)|not a (?:bot|robot)",
    )
});

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
