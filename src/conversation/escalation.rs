//! When a conversation needs a person: the per-session sentiment trend and
//! the rules that flag a session for the agent console.

use std::collections::VecDeque;

use crate::storage::{FlagReason, ReplyKind, Role, StoredMessage};
use crate::understanding::Understood;
use crate::understanding::sentiment::{STRONGLY_NEGATIVE, SentimentLabel};
use crate::understanding::signals::Signal;

/// Sentiment scores kept per session for the trend.
pub const TREND_LEN: usize = 5;

#[derive(Debug, Default)]
pub struct Escalation {
    trend: VecDeque<f32>,
    last_negative: bool,
    out_of_scope_streak: u32,
    unanswered_streak: u32,
}

impl Escalation {
    /// Rebuilds the state from stored messages, oldest first.
    pub fn from_history(history: &[StoredMessage]) -> Self {
        let mut state = Self::default();
        for m in history {
            match (m.role, &m.understood, &m.reply) {
                // Only the state is rebuilt; the flags were raised already.
                (Role::Customer, Some(u), _) => {
                    state.observe_message(u, false);
                }
                (Role::Bot, _, Some(reply)) => {
                    state.observe_reply(reply.kind);
                }
                _ => {}
            }
        }
        state
    }

    pub fn trend(&self) -> Vec<f32> {
        self.trend.iter().copied().collect()
    }

    /// Takes in a customer message (`wants_person`: it asks for a person
    /// now); returns why the session should be flagged, if it should.
    pub fn observe_message(
        &mut self,
        understood: &Understood,
        wants_person: bool,
    ) -> Option<FlagReason> {
        let sentiment = &understood.sentiment;
        self.trend.push_back(sentiment.score);
        if self.trend.len() > TREND_LEN {
            self.trend.pop_front();
        }
        let negative = sentiment.label == SentimentLabel::Negative;
        let twice = negative && self.last_negative;
        self.last_negative = negative;
        self.out_of_scope_streak = if understood.intent.is_out_of_scope() {
            self.out_of_scope_streak + 1
        } else {
            0
        };
        let heated = sentiment
            .signals
            .iter()
            .any(|s| matches!(s, Signal::Anger | Signal::Profanity | Signal::CancelThreat));
        if wants_person {
            Some(FlagReason::AskedForHuman)
        } else if sentiment.score <= STRONGLY_NEGATIVE || (negative && heated) {
            Some(FlagReason::StronglyNegative)
        } else if twice {
            Some(FlagReason::NegativeTwice)
        } else if self.out_of_scope_streak >= 3 {
            Some(FlagReason::OutOfScopeRepeatedly)
        } else {
            None
        }
    }

    /// Takes in a bot reply; flags when the bot could not help twice running.
    pub fn observe_reply(&mut self, kind: ReplyKind) -> Option<FlagReason> {
        match kind {
            ReplyKind::NoAnswer | ReplyKind::Declined => {
                self.unanswered_streak += 1;
                (self.unanswered_streak >= 2).then_some(FlagReason::CouldNotAnswerTwice)
            }
            // A question back is not an answer, nor a failure.
            ReplyKind::Busy | ReplyKind::Clarify => None,
            _ => {
                self.unanswered_streak = 0;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(
        intent: &str,
        label: SentimentLabel,
        score: f32,
        signals: Vec<Signal>,
    ) -> Understood {
        Understood::example(intent, label, score, signals)
    }

    #[test]
    fn flags_follow_the_rules() {
        use SentimentLabel::*;
        let mut e = Escalation::default();
        assert_eq!(
            e.observe_message(&message("track_order", Neutral, 0.0, vec![]), false),
            None
        );
        assert_eq!(
            e.observe_message(&message("track_order", Negative, -0.4, vec![]), false),
            None
        );
        assert_eq!(
            e.observe_message(&message("track_order", Negative, -0.3, vec![]), false),
            Some(FlagReason::NegativeTwice)
        );
        let mut e = Escalation::default();
        assert_eq!(
            e.observe_message(&message("complaint", Negative, -0.8, vec![]), false),
            Some(FlagReason::StronglyNegative)
        );
        assert_eq!(
            e.observe_message(
                &message("complaint", Negative, -0.2, vec![Signal::Profanity]),
                false
            )
            .map(FlagReason::as_str),
            Some("strongly_negative")
        );
        let mut e = Escalation::default();
        assert_eq!(
            e.observe_message(
                &message("track_order", Neutral, 0.0, vec![Signal::HumanRequest]),
                true
            ),
            Some(FlagReason::AskedForHuman)
        );
        assert_eq!(e.observe_reply(ReplyKind::NoAnswer), None);
        assert_eq!(
            e.observe_reply(ReplyKind::Declined),
            Some(FlagReason::CouldNotAnswerTwice)
        );
        assert_eq!(e.observe_reply(ReplyKind::Generated), None);
        assert_eq!(e.observe_reply(ReplyKind::NoAnswer), None);
    }

    #[test]
    fn the_trend_keeps_the_last_messages() {
        let mut e = Escalation::default();
        for i in 0..8 {
            e.observe_message(
                &message("greeting", SentimentLabel::Neutral, i as f32 / 10.0, vec![]),
                false,
            );
        }
        assert_eq!(e.trend(), vec![0.3, 0.4, 0.5, 0.6, 0.7]);
    }
}
