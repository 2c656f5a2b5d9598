//! What customers want and feel and how conversations end, over a period:
//! the figures of the insights API, computed in SQL over the stored
//! conversations (indexed by their start).

use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::outcomes::{self, Judging};
use super::{Store, StoreError};

/// The figures of one period, `[from_ms, to_ms)` by conversation start.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Conversations with at least one customer message.
    pub conversations: i64,
    /// Of those, answered by the bot alone (no person joined).
    pub bot_alone: i64,
    /// Of those, a person joined.
    pub with_person: i64,
    /// `bot_alone / conversations`, when there are any.
    pub containment: Option<f64>,
    /// Conversations flagged for a person, by reason.
    pub flags: Vec<Count>,
    /// How the conversations ended, every outcome listed (see
    /// `outcomes::ConversationOutcome`).
    pub outcomes: Vec<Count>,
    /// Of the conversations that are over (not `open`), the share resolved
    /// (by the bot alone or with a person), and the share reopened.
    pub resolution_rate: Option<f64>,
    pub reopen_rate: Option<f64>,
    /// Mean rating (1-5) and how many rated, of conversations the bot
    /// handled alone and of those a person joined.
    pub csat_bot: Rating,
    pub csat_person: Rating,
    /// Customer messages by intent, most first (at most 10).
    pub top_intents: Vec<Count>,
    /// Mean sentiment score of customer messages (-1..1).
    pub sentiment: Option<f64>,
    /// Customer messages by kind (question, request, feedback, complaint,
    /// praise), most first.
    pub message_kinds: Vec<Count>,
    /// The products customers raised most (at most 10), with their
    /// sentiment.
    pub top_products: Vec<Mentioned>,
    /// The aspects (price, quality, …) customers raised, most first.
    pub top_aspects: Vec<Mentioned>,
}

/// A product or aspect: how often customer messages raised it, and how they
/// felt about it there.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mentioned {
    pub key: String,
    pub count: i64,
    /// Mean sentiment score of the mentions (-1..1).
    pub sentiment: Option<f64>,
    /// Mentions whose sentiment was negative.
    pub negative: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rating {
    pub mean: Option<f64>,
    pub count: i64,
}

/// Conversations of the period that have a customer message.
const IN_PERIOD: &str = "s.created_at_ms >= ?1 AND s.created_at_ms < ?2
    AND EXISTS (SELECT 1 FROM messages c WHERE c.session_id = s.id AND c.role = 'customer')";
/// A person joined the conversation.
const PERSON_JOINED: &str = "EXISTS (SELECT 1 FROM messages e WHERE e.session_id = s.id
    AND e.role = 'event' AND e.kind = 'agent_joined')";

impl Store {
    pub async fn insight_figures(
        &self,
        from_ms: i64,
        to_ms: i64,
        judging: Judging,
    ) -> Result<Figures, StoreError> {
        self.run(move |conn| figures(conn, from_ms, to_ms, judging))
            .await
    }
}

/// The figures of `[from_ms, to_ms)` in two passes (the conversations,
/// then their customer messages), added up here: each JSON column is read
/// once, where one SQL query per figure read them ten times.
fn figures(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    judging: Judging,
) -> Result<Figures, StoreError> {
    let period = params![from_ms, to_ms];
    let mut tally = Tally::default();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.flag_reason, {} FROM sessions s WHERE {IN_PERIOD}",
        outcomes::FACT_COLUMNS
    ))?;
    let mut rows = stmt.query(period)?;
    while let Some(r) = rows.next()? {
        let flag: Option<String> = r.get(0)?;
        let facts = outcomes::read_facts(r, 1)?;
        tally.conversation(flag, &facts, outcomes::outcome_of(&facts, judging));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT json_extract(m.intent, '$.name'), json_extract(m.sentiment, '$.score'), m.demand
         FROM messages m JOIN sessions s ON s.id = m.session_id
         WHERE {IN_PERIOD} AND m.role = 'customer'"
    ))?;
    let mut rows = stmt.query(period)?;
    while let Some(r) = rows.next()? {
        let demand: Option<String> = r.get(2)?;
        let demand: Option<StoredDemand> = demand
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("a message's demand: {e}")))?;
        tally.message(r.get(0)?, r.get(1)?, demand);
    }
    Ok(tally.figures(from_ms, to_ms))
}

/// What a customer message raises, as stored (see `understanding::demand`).
#[derive(Debug, serde::Deserialize)]
struct StoredDemand {
    kind: Option<String>,
    #[serde(default)]
    mentions: Vec<StoredMention>,
}

#[derive(Debug, serde::Deserialize)]
struct StoredMention {
    kind: String,
    key: String,
    sentiment: String,
    score: Option<f64>,
}

/// Running sums of a period, turned into `Figures` at the end.
#[derive(Debug, Default)]
struct Tally {
    conversations: i64,
    with_person: i64,
    flags: HashMap<String, i64>,
    outcomes: HashMap<outcomes::ConversationOutcome, i64>,
    /// (sum, count) of ratings without and with a person.
    ratings: [(i64, i64); 2],
    intents: HashMap<String, i64>,
    sentiment: (f64, i64),
    kinds: HashMap<String, i64>,
    products: HashMap<String, MentionSums>,
    aspects: HashMap<String, MentionSums>,
}

#[derive(Debug, Default)]
struct MentionSums {
    count: i64,
    score: (f64, i64),
    negative: i64,
}

impl Tally {
    fn conversation(
        &mut self,
        flag: Option<String>,
        facts: &outcomes::OutcomeFacts,
        outcome: outcomes::ConversationOutcome,
    ) {
        self.conversations += 1;
        self.with_person += i64::from(facts.person_joined);
        if let Some(flag) = flag {
            *self.flags.entry(flag).or_default() += 1;
        }
        *self.outcomes.entry(outcome).or_default() += 1;
        if let Some(rating) = facts.rating {
            let r = &mut self.ratings[usize::from(facts.person_joined)];
            r.0 += rating;
            r.1 += 1;
        }
    }

    fn message(
        &mut self,
        intent: Option<String>,
        score: Option<f64>,
        demand: Option<StoredDemand>,
    ) {
        if let Some(intent) = intent {
            *self.intents.entry(intent).or_default() += 1;
        }
        if let Some(score) = score {
            self.sentiment.0 += score;
            self.sentiment.1 += 1;
        }
        let Some(demand) = demand else { return };
        if let Some(kind) = demand.kind {
            *self.kinds.entry(kind).or_default() += 1;
        }
        for m in demand.mentions {
            let sums = match m.kind.as_str() {
                "product" => self.products.entry(m.key).or_default(),
                "aspect" => self.aspects.entry(m.key).or_default(),
                _ => continue,
            };
            sums.count += 1;
            if let Some(score) = m.score {
                sums.score.0 += score;
                sums.score.1 += 1;
            }
            sums.negative += i64::from(m.sentiment == "negative");
        }
    }

    fn figures(self, from_ms: i64, to_ms: i64) -> Figures {
        let mean = |(sum, n): (f64, i64)| (n > 0).then(|| sum / n as f64);
        let ended: i64 = self
            .outcomes
            .iter()
            .filter(|(o, _)| **o != outcomes::ConversationOutcome::Open)
            .map(|(_, n)| n)
            .sum();
        let share = |pick: &dyn Fn(outcomes::ConversationOutcome) -> bool| {
            let n: i64 = self
                .outcomes
                .iter()
                .filter(|(o, _)| pick(**o))
                .map(|(_, n)| n)
                .sum();
            (ended > 0).then(|| n as f64 / ended as f64)
        };
        let rating = |(sum, count): (i64, i64)| Rating {
            mean: (count > 0).then(|| sum as f64 / count as f64),
            count,
        };
        let mentioned = |sums: HashMap<String, MentionSums>, limit: usize| {
            let mut list: Vec<Mentioned> = sums
                .into_iter()
                .map(|(key, s)| Mentioned {
                    key,
                    count: s.count,
                    sentiment: mean(s.score),
                    negative: s.negative,
                })
                .collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            list.truncate(limit);
            list
        };
        let bot_alone = self.conversations - self.with_person;
        Figures {
            from_ms,
            to_ms,
            conversations: self.conversations,
            bot_alone,
            with_person: self.with_person,
            containment: (self.conversations > 0)
                .then(|| bot_alone as f64 / self.conversations as f64),
            flags: most_first(self.flags, usize::MAX),
            outcomes: outcomes::ConversationOutcome::ALL
                .iter()
                .map(|o| Count {
                    name: o.as_str().to_string(),
                    count: self.outcomes.get(o).copied().unwrap_or(0),
                })
                .collect(),
            resolution_rate: share(&|o| o.is_resolved()),
            reopen_rate: share(&|o| o == outcomes::ConversationOutcome::Reopened),
            csat_bot: rating(self.ratings[0]),
            csat_person: rating(self.ratings[1]),
            top_intents: most_first(self.intents, 10),
            sentiment: mean(self.sentiment),
            message_kinds: most_first(self.kinds, usize::MAX),
            top_products: mentioned(self.products, 10),
            top_aspects: mentioned(self.aspects, 20),
        }
    }
}

/// Counts, most first, ties by name; at most `limit`.
fn most_first(counts: HashMap<String, i64>, limit: usize) -> Vec<Count> {
    let mut list: Vec<Count> = counts
        .into_iter()
        .map(|(name, count)| Count { name, count })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    list.truncate(limit);
    list
}

/// One conversation of a period, as the insights export lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationRow {
    pub session: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started: String,
    pub customer_messages: i64,
    pub person_joined: bool,
    pub flag_reason: Option<String>,
    /// How it ended (`resolved_by_bot`, `abandoned`, … or `open`).
    pub outcome: &'static str,
    pub rating: Option<i64>,
    pub rating_comment: Option<String>,
    /// Mean sentiment score of the customer's messages (-1..1).
    pub sentiment: Option<f64>,
    /// The intents, kinds, products and aspects of its customer messages,
    /// each once, comma-separated.
    pub intents: String,
    pub kinds: String,
    pub products: String,
    pub aspects: String,
}

impl Store {
    /// The period's conversations, oldest first.
    pub async fn insight_conversations(
        &self,
        from_ms: i64,
        to_ms: i64,
        judging: Judging,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        self.run(move |conn| conversation_rows(conn, IN_PERIOD, params![from_ms, to_ms], judging))
            .await
    }
}

/// The conversations `which` selects (SQL over sessions aliased `s`, with
/// `params`), oldest first.
pub(super) fn conversation_rows(
    conn: &Connection,
    which: &str,
    params: impl rusqlite::Params,
    judging: Judging,
) -> Result<Vec<ConversationRow>, StoreError> {
    // Over the session's customer messages.
    let of_customer = "FROM messages c WHERE c.session_id = s.id AND c.role = 'customer'";
    let mentioned = |kind: &str| {
        format!(
            "(SELECT COALESCE(group_concat(DISTINCT json_extract(d.value, '$.key')), '')
              FROM messages c, json_each(c.demand, '$.mentions') d
              WHERE c.session_id = s.id AND c.role = 'customer'
                AND json_extract(d.value, '$.kind') = '{kind}')"
        )
    };
    let sql = format!(
        "SELECT s.id, strftime('%Y-%m-%dT%H:%M:%SZ', s.created_at_ms / 1000, 'unixepoch'),
                (SELECT COUNT(*) {of_customer}), {PERSON_JOINED},
                s.flag_reason, s.rating, s.rating_comment,
                (SELECT AVG(json_extract(c.sentiment, '$.score')) {of_customer}),
                (SELECT COALESCE(group_concat(DISTINCT json_extract(c.intent, '$.name')), '') {of_customer}),
                (SELECT COALESCE(group_concat(DISTINCT json_extract(c.demand, '$.kind')), '') {of_customer}),
                {}, {}, {}
         FROM sessions s WHERE {which} ORDER BY s.created_at_ms, s.id",
        mentioned("product"),
        mentioned("aspect"),
        outcomes::FACT_COLUMNS,
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok(ConversationRow {
            session: r.get(0)?,
            started: r.get(1)?,
            customer_messages: r.get(2)?,
            person_joined: r.get(3)?,
            flag_reason: r.get(4)?,
            outcome: outcomes::outcome_of(&outcomes::read_facts(r, 12)?, judging).as_str(),
            rating: r.get(5)?,
            rating_comment: r.get(6)?,
            sentiment: r.get(7)?,
            intents: r.get(8)?,
            kinds: r.get(9)?,
            products: r.get(10)?,
            aspects: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
