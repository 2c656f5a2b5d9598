//! One customer as the agent console shows them: their conversations, how
//! they felt over time, the products and aspects they raised, their ratings,
//! and whether they look at risk of leaving (a heuristic, with its reasons).
//!
//! A customer is the signed identity a shop's site passes (`customer_id`);
//! without one, the widget's visitor id (a random id the browser keeps):
//! the conversations of one browser. Neither: the conversation alone.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::insights::{
    ConversationRow, Mentioned, Mentions, Rating, conversation_rows, parse_demand,
};
use super::outcomes::Judging;
use super::shop_records::Customer;
use super::{Store, StoreError};
use crate::understanding::kind::MessageKind;
use crate::understanding::signals::Signal;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Who the shop's site says the customer is; `None`: an anonymous
    /// visitor, known by the conversations of their browser.
    pub customer: Option<Customer>,
    /// The widget's visitor id: set for an anonymous visitor whose widget
    /// sent one (their conversations are that browser's).
    pub visitor: Option<String>,
    /// Their conversations, oldest first.
    pub conversations: Vec<ConversationRow>,
    /// Each customer message's sentiment, oldest first.
    pub sentiment: Vec<SentimentPoint>,
    /// The products and aspects they raised, most first, with how they felt.
    pub products: Vec<Mentioned>,
    pub aspects: Vec<Mentioned>,
    pub ratings: Rating,
    pub risk: Risk,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentimentPoint {
    pub session: String,
    pub at_ms: i64,
    /// -1 (very negative) to 1 (very positive).
    pub score: f64,
}

/// "At risk of leaving", as rules a person can check, never a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Risk {
    /// Always true: says to every reader that this is a rule of thumb.
    pub heuristic: bool,
    pub at_risk: bool,
    pub reasons: Vec<RiskReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskReason {
    pub code: RiskCode,
    /// What was seen, for the agent ("3 complaints in 2 conversations").
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskCode {
    RepeatedComplaints,
    FallingSentiment,
    CancelThreat,
    LowRating,
}

/// What the risk rules read from each customer message, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFacts {
    pub session: String,
    pub score: Option<f64>,
    pub complaint: bool,
    pub cancel_threat: bool,
}

/// Complaints in this many conversations (or this many plus one in total)
/// are a pattern, not a bad day.
const REPEATED_COMPLAINT_CONVERSATIONS: usize = 2;
/// The latest messages compared with the ones before them.
const RECENT_MESSAGES: usize = 3;
/// How far the recent mean must fall below the earlier one (scores -1..1).
const SENTIMENT_FALL: f64 = 0.3;
/// A rating at or below this is an unhappy customer.
const LOW_RATING: i64 = 2;

/// The risk rules over one customer's messages and ratings.
pub fn assess(messages: &[MessageFacts], ratings: &[i64]) -> Risk {
    let mut reasons = Vec::new();
    let complaints = messages.iter().filter(|m| m.complaint).count();
    let mut complained_in: Vec<&str> = messages
        .iter()
        .filter(|m| m.complaint)
        .map(|m| m.session.as_str())
        .collect();
    complained_in.sort_unstable();
    complained_in.dedup();
    if complained_in.len() >= REPEATED_COMPLAINT_CONVERSATIONS
        || complaints > REPEATED_COMPLAINT_CONVERSATIONS
    {
        reasons.push(RiskReason {
            code: RiskCode::RepeatedComplaints,
            detail: format!(
                "{complaints} complaints in {} conversation{}",
                complained_in.len(),
                if complained_in.len() == 1 { "" } else { "s" }
            ),
        });
    }
    let scores: Vec<f64> = messages.iter().filter_map(|m| m.score).collect();
    if scores.len() > RECENT_MESSAGES {
        let (earlier, recent) = scores.split_at(scores.len() - RECENT_MESSAGES);
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (before, now) = (mean(earlier), mean(recent));
        if now < 0.0 && before - now >= SENTIMENT_FALL {
            reasons.push(RiskReason {
                code: RiskCode::FallingSentiment,
                detail: format!(
                    "sentiment fell from {before:+.2} to {now:+.2} over the last {RECENT_MESSAGES} messages"
                ),
            });
        }
    }
    let threats = messages.iter().filter(|m| m.cancel_threat).count();
    if threats > 0 {
        reasons.push(RiskReason {
            code: RiskCode::CancelThreat,
            detail: format!(
                "spoke of cancelling, leaving or a chargeback in {threats} message{}",
                if threats == 1 { "" } else { "s" }
            ),
        });
    }
    if let Some(lowest) = ratings.iter().copied().filter(|&r| r <= LOW_RATING).min() {
        reasons.push(RiskReason {
            code: RiskCode::LowRating,
            detail: format!("rated a conversation {lowest} out of 5"),
        });
    }
    Risk {
        heuristic: true,
        at_risk: !reasons.is_empty(),
        reasons,
    }
}

/// The conversations of the customer of `?1`: that one, and every other
/// with the same signed identity (`?2`), or for an anonymous visitor
/// (`?2` NULL) every other anonymous one of the same browser (`?3`).
const OF_CUSTOMER: &str = "(s.id = ?1
        OR (?2 IS NOT NULL AND s.customer_id = ?2)
        OR (?2 IS NULL AND ?3 IS NOT NULL AND s.visitor_id = ?3 AND s.customer_id IS NULL))
    AND EXISTS (SELECT 1 FROM messages c WHERE c.session_id = s.id AND c.role = 'customer')";

impl Store {
    /// The profile of the customer of conversation `session`, or `None`
    /// when there is no such conversation.
    pub async fn customer_profile(
        &self,
        session: Uuid,
        judging: Judging,
    ) -> Result<Option<Profile>, StoreError> {
        self.run(move |conn| profile(conn, &session.to_string(), judging))
            .await
    }
}

fn profile(
    conn: &Connection,
    session: &str,
    judging: Judging,
) -> Result<Option<Profile>, StoreError> {
    let Some((customer_id, email, visitor)) = conn
        .query_row(
            "SELECT customer_id, customer_email, visitor_id FROM sessions WHERE id = ?1",
            [session],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?
    else {
        return Ok(None);
    };
    let customer = customer_id
        .clone()
        .zip(email)
        .map(|(id, email)| Customer { id, email });
    // A signed identity says who it is; the browser's id only stands in
    // for one.
    let visitor = visitor.filter(|_| customer_id.is_none());
    let who = params![session, customer_id, visitor];
    let conversations = conversation_rows(conn, OF_CUSTOMER, who, judging)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT m.session_id, m.created_at_ms, json_extract(m.sentiment, '$.score'), m.demand,
                EXISTS (SELECT 1 FROM json_each(m.sentiment, '$.signals') g
                        WHERE g.value = '{}')
         FROM messages m JOIN sessions s ON s.id = m.session_id
         WHERE {OF_CUSTOMER} AND m.role = 'customer'
         ORDER BY m.created_at_ms, m.session_id, m.seq",
        signal_name(Signal::CancelThreat),
    ))?;
    let mut sentiment = Vec::new();
    let mut facts = Vec::new();
    let mut mentions = Mentions::default();
    let mut rows = stmt.query(who)?;
    while let Some(r) = rows.next()? {
        let session: String = r.get(0)?;
        let at_ms: i64 = r.get(1)?;
        let score: Option<f64> = r.get(2)?;
        if let Some(score) = score {
            sentiment.push(SentimentPoint {
                session: session.clone(),
                at_ms,
                score,
            });
        }
        let demand = parse_demand(r.get(3)?)?;
        let complaint = demand
            .as_ref()
            .and_then(|d| d.kind.as_deref())
            .is_some_and(|k| k == MessageKind::Complaint.as_str());
        facts.push(MessageFacts {
            session,
            score,
            complaint,
            cancel_threat: r.get(4)?,
        });
        if let Some(demand) = demand {
            mentions.add(demand.mentions);
        }
    }
    let (products, aspects) = mentions.lists(usize::MAX, usize::MAX);
    let rated: Vec<i64> = conversations.iter().filter_map(|c| c.rating).collect();
    let ratings = Rating {
        mean: (!rated.is_empty()).then(|| rated.iter().sum::<i64>() as f64 / rated.len() as f64),
        count: rated.len() as i64,
    };
    Ok(Some(Profile {
        customer,
        visitor,
        risk: assess(&facts, &rated),
        conversations,
        sentiment,
        products,
        aspects,
        ratings,
    }))
}

/// A signal as it is stored in a message's sentiment JSON.
fn signal_name(signal: Signal) -> String {
    serde_json::to_value(signal)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(session: &str, score: f64) -> MessageFacts {
        MessageFacts {
            session: session.into(),
            score: Some(score),
            ..MessageFacts::default()
        }
    }

    fn codes(risk: &Risk) -> Vec<RiskCode> {
        risk.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn a_calm_customer_is_not_at_risk() {
        let risk = assess(&[message("a", 0.2), message("a", 0.1)], &[5]);
        assert!(risk.heuristic);
        assert!(!risk.at_risk);
        assert!(risk.reasons.is_empty());
    }

    #[test]
    fn complaints_in_two_conversations_are_repeated() {
        let complaint = |s: &str| MessageFacts {
            complaint: true,
            ..message(s, -0.5)
        };
        let once = assess(&[complaint("a"), complaint("a")], &[]);
        assert!(!codes(&once).contains(&RiskCode::RepeatedComplaints));
        let twice = assess(&[complaint("a"), message("b", 0.0), complaint("b")], &[]);
        assert_eq!(codes(&twice), vec![RiskCode::RepeatedComplaints]);
        assert_eq!(twice.reasons[0].detail, "2 complaints in 2 conversations");
        let three = assess(&[complaint("a"), complaint("a"), complaint("a")], &[]);
        assert_eq!(codes(&three), vec![RiskCode::RepeatedComplaints]);
    }

    #[test]
    fn sentiment_that_falls_into_the_negative_is_a_risk() {
        let calm = [0.4, 0.3, 0.5].map(|s| message("a", s));
        let upset = [-0.3, -0.5, -0.4].map(|s| message("b", s));
        let falling: Vec<MessageFacts> = calm.iter().chain(&upset).cloned().collect();
        let risk = assess(&falling, &[]);
        assert_eq!(codes(&risk), vec![RiskCode::FallingSentiment]);
        assert_eq!(
            risk.reasons[0].detail,
            "sentiment fell from +0.40 to -0.40 over the last 3 messages"
        );
        // Unhappy all along is not a fall; a dip that stays positive is none either.
        let steady: Vec<MessageFacts> = upset.iter().chain(&upset).cloned().collect();
        assert!(assess(&steady, &[]).reasons.is_empty());
        let dip = [0.9, 0.9, 0.1, 0.1, 0.1].map(|s| message("a", s));
        assert!(assess(&dip, &[]).reasons.is_empty());
    }

    #[test]
    fn a_threat_to_leave_and_a_low_rating_are_each_a_reason() {
        let threat = MessageFacts {
            cancel_threat: true,
            ..message("a", -0.6)
        };
        let risk = assess(&[threat], &[4, 2, 1]);
        assert_eq!(
            codes(&risk),
            vec![RiskCode::CancelThreat, RiskCode::LowRating]
        );
        assert_eq!(risk.reasons[1].detail, "rated a conversation 1 out of 5");
    }
}
