//! The note the bot leaves for the person who takes a conversation over:
//! what the customer wants, what the bot tried, and how they feel. Built
//! from the stored messages by code, so it says nothing the transcript
//! does not.

use crate::storage::FlagReason;
use crate::storage::{ReplyKind, Role, StoredMessage};
use crate::understanding::catalogue::{Catalogue, IntentAction};
use crate::understanding::signals::Signal;

const QUOTE_CHARS: usize = 160;

/// `catalogue`: the intents, whose action says which say nothing about what
/// the customer needs (a fixed reply, as to a greeting, or a decline).
pub fn summarize(messages: &[StoredMessage], reason: FlagReason, catalogue: &Catalogue) -> String {
    let says_nothing = |name: &str| {
        catalogue
            .get(name)
            .is_some_and(|i| matches!(i.action, IntentAction::Reply | IntentAction::Decline))
    };
    let customer: Vec<&StoredMessage> = messages
        .iter()
        .filter(|m| m.role == Role::Customer)
        .collect();
    let is_smalltalk = |m: &&&StoredMessage| {
        m.understood
            .as_ref()
            .is_some_and(|u| says_nothing(&u.intent.name))
    };
    let mut lines = vec![format!("Flagged: {}.", describe(reason))];
    if let Some(first) = customer.iter().find(|m| !is_smalltalk(m)) {
        lines.push(format!("Wants: “{}”", quote(&first.text)));
    }
    let mut intents: Vec<&str> = Vec::new();
    for u in customer.iter().filter_map(|m| m.understood.as_ref()) {
        let name = u.intent.name.as_str();
        if !says_nothing(name) && !intents.contains(&name) {
            intents.push(name);
        }
    }
    if !intents.is_empty() {
        lines.push(format!("Topics: {}.", intents.join(", ")));
    }
    // What the customer told us about themselves, for the agent's lookup.
    let mut slots = crate::answer::DialogueState::default();
    for m in &customer {
        slots.observe_customer(&m.text);
    }
    let mut given = Vec::new();
    if let Some(n) = &slots.slots.order_number {
        given.push(format!("order {n}"));
    }
    if let Some(e) = &slots.slots.email {
        given.push(format!("e-mail {e}"));
    }
    if !given.is_empty() {
        lines.push(format!("Gave: {}.", given.join(", ")));
    }
    let tried = tried(messages);
    if !tried.is_empty() {
        lines.push(format!("Bot tried: {}.", tried.join("; ")));
    }
    if let Some(u) = customer.last().and_then(|m| m.understood.as_ref()) {
        let mut signals: Vec<Signal> = Vec::new();
        for s in customer
            .iter()
            .filter_map(|m| m.understood.as_ref())
            .flat_map(|u| &u.sentiment.signals)
        {
            if !signals.contains(s) {
                signals.push(*s);
            }
        }
        let signals: Vec<String> = signals
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok()?.as_str().map(str::to_string))
            .collect();
        let mut mood = format!(
            "Mood: {} ({:+.2})",
            u.sentiment.label.as_str(),
            u.sentiment.score
        );
        if !signals.is_empty() {
            mood.push_str(&format!(", signals: {}", signals.join(", ")));
        }
        lines.push(mood + ".");
    }
    if customer.len() > 1
        && let Some(last) = customer.last()
    {
        lines.push(format!("Last said: “{}”", quote(&last.text)));
    }
    lines.join("\n")
}

fn describe(reason: FlagReason) -> &'static str {
    match reason {
        FlagReason::AskedForHuman => "asked for a person",
        FlagReason::StronglyNegative => "very unhappy",
        FlagReason::NegativeTwice => "unhappy twice running",
        FlagReason::CouldNotAnswerTwice => "the bot could not answer twice running",
        FlagReason::OutOfScopeRepeatedly => "kept asking about things the bot does not cover",
    }
}

/// The bot's replies, grouped: articles it answered from, and how often it
/// could not help.
fn tried(messages: &[StoredMessage]) -> Vec<String> {
    let mut cited: Vec<&str> = Vec::new();
    let (mut unanswered, mut declined, mut busy) = (0, 0, 0);
    for reply in messages.iter().filter_map(|m| m.reply.as_ref()) {
        match reply.kind {
            ReplyKind::Generated | ReplyKind::Extractive | ReplyKind::OrderStatus => {
                for c in &reply.citations {
                    if !cited.contains(&c.title.as_str()) {
                        cited.push(&c.title);
                    }
                }
            }
            ReplyKind::NoAnswer => unanswered += 1,
            ReplyKind::Declined => declined += 1,
            ReplyKind::Busy => busy += 1,
            ReplyKind::Smalltalk | ReplyKind::Handoff | ReplyKind::Clarify => {}
        }
    }
    let mut tried = Vec::new();
    if !cited.is_empty() {
        let titles: Vec<String> = cited.iter().map(|t| format!("“{t}”")).collect();
        tried.push(format!("answered from {}", titles.join(", ")));
    }
    let times = |n: i32| {
        if n == 1 {
            "once".to_string()
        } else {
            format!("{n} times")
        }
    };
    if unanswered > 0 {
        tried.push(format!(
            "found nothing in the help centre {}",
            times(unanswered)
        ));
    }
    if declined > 0 {
        tried.push(format!("declined off-topic questions {}", times(declined)));
    }
    if busy > 0 {
        tried.push(format!("was too busy to answer {}", times(busy)));
    }
    tried
}

fn quote(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= QUOTE_CHARS {
        return text;
    }
    let cut: String = text.chars().take(QUOTE_CHARS).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::Citation;
    use crate::storage::BotReply;
    use crate::understanding::Understood;
    use crate::understanding::sentiment::SentimentLabel;

    fn customer(text: &str, intent: &str, score: f32, signals: Vec<Signal>) -> StoredMessage {
        let label = if score < -0.2 {
            SentimentLabel::Negative
        } else {
            SentimentLabel::Neutral
        };
        StoredMessage {
            seq: 0,
            role: Role::Customer,
            text: text.into(),
            client_id: None,
            reply: None,
            understood: Some(Understood::example(intent, label, score, signals)),
            author: None,
            event: None,
            created_at_ms: 0,
        }
    }

    fn bot(kind: ReplyKind, cites: &[&str]) -> StoredMessage {
        let citations = cites
            .iter()
            .map(|t| Citation {
                article_id: t.to_lowercase(),
                title: t.to_string(),
                url: String::new(),
            })
            .collect();
        StoredMessage {
            seq: 0,
            role: Role::Bot,
            text: "…".into(),
            client_id: None,
            reply: Some(BotReply {
                reply_id: uuid::Uuid::nil(),
                text: "…".into(),
                citations,
                grounded: true,
                kind,
                offer: None,
                quick_replies: Vec::new(),
            }),
            understood: None,
            author: None,
            event: None,
            created_at_ms: 0,
        }
    }

    fn shipped() -> Catalogue {
        Catalogue::load_dir(std::path::Path::new("knowledge/intents")).unwrap()
    }

    #[test]
    fn says_what_the_customer_wants_and_what_was_tried() {
        let messages = vec![
            customer("hi there", "greeting", 0.3, vec![]),
            bot(ReplyKind::Smalltalk, &[]),
            customer("where is my order 1234?", "track_order", 0.0, vec![]),
            bot(ReplyKind::Generated, &["Track your order"]),
            customer("it still hasn't come", "track_order", -0.4, vec![]),
            bot(ReplyKind::NoAnswer, &[]),
            customer(
                "this is the third time, get me a person",
                "contact_human_agent",
                -0.7,
                vec![Signal::RepeatedFailure, Signal::HumanRequest],
            ),
            bot(ReplyKind::Handoff, &[]),
        ];
        insta::assert_snapshot!(summarize(&messages, FlagReason::AskedForHuman, &shipped()), @r"
        Flagged: asked for a person.
        Wants: “where is my order 1234?”
        Topics: track_order, contact_human_agent.
        Gave: order 1234.
        Bot tried: answered from “Track your order”; found nothing in the help centre once.
        Mood: negative (-0.70), signals: repeated_failure, human_request.
        Last said: “this is the third time, get me a person”
        ");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "word ".repeat(100);
        let summary = summarize(
            &[customer(&long, "complaint", -0.9, vec![])],
            FlagReason::StronglyNegative,
            &shipped(),
        );
        assert!(summary.contains("…”"), "{summary}");
        assert!(!summary.contains("Last said"), "{summary}");
    }
}
