//! What customers want and feel and how conversations end, over a period:
//! the figures of the insights API, computed in SQL over the stored
//! conversations (indexed by their start).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::outcomes::{self, ConversationOutcome, Judging};
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
    /// Each UTC day the period touches, oldest first (the first and the
    /// last only for the part inside the period): the lines over time.
    pub daily: Vec<DayPoint>,
}

/// One UTC day's conversations, how many the bot handled alone, and the
/// mean sentiment of their customer messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayPoint {
    /// The day's start, in milliseconds since the epoch (UTC).
    pub day_ms: i64,
    pub conversations: i64,
    pub bot_alone: i64,
    pub sentiment: Option<f64>,
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

    /// Keeps the sums of each of the `days` whole UTC days before today
    /// that had conversations, is not kept yet and can be (all its
    /// conversations are over), newest first, one day per hold of the
    /// connection so chat never waits long behind it: the first look at a
    /// long period then reads kept days instead of counting a year (a day
    /// without conversations costs nothing to count). With the sums, the
    /// day's conversation list and the words its customers used (`words`:
    /// a text's terms, see `topic_days`). Returns how many days' sums were
    /// counted.
    pub async fn keep_insight_days<W>(
        &self,
        days: i64,
        judging: Judging,
        words: W,
    ) -> Result<usize, StoreError>
    where
        W: FnMut(&str) -> Vec<(String, String)> + Send + Clone + 'static,
    {
        let today = judging.now_ms.div_euclid(DAY_MS);
        let busy: Vec<i64> = self
            .run(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT DISTINCT created_at_ms / 86400000 AS day FROM sessions
                     WHERE created_at_ms >= ?1 AND created_at_ms < ?2
                       AND day NOT IN (SELECT day FROM insight_days WHERE abandoned_after_ms = ?3
                                       AND conversations IS NOT NULL AND sessions IS NOT NULL)
                     ORDER BY day DESC",
                )?;
                let days = stmt
                    .query_map(
                        params![
                            (today - days) * DAY_MS,
                            today * DAY_MS,
                            judging.abandoned_after_ms
                        ],
                        |r| r.get(0),
                    )?
                    .collect::<Result<_, _>>()?;
                Ok::<_, StoreError>(days)
            })
            .await?;
        let mut counted = 0;
        for day in busy {
            let mut words = words.clone();
            let fresh = self
                .run(move |conn| {
                    // Counted and kept in one write transaction: a change
                    // from another connection cannot fall between the two.
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let fresh = kept_day(&tx, day, judging)?.is_none();
                    if fresh {
                        day_tally(&tx, day, judging)?;
                    }
                    // With its sums, the day's list and words (kept only
                    // if the sums were: all its conversations are over).
                    day_rows(&tx, day, judging)?;
                    super::topic_days::keep_day_terms(&tx, day, &mut words)?;
                    tx.commit()?;
                    Ok::<_, StoreError>(fresh)
                })
                .await?;
            counted += usize::from(fresh);
        }
        Ok(counted)
    }
}

/// The kept sums of UTC day `day` (JSON), if any.
fn kept_day(conn: &Connection, day: i64, judging: Judging) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT tally FROM insight_days WHERE day = ?1 AND abandoned_after_ms = ?2",
            params![day, judging.abandoned_after_ms],
            |r| r.get(0),
        )
        .optional()?)
}

/// The figures of `[from_ms, to_ms)`: the whole UTC days inside it from
/// `insight_days` (each day's sums, kept once every conversation started
/// that day is over, and dropped by triggers as soon as one of them
/// changes), the partial days at either end counted afresh.
fn figures(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    judging: Judging,
) -> Result<Figures, StoreError> {
    let first_day = (from_ms + DAY_MS - 1).div_euclid(DAY_MS);
    let end_day = to_ms.div_euclid(DAY_MS);
    let mut tally = Tally::default();
    let mut daily = Vec::new();
    let mut add = |day: i64, part: Tally| {
        // The first day only when some of it is inside and has any.
        if part.conversations > 0 || day >= first_day {
            daily.push(part.day_point(day));
        }
        tally.merge(part);
    };
    let counted = |from: i64, to: i64| -> Result<Tally, StoreError> {
        let mut part = Tally::default();
        part.count(conn, from, to, judging)?;
        Ok(part)
    };
    if first_day <= end_day {
        add(first_day - 1, counted(from_ms, first_day * DAY_MS)?);
        for day in first_day..end_day {
            add(day, day_tally(conn, day, judging)?);
        }
        add(end_day, counted(end_day * DAY_MS, to_ms)?);
    } else {
        add(end_day, counted(from_ms, to_ms)?);
    }
    let mut figures = tally.figures(from_ms, to_ms);
    figures.daily = daily;
    Ok(figures)
}

const DAY_MS: i64 = 86_400_000;

/// The sums of conversations started on UTC day `day`, kept or counted.
fn day_tally(conn: &Connection, day: i64, judging: Judging) -> Result<Tally, StoreError> {
    if let Some(kept) = kept_day(conn, day, judging)? {
        return serde_json::from_str(&kept)
            .map_err(|e| StoreError::Corrupt(format!("insight day {day}: {e}")));
    }
    let mut tally = Tally::default();
    tally.count(conn, day * DAY_MS, (day + 1) * DAY_MS, judging)?;
    // A conversation still open would end later without any write that
    // drops the day, so the day is kept only once all are over.
    let open = tally.outcomes.get(&outcomes::ConversationOutcome::Open);
    if (day + 1) * DAY_MS <= judging.now_ms && open.is_none_or(|n| *n == 0) {
        let json = serde_json::to_string(&tally)
            .map_err(|e| StoreError::Corrupt(format!("insight day {day}: {e}")))?;
        conn.execute(
            "INSERT OR REPLACE INTO insight_days (day, abandoned_after_ms, tally) VALUES (?1, ?2, ?3)",
            params![day, judging.abandoned_after_ms, json],
        )?;
    }
    Ok(tally)
}

impl Tally {
    /// Adds the conversations started in `[from_ms, to_ms)`, in two passes
    /// (the conversations, then their customer messages): each JSON column
    /// is read once.
    fn count(
        &mut self,
        conn: &Connection,
        from_ms: i64,
        to_ms: i64,
        judging: Judging,
    ) -> Result<(), StoreError> {
        if from_ms >= to_ms {
            return Ok(());
        }
        let period = params![from_ms, to_ms];
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT s.flag_reason, {} FROM sessions s WHERE {IN_PERIOD}",
            outcomes::FACT_COLUMNS
        ))?;
        let mut rows = stmt.query(period)?;
        while let Some(r) = rows.next()? {
            let flag: Option<String> = r.get(0)?;
            let facts = outcomes::read_facts(r, 1)?;
            self.conversation(flag, &facts, outcomes::outcome_of(&facts, judging));
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT json_extract(m.intent, '$.name'), json_extract(m.sentiment, '$.score'), m.demand
             FROM messages m JOIN sessions s ON s.id = m.session_id
             WHERE {IN_PERIOD} AND m.role = 'customer'"
        ))?;
        let mut rows = stmt.query(period)?;
        while let Some(r) = rows.next()? {
            self.message(r.get(0)?, r.get(1)?, parse_demand(r.get(2)?)?);
        }
        Ok(())
    }

    fn merge(&mut self, other: Tally) {
        fn add<K: std::hash::Hash + Eq>(into: &mut HashMap<K, i64>, from: HashMap<K, i64>) {
            for (k, n) in from {
                *into.entry(k).or_default() += n;
            }
        }
        self.conversations += other.conversations;
        self.with_person += other.with_person;
        add(&mut self.flags, other.flags);
        add(&mut self.outcomes, other.outcomes);
        for (mine, theirs) in self.ratings.iter_mut().zip(other.ratings) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        add(&mut self.intents, other.intents);
        self.sentiment.0 += other.sentiment.0;
        self.sentiment.1 += other.sentiment.1;
        add(&mut self.kinds, other.kinds);
        self.mentions.merge(other.mentions);
    }
}

/// What a customer message raises, as stored (`understanding::demand::
/// Demand`), read with its scores as SQLite reads them (f64), so the means
/// are what `AVG` over the JSON gave.
#[derive(Debug, serde::Deserialize)]
pub(super) struct StoredDemand {
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) mentions: Vec<StoredMention>,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct StoredMention {
    kind: String,
    key: String,
    sentiment: String,
    score: Option<f64>,
}

/// A message's `demand` column.
pub(super) fn parse_demand(json: Option<String>) -> Result<Option<StoredDemand>, StoreError> {
    json.map(|d| serde_json::from_str(&d))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("a message's demand: {e}")))
}

/// The products and aspects messages raised, summed per key.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Mentions {
    products: HashMap<String, MentionSums>,
    aspects: HashMap<String, MentionSums>,
}

impl Mentions {
    pub(super) fn add(&mut self, mentions: Vec<StoredMention>) {
        for m in mentions {
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

    fn merge(&mut self, other: Mentions) {
        for (into, from) in [
            (&mut self.products, other.products),
            (&mut self.aspects, other.aspects),
        ] {
            for (key, m) in from {
                let sums = into.entry(key).or_default();
                sums.count += m.count;
                sums.score.0 += m.score.0;
                sums.score.1 += m.score.1;
                sums.negative += m.negative;
            }
        }
    }

    /// The products and the aspects, each most first (ties by key), at
    /// most `products` and `aspects` of them.
    pub(super) fn lists(self, products: usize, aspects: usize) -> (Vec<Mentioned>, Vec<Mentioned>) {
        let list = |sums: HashMap<String, MentionSums>, limit: usize| {
            let mut list: Vec<Mentioned> = sums
                .into_iter()
                .map(|(key, s)| Mentioned {
                    key,
                    count: s.count,
                    sentiment: (s.score.1 > 0).then(|| s.score.0 / s.score.1 as f64),
                    negative: s.negative,
                })
                .collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            list.truncate(limit);
            list
        };
        (list(self.products, products), list(self.aspects, aspects))
    }
}

/// Running sums of a period, turned into `Figures` at the end; a day's
/// are kept as JSON in `insight_days`.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Flattened: a kept day's JSON has `products` and `aspects` at the top.
    #[serde(flatten)]
    mentions: Mentions,
}

#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct MentionSums {
    count: i64,
    score: (f64, i64),
    negative: i64,
}

impl Tally {
    fn day_point(&self, day: i64) -> DayPoint {
        DayPoint {
            day_ms: day * DAY_MS,
            conversations: self.conversations,
            bot_alone: self.conversations - self.with_person,
            sentiment: mean(self.sentiment),
        }
    }

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
        self.mentions.add(demand.mentions);
    }

    fn figures(self, from_ms: i64, to_ms: i64) -> Figures {
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
        let (top_products, top_aspects) = self.mentions.lists(10, 20);
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
            top_products,
            top_aspects,
            daily: Vec::new(),
        }
    }
}

fn mean((sum, n): (f64, i64)) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ConversationRow {
    pub session: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started: String,
    pub customer_messages: i64,
    pub person_joined: bool,
    pub flag_reason: Option<String>,
    /// How it ended (`resolved_by_bot`, `abandoned`, … or `open`).
    pub outcome: ConversationOutcome,
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

/// Which of a period's conversations a drill-down lists (a number or a bar
/// of the insights page clicked): every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    pub outcome: Option<ConversationOutcome>,
    pub flag_reason: Option<String>,
    pub person_joined: Option<bool>,
    pub rating: Option<i64>,
    /// Started on this UTC day, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Raised by at least one of its customer messages.
    pub intent: Option<String>,
    pub kind: Option<String>,
    pub product: Option<String>,
    pub aspect: Option<String>,
}

impl ConversationFilter {
    pub fn matches(&self, row: &ConversationRow) -> bool {
        let listed = |wanted: &Option<String>, list: &str| {
            wanted
                .as_deref()
                .is_none_or(|w| list.split(',').any(|item| item == w))
        };
        self.outcome.is_none_or(|o| o == row.outcome)
            && self
                .flag_reason
                .as_deref()
                .is_none_or(|f| row.flag_reason.as_deref() == Some(f))
            && self.person_joined.is_none_or(|p| p == row.person_joined)
            && self.rating.is_none_or(|r| row.rating == Some(r))
            && self
                .date
                .as_deref()
                .is_none_or(|d| row.started.get(..10) == Some(d))
            && listed(&self.intent, &row.intents)
            && listed(&self.kind, &row.kinds)
            && listed(&self.product, &row.products)
            && listed(&self.aspect, &row.aspects)
    }
}

impl Store {
    /// The period's conversations, oldest first.
    pub async fn insight_conversations(
        &self,
        from_ms: i64,
        to_ms: i64,
        judging: Judging,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        self.run(move |conn| period_rows(conn, from_ms, to_ms, judging))
            .await
    }
}

/// The conversations of `[from_ms, to_ms)`: whole days' from `day_rows`,
/// the parts of a day at either end listed afresh.
fn period_rows(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    judging: Judging,
) -> Result<Vec<ConversationRow>, StoreError> {
    let counted =
        |from: i64, to: i64| conversation_rows(conn, IN_PERIOD, params![from, to], judging);
    let first_day = (from_ms + DAY_MS - 1).div_euclid(DAY_MS);
    let end_day = to_ms.div_euclid(DAY_MS);
    if first_day > end_day {
        return counted(from_ms, to_ms);
    }
    let mut rows = counted(from_ms, first_day * DAY_MS)?;
    for day in first_day..end_day {
        rows.extend(day_rows(conn, day, judging)?);
    }
    rows.extend(counted(end_day * DAY_MS, to_ms)?);
    Ok(rows)
}

/// The conversations started on UTC day `day`: kept with the day's sums
/// once asked for, or listed (and kept, when the day's sums are).
fn day_rows(
    conn: &Connection,
    day: i64,
    judging: Judging,
) -> Result<Vec<ConversationRow>, StoreError> {
    let kept: Option<Option<String>> = conn
        .query_row(
            "SELECT conversations FROM insight_days WHERE day = ?1 AND abandoned_after_ms = ?2",
            params![day, judging.abandoned_after_ms],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(Some(json)) = &kept {
        return serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("insight day {day}: {e}")));
    }
    let rows = conversation_rows(
        conn,
        IN_PERIOD,
        params![day * DAY_MS, (day + 1) * DAY_MS],
        judging,
    )?;
    if kept.is_some() {
        let json = serde_json::to_string(&rows)
            .map_err(|e| StoreError::Corrupt(format!("insight day {day}: {e}")))?;
        conn.execute(
            "UPDATE insight_days SET conversations = ?2 WHERE day = ?1",
            params![day, json],
        )?;
    }
    Ok(rows)
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
            outcome: outcomes::outcome_of(&outcomes::read_facts(r, 12)?, judging),
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn conversation(
        conn: &Connection,
        id: &str,
        at: i64,
        intent: &str,
        score: f64,
        rating: Option<i64>,
    ) {
        conn.execute(
            "INSERT INTO sessions (id, created_at_ms, last_seq, status, outcome, rating)
             VALUES (?1, ?2, 2, ?3, ?4, ?5)",
            params![
                id,
                at,
                if rating.is_some() { "closed" } else { "bot" },
                rating.map(|_| "resolved"),
                rating
            ],
        )
        .unwrap();
        let demand = serde_json::json!({"kind": "complaint", "kind_confidence": 0.9,
            "mentions": [{"kind": "product", "key": "mug", "sentiment": "negative", "score": score}]});
        conn.execute(
            "INSERT INTO messages (session_id, seq, role, text, created_at_ms, intent, sentiment, demand)
             VALUES (?1, 1, 'customer', 'the mug broke', ?2, ?3, ?4, ?5)",
            params![
                id,
                at,
                serde_json::json!({"name": intent, "confidence": 0.9, "alternatives": []}).to_string(),
                serde_json::json!({"label": "negative", "score": score, "signals": []}).to_string(),
                demand.to_string()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (session_id, seq, role, text, kind, created_at_ms)
             VALUES (?1, 2, 'bot', 'sorry', 'extractive', ?2)",
            params![id, at + 1000],
        )
        .unwrap();
    }

    fn split_words(text: &str) -> Vec<(String, String)> {
        text.split_whitespace()
            .map(|w| (w.to_owned(), w.to_owned()))
            .collect()
    }

    fn kept_days(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM insight_days", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn kept_days_give_what_counting_afresh_gives_and_a_change_drops_its_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("insights.sqlite3")).unwrap();
        let conn = store.lock();
        let now = 100 * DAY_MS + 5 * HOUR_MS;
        let judging = Judging {
            now_ms: now,
            abandoned_after_ms: 30 * 60_000,
        };
        conversation(
            &conn,
            "a",
            97 * DAY_MS + HOUR_MS,
            "return_item",
            -0.5,
            Some(2),
        );
        conversation(
            &conn,
            "b",
            98 * DAY_MS + 2 * HOUR_MS,
            "track_order",
            -0.25,
            None,
        );
        conversation(
            &conn,
            "c",
            99 * DAY_MS + 23 * HOUR_MS,
            "track_order",
            0.5,
            Some(5),
        );
        conversation(&conn, "d", now - HOUR_MS, "track_order", 0.0, None);
        let fresh = |conn: &Connection| {
            let mut t = Tally::default();
            t.count(conn, now - 7 * DAY_MS, now, judging).unwrap();
            t.figures(now - 7 * DAY_MS, now)
        };
        // Counting afresh has no days; the figures' days add up to it.
        let undaily = |mut f: Figures| {
            let per_day: i64 = f.daily.iter().map(|d| d.conversations).sum();
            assert_eq!(per_day, f.conversations, "{:?}", f.daily);
            f.daily.clear();
            f
        };
        let want = fresh(&conn);
        assert_eq!(want.conversations, 4);
        let week = [now - 7 * DAY_MS, now];
        let want_rows = conversation_rows(&conn, IN_PERIOD, week, judging).unwrap();
        assert_eq!(want_rows.len(), 4);
        assert_eq!(
            want.top_intents[0],
            Count {
                name: "track_order".into(),
                count: 3
            }
        );

        // Cold: the whole past days are counted and kept; warm: read back.
        let cold = figures(&conn, now - 7 * DAY_MS, now, judging).unwrap();
        assert_eq!(kept_days(&conn), 6, "days 94..=99, not today's");
        let warm = figures(&conn, now - 7 * DAY_MS, now, judging).unwrap();
        assert_eq!(cold, warm);
        assert_eq!(undaily(cold), want);
        // The list of a period: listed and kept with the days, read back.
        let rows = || period_rows(&conn, now - 7 * DAY_MS, now, judging).unwrap();
        assert_eq!(rows(), want_rows);
        let kept_lists: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM insight_days WHERE conversations IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept_lists, 6);
        assert_eq!(rows(), want_rows);

        // The customer of day 98 writes again: that day is dropped, and
        // the figures say so.
        conn.execute(
            "INSERT INTO messages (session_id, seq, role, text, created_at_ms, intent)
             VALUES ('b', 3, 'customer', 'still nothing', ?1, ?2)",
            params![
                now - HOUR_MS,
                r#"{"name": "complaint", "confidence": 0.8, "alternatives": []}"#
            ],
        )
        .unwrap();
        assert_eq!(kept_days(&conn), 5);
        let listed = rows();
        assert_eq!(
            listed,
            conversation_rows(&conn, IN_PERIOD, week, judging).unwrap()
        );
        assert!(listed[1].intents.split(',').any(|i| i == "complaint"));
        let after = undaily(figures(&conn, now - 7 * DAY_MS, now, judging).unwrap());
        assert_eq!(after, fresh(&conn));
        assert!(after.top_intents.iter().any(|c| c.name == "complaint"));
        // A rating, and an erasure, drop their days too.
        conn.execute("UPDATE sessions SET rating = 1 WHERE id = 'c'", [])
            .unwrap();
        conn.execute("DELETE FROM messages WHERE session_id = 'a'", [])
            .unwrap();
        conn.execute("DELETE FROM sessions WHERE id = 'a'", [])
            .unwrap();
        assert_eq!(
            undaily(figures(&conn, now - 7 * DAY_MS, now, judging).unwrap()),
            fresh(&conn)
        );
        // A day whose conversation is still open is not kept.
        let open = Judging {
            now_ms: 98 * DAY_MS + 2 * HOUR_MS + 60_000 + DAY_MS,
            ..judging
        };
        conn.execute("DELETE FROM insight_days", []).unwrap();
        conn.execute(
            "UPDATE sessions SET last_at_ms = ?1 WHERE id = 'b'",
            [open.now_ms - 60_000],
        )
        .unwrap();
        conn.execute("DELETE FROM insight_days", []).unwrap();
        figures(&conn, 98 * DAY_MS, 99 * DAY_MS + 1, open).unwrap();
        assert_eq!(kept_days(&conn), 0);
    }

    #[tokio::test]
    async fn past_days_are_kept_ahead_of_time_and_a_conversation_moved_in_drops_its_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("insights.sqlite3")).unwrap();
        let now = 100 * DAY_MS + 5 * HOUR_MS;
        let judging = Judging {
            now_ms: now,
            abandoned_after_ms: 30 * 60_000,
        };
        {
            let conn = store.lock();
            conversation(
                &conn,
                "a",
                97 * DAY_MS + HOUR_MS,
                "return_item",
                -0.5,
                Some(2),
            );
            conversation(
                &conn,
                "c",
                99 * DAY_MS + HOUR_MS,
                "track_order",
                0.5,
                Some(5),
            );
            conversation(&conn, "d", now - HOUR_MS, "track_order", 0.0, None);
        }
        // The past days with conversations; today is never whole.
        assert_eq!(
            store
                .keep_insight_days(10, judging, split_words)
                .await
                .unwrap(),
            2
        );
        assert_eq!(kept_days(&store.lock()), 2);
        let with_lists_and_words: i64 = store
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM insight_days
                 WHERE conversations IS NOT NULL AND sessions IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(with_lists_and_words, 2);
        assert_eq!(
            store
                .keep_insight_days(10, judging, split_words)
                .await
                .unwrap(),
            0
        );

        // A look at the week keeps its empty days too; history moved into
        // one of them drops it, and the day it left.
        let conn = store.lock();
        figures(&conn, now - 7 * DAY_MS, now, judging).unwrap();
        assert_eq!(kept_days(&conn), 6, "days 94..=99");
        conn.execute(
            "UPDATE sessions SET created_at_ms = ?1 WHERE id = 'a'",
            [95 * DAY_MS + HOUR_MS],
        )
        .unwrap();
        assert_eq!(kept_days(&conn), 4, "days 97 and 95 dropped");
        let kept = figures(&conn, now - 7 * DAY_MS, now, judging).unwrap();
        let mut fresh = Tally::default();
        fresh.count(&conn, now - 7 * DAY_MS, now, judging).unwrap();
        let mut fresh = fresh.figures(now - 7 * DAY_MS, now);
        fresh.daily = kept.daily.clone();
        assert_eq!(kept, fresh);
        let day_95 = kept.daily.iter().find(|d| d.day_ms == 95 * DAY_MS).unwrap();
        assert_eq!(day_95.conversations, 1);
    }
}
