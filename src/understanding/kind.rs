//! What kind of message a customer sent: a question, a request, feedback,
//! a complaint or praise. A heuristic over the sentiment and the wording,
//! with a confidence, for the console and the insights page.

use serde::{Deserialize, Serialize};

use super::sentiment::{Sentiment, SentimentLabel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Question,
    Request,
    Feedback,
    Complaint,
    Praise,
}

impl MessageKind {
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Question,
        MessageKind::Request,
        MessageKind::Feedback,
        MessageKind::Complaint,
        MessageKind::Praise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Question => "question",
            MessageKind::Request => "request",
            MessageKind::Feedback => "feedback",
            MessageKind::Complaint => "complaint",
            MessageKind::Praise => "praise",
        }
    }
}

/// The kind of `text`, with a confidence (0–1). A strongly felt message is
/// a complaint or praise even when it asks something ("why is nobody
/// answering?!"); otherwise the wording decides.
pub fn kind_of(text: &str, sentiment: &Sentiment) -> (MessageKind, f32) {
    let lower = text.trim().to_lowercase();
    let first = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .find(|w| !w.is_empty())
        .unwrap_or("");
    let asks = lower.ends_with('?') || lower.contains("?");
    let question_word = crate::language::words()
        .understanding
        .question_words
        .contains(first);
    let strength = sentiment.score.abs().min(1.0);
    match sentiment.label {
        SentimentLabel::Negative if !asks || strength >= 0.6 => {
            return (MessageKind::Complaint, strength.max(0.5));
        }
        SentimentLabel::Positive if !asks => return (MessageKind::Praise, strength.max(0.5)),
        _ => {}
    }
    if asks || question_word {
        return (MessageKind::Question, if asks { 0.9 } else { 0.7 });
    }
    if crate::language::words()
        .understanding
        .request_cues
        .iter()
        .any(|cue| lower.contains(cue))
    {
        return (MessageKind::Request, 0.7);
    }
    (MessageKind::Feedback, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feeling(label: SentimentLabel, score: f32) -> Sentiment {
        Sentiment {
            label,
            score,
            signals: Vec::new(),
        }
    }

    #[test]
    fn kinds() {
        let neutral = feeling(SentimentLabel::Neutral, 0.0);
        let upset = feeling(SentimentLabel::Negative, -0.8);
        let happy = feeling(SentimentLabel::Positive, 0.7);
        for (text, sentiment, kind) in [
            (
                "how long does delivery take?",
                &neutral,
                MessageKind::Question,
            ),
            ("do you ship to Norway", &neutral, MessageKind::Question),
            ("please cancel my order", &neutral, MessageKind::Request),
            ("the box was green", &neutral, MessageKind::Feedback),
            (
                "my skillet arrived cracked, furious",
                &upset,
                MessageKind::Complaint,
            ),
            ("why does nobody answer?!", &upset, MessageKind::Complaint),
            ("love the mugs", &happy, MessageKind::Praise),
        ] {
            assert_eq!(kind_of(text, sentiment).0, kind, "{text}");
        }
    }
}
