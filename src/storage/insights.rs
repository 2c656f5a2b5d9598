//! What customers want and feel and how conversations end, over a period:
//! the figures of the insights API, computed in SQL over the stored
//! conversations (indexed by their start).

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

fn figures(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    judging: Judging,
) -> Result<Figures, StoreError> {
    let period = params![from_ms, to_ms];
    let (conversations, with_person): (i64, i64) = conn.query_row(
        &format!(
            "SELECT COUNT(*), COALESCE(SUM({PERSON_JOINED}), 0) FROM sessions s WHERE {IN_PERIOD}"
        ),
        period,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let counts = |sql: &str| -> Result<Vec<Count>, StoreError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(period, |r| {
            Ok(Count {
                name: r.get(0)?,
                count: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let flags = counts(&format!(
        "SELECT s.flag_reason, COUNT(*) FROM sessions s
         WHERE {IN_PERIOD} AND s.flag_reason IS NOT NULL
         GROUP BY s.flag_reason ORDER BY COUNT(*) DESC, s.flag_reason"
    ))?;
    let top_intents = counts(&format!(
        "SELECT json_extract(m.intent, '$.name') AS name, COUNT(*) FROM messages m
         JOIN sessions s ON s.id = m.session_id
         WHERE {IN_PERIOD} AND m.role = 'customer' AND m.intent IS NOT NULL
         GROUP BY name ORDER BY COUNT(*) DESC, name LIMIT 10"
    ))?;
    let rating = |person: bool| -> Result<Rating, StoreError> {
        let negate = if person { "" } else { "NOT" };
        Ok(conn.query_row(
            &format!(
                "SELECT AVG(s.rating), COUNT(s.rating) FROM sessions s
                 WHERE {IN_PERIOD} AND s.rating IS NOT NULL AND {negate} {PERSON_JOINED}"
            ),
            period,
            |r| {
                Ok(Rating {
                    mean: r.get(0)?,
                    count: r.get(1)?,
                })
            },
        )?)
    };
    let sentiment: Option<f64> = conn.query_row(
        &format!(
            "SELECT AVG(json_extract(m.sentiment, '$.score')) FROM messages m
             JOIN sessions s ON s.id = m.session_id
             WHERE {IN_PERIOD} AND m.role = 'customer' AND m.sentiment IS NOT NULL"
        ),
        period,
        |r| r.get(0),
    )?;
    let message_kinds = counts(&format!(
        "SELECT json_extract(m.demand, '$.kind') AS message_kind, COUNT(*) FROM messages m
         JOIN sessions s ON s.id = m.session_id
         WHERE {IN_PERIOD} AND m.role = 'customer' AND message_kind IS NOT NULL
         GROUP BY message_kind ORDER BY COUNT(*) DESC, message_kind"
    ))?;
    // Aliases differ from json_each's own columns (`key`, `value`), which
    // GROUP BY would otherwise take.
    let mentioned = |kind: &str, limit: u32| -> Result<Vec<Mentioned>, StoreError> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT json_extract(d.value, '$.key') AS mention_key, COUNT(*),
                    AVG(json_extract(d.value, '$.score')),
                    SUM(json_extract(d.value, '$.sentiment') = 'negative')
             FROM messages m JOIN sessions s ON s.id = m.session_id,
                  json_each(m.demand, '$.mentions') d
             WHERE {IN_PERIOD} AND m.role = 'customer' AND m.demand IS NOT NULL
               AND json_extract(d.value, '$.kind') = '{kind}'
             GROUP BY mention_key ORDER BY COUNT(*) DESC, mention_key LIMIT {limit}"
        ))?;
        let rows = stmt.query_map(period, |r| {
            Ok(Mentioned {
                key: r.get(0)?,
                count: r.get(1)?,
                sentiment: r.get(2)?,
                negative: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let top_products = mentioned("product", 10)?;
    let top_aspects = mentioned("aspect", 20)?;
    let bot_alone = conversations - with_person;
    let ended_as = outcomes::outcome_counts(conn, IN_PERIOD, period, judging)?;
    let ended: i64 = ended_as
        .iter()
        .filter(|(o, _)| *o != outcomes::ConversationOutcome::Open)
        .map(|(_, n)| n)
        .sum();
    let share = |pick: &dyn Fn(outcomes::ConversationOutcome) -> bool| {
        let n: i64 = ended_as
            .iter()
            .filter(|(o, _)| pick(*o))
            .map(|(_, n)| n)
            .sum();
        (ended > 0).then(|| n as f64 / ended as f64)
    };
    let resolution_rate = share(&|o| o.is_resolved());
    let reopen_rate = share(&|o| o == outcomes::ConversationOutcome::Reopened);
    Ok(Figures {
        from_ms,
        to_ms,
        conversations,
        bot_alone,
        with_person,
        containment: (conversations > 0).then(|| bot_alone as f64 / conversations as f64),
        flags,
        outcomes: ended_as
            .iter()
            .map(|(o, n)| Count {
                name: o.as_str().to_string(),
                count: *n,
            })
            .collect(),
        resolution_rate,
        reopen_rate,
        csat_bot: rating(false)?,
        csat_person: rating(true)?,
        top_intents,
        sentiment,
        message_kinds,
        top_products,
        top_aspects,
    })
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
