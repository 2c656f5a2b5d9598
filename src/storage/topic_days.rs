//! Which words customers used, for rising topics: counted from the stored
//! customer messages, and for a past day whose figures are kept
//! (`insight_days`) kept beside them, one row per day and word
//! (`insight_day_terms`), so a month against the month before reads counts
//! instead of tokenising every message again. A kept day's words go with
//! its figures (trigger), whenever one of its conversations changes.
//!
//! What a word is (the analyzer's term, which words name no topic) is the
//! caller's: storage gets it as a function and knows no analyzer.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// A text's terms, each with the word it came from as written.
pub type Words = dyn FnMut(&str) -> Vec<(String, String)> + Send;

/// How many of a word's newest uses (one per conversation) are kept per
/// day: a topic shows that many examples.
pub const EXAMPLES: usize = 3;

const DAY_MS: i64 = 86_400_000;

/// One customer message, as counted.
#[derive(Debug, Clone)]
pub struct CustomerMessage {
    pub session: String,
    pub at_ms: i64,
    pub seq: i64,
    pub text: String,
}

/// How the customers of one stretch of time (a day, or part of one) used
/// each word.
#[derive(Debug, Default)]
pub struct WordUses {
    /// Its conversations that have a customer message.
    pub sessions: Vec<String>,
    pub terms: HashMap<String, TermUse>,
}

/// One word in one stretch of time (kept as JSON, hence the short names).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermUse {
    /// The conversations that used it: indices into `WordUses::sessions`,
    /// ascending.
    #[serde(rename = "c")]
    pub conversations: Vec<u32>,
    /// The words it came from as customers wrote them, and how often.
    #[serde(rename = "w")]
    pub surfaces: BTreeMap<String, u32>,
    /// The newest message of each conversation that used it, newest
    /// first, at most `EXAMPLES`.
    #[serde(rename = "e")]
    pub examples: Vec<Use>,
}

/// A message that used a word: when, in which conversation (an index into
/// `WordUses::sessions`), which message of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Use {
    pub at_ms: i64,
    pub conversation: u32,
    pub seq: i64,
}

/// A term while counting: each conversation's newest use, and the
/// surfaces.
type Counting = (HashMap<u32, Use>, BTreeMap<String, u32>);

/// A term while merging: its details, and its kept uses in the order they
/// were written (time, conversation, position).
type Merging<'a> = (TermDetail, Vec<(i64, &'a str, i64)>);

impl WordUses {
    pub fn count(
        messages: impl IntoIterator<Item = CustomerMessage>,
        words: &mut Words,
    ) -> WordUses {
        let mut sessions: Vec<String> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        // Per term: each conversation's newest use, and the surfaces.
        let mut newest: HashMap<String, Counting> = HashMap::new();
        for message in messages {
            let conversation = match index.get(&message.session) {
                Some(&i) => i,
                None => {
                    let i = sessions.len() as u32;
                    index.insert(message.session.clone(), i);
                    sessions.push(message.session.clone());
                    i
                }
            };
            let used = Use {
                at_ms: message.at_ms,
                conversation,
                seq: message.seq,
            };
            for (term, surface) in words(&message.text) {
                let (uses, surfaces) = newest.entry(term).or_default();
                let kept = uses.entry(conversation).or_insert(used);
                if order(&sessions, used) > order(&sessions, *kept) {
                    *kept = used;
                }
                *surfaces.entry(surface).or_default() += 1;
            }
        }
        let terms = newest
            .into_iter()
            .map(|(term, (uses, surfaces))| {
                let mut conversations: Vec<u32> = uses.keys().copied().collect();
                conversations.sort_unstable();
                let examples = newest_first(&sessions, uses.into_values(), EXAMPLES);
                let term_use = TermUse {
                    conversations,
                    surfaces,
                    examples,
                };
                (term, term_use)
            })
            .collect();
        WordUses { sessions, terms }
    }
}

/// The order messages were written in: time, then conversation, then
/// position in it.
fn order(sessions: &[String], u: Use) -> (i64, &str, i64) {
    (u.at_ms, sessions[u.conversation as usize].as_str(), u.seq)
}

fn newest_first(sessions: &[String], uses: impl Iterator<Item = Use>, limit: usize) -> Vec<Use> {
    let mut uses: Vec<Use> = uses.collect();
    uses.sort_by(|a, b| order(sessions, *b).cmp(&order(sessions, *a)));
    uses.truncate(limit);
    uses
}

/// Two periods' word counts: the one asked for and the one before it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PeriodWords {
    /// Conversations with a customer message: `[before, asked for]`.
    pub conversations: [usize; 2],
    /// Per term, how many of them used it: `[before, asked for]`.
    pub counts: HashMap<String, [usize; 2]>,
}

/// One word over the period asked for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TermDetail {
    pub conversations: HashSet<String>,
    pub surfaces: HashMap<String, usize>,
    /// The newest message of each conversation that used it, newest first,
    /// at most `EXAMPLES`: (conversation, text).
    pub examples: Vec<(String, String)>,
}

impl PeriodWords {
    /// Adds one stretch of time's uses, of the period asked for or not.
    pub fn add(&mut self, uses: &WordUses, asked_for: bool) {
        self.add_counts(
            uses.sessions.len(),
            uses.terms
                .iter()
                .map(|(t, u)| (t.as_str(), u.conversations.len())),
            asked_for,
        );
    }

    fn add_counts<'a>(
        &mut self,
        conversations: usize,
        counts: impl Iterator<Item = (&'a str, usize)>,
        asked_for: bool,
    ) {
        let i = usize::from(asked_for);
        self.conversations[i] += conversations;
        for (term, n) in counts {
            match self.counts.get_mut(term) {
                Some(c) => c[i] += n,
                None => {
                    let mut c = [0, 0];
                    c[i] = n;
                    self.counts.insert(term.to_owned(), c);
                }
            }
        }
    }
}

/// `terms`' details from stretches of time (`(its sessions, its uses of
/// each term)`), with the examples' texts from `text_of`.
pub fn details<'a>(
    stretches: impl IntoIterator<Item = (&'a [String], HashMap<String, TermUse>)>,
    mut text_of: impl FnMut(&str, i64) -> Result<String, StoreError>,
) -> Result<HashMap<String, TermDetail>, StoreError> {
    let mut merged: HashMap<String, Merging<'a>> = HashMap::new();
    for (sessions, uses) in stretches {
        for (term, term_use) in uses {
            let (detail, examples) = merged.entry(term).or_default();
            detail.conversations.extend(
                term_use
                    .conversations
                    .iter()
                    .map(|&c| sessions[c as usize].clone()),
            );
            for (surface, n) in term_use.surfaces {
                *detail.surfaces.entry(surface).or_default() += n as usize;
            }
            examples.extend(term_use.examples.iter().map(|&u| order(sessions, u)));
        }
    }
    merged
        .into_iter()
        .map(|(term, (mut detail, mut examples))| {
            // A conversation belongs to one stretch, so its newest use is
            // among that stretch's kept ones.
            examples.sort_by(|a, b| b.cmp(a));
            examples.truncate(EXAMPLES);
            detail.examples = examples
                .into_iter()
                .map(|(_, session, seq)| Ok((session.to_owned(), text_of(session, seq)?)))
                .collect::<Result<_, StoreError>>()?;
            Ok((term, detail))
        })
        .collect()
}

/// A period cut where the kept days are: the part of a day at either end
/// counted afresh, the whole days in between.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stretch {
    Live(i64, i64),
    Day(i64),
}

fn stretches(from_ms: i64, to_ms: i64) -> Vec<Stretch> {
    let first_day = (from_ms + DAY_MS - 1).div_euclid(DAY_MS);
    let end_day = to_ms.div_euclid(DAY_MS);
    if first_day > end_day {
        return vec![Stretch::Live(from_ms, to_ms)];
    }
    let mut out = vec![Stretch::Live(from_ms, first_day * DAY_MS)];
    out.extend((first_day..end_day).map(Stretch::Day));
    out.push(Stretch::Live(end_day * DAY_MS, to_ms));
    out.retain(|s| !matches!(s, Stretch::Live(a, b) if a >= b));
    out
}

/// The customer messages of conversations started in `[from_ms, to_ms)`,
/// in the order they were written.
fn messages(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<CustomerMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, c.created_at_ms, c.seq, c.text
         FROM sessions s JOIN messages c ON c.session_id = s.id AND c.role = 'customer'
         WHERE s.created_at_ms >= ?1 AND s.created_at_ms < ?2
         ORDER BY c.created_at_ms, s.id, c.seq",
    )?;
    let rows = stmt.query_map(params![from_ms, to_ms], |r| {
        Ok(CustomerMessage {
            session: r.get(0)?,
            at_ms: r.get(1)?,
            seq: r.get(2)?,
            text: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stretch of time's words: read from the kept rows of a kept day, or
/// counted.
enum Counted {
    Kept(i64),
    Live(WordUses),
}

/// A kept day's words are read from `insight_day_terms`; any other stretch
/// is counted, and kept when it is a day whose figures are kept.
fn counted(conn: &Connection, stretch: Stretch, words: &mut Words) -> Result<Counted, StoreError> {
    let (from, to, keep_day) = match stretch {
        Stretch::Live(from, to) => (from, to, None),
        Stretch::Day(day) => match day_kept(conn, day)? {
            Some(true) => return Ok(Counted::Kept(day)),
            // The day's sums are kept: its words are kept with them.
            Some(false) => (day * DAY_MS, (day + 1) * DAY_MS, Some(day)),
            None => (day * DAY_MS, (day + 1) * DAY_MS, None),
        },
    };
    let uses = WordUses::count(messages(conn, from, to)?, words);
    if let Some(day) = keep_day {
        keep(conn, day, &uses)?;
    }
    Ok(Counted::Live(uses))
}

/// Whether `day`'s figures are kept (`None`: not), and its words with them.
fn day_kept(conn: &Connection, day: i64) -> Result<Option<bool>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT sessions IS NOT NULL FROM insight_days WHERE day = ?1",
            params![day],
            |r| r.get(0),
        )
        .optional()?)
}

/// Keeps a day's words: all of them in one statement, so a look at a
/// period outside any transaction writes (and syncs) three times per day
/// (old rows out, words in, `sessions`), not once per word; `sessions` is
/// set last, and a day without it is counted and kept again.
fn keep(conn: &Connection, day: i64, uses: &WordUses) -> Result<(), StoreError> {
    conn.execute("DELETE FROM insight_day_terms WHERE day = ?1", params![day])?;
    let rows: Vec<(&String, usize, &TermUse)> = uses
        .terms
        .iter()
        .map(|(term, term_use)| (term, term_use.conversations.len(), term_use))
        .collect();
    conn.execute(
        "INSERT INTO insight_day_terms (day, term, conversations, uses)
         SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]')
         FROM json_each(?2)",
        params![day, to_json(&rows)?],
    )?;
    conn.execute(
        "UPDATE insight_days SET sessions = ?2 WHERE day = ?1",
        params![day, to_json(&uses.sessions)?],
    )?;
    Ok(())
}

fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Keeps `day`'s words if its figures are kept and its words are not.
pub(super) fn keep_day_terms(
    conn: &Connection,
    day: i64,
    words: &mut Words,
) -> Result<(), StoreError> {
    counted(conn, Stretch::Day(day), words).map(|_| ())
}

/// A kept day's conversation count and each term's.
fn kept_counts(conn: &Connection, day: i64) -> Result<(usize, Vec<(String, usize)>), StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT term, conversations FROM insight_day_terms WHERE day = ?1")?;
    let rows = stmt
        .query_map(params![day], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let sessions: i64 = conn.query_row(
        "SELECT json_array_length(sessions) FROM insight_days WHERE day = ?1",
        params![day],
        |r| r.get(0),
    )?;
    Ok((sessions as usize, rows))
}

/// A kept day's conversations (the indices its words' uses refer to).
fn kept_sessions(conn: &Connection, day: i64) -> Result<Vec<String>, StoreError> {
    let json: String = conn.query_row(
        "SELECT sessions FROM insight_days WHERE day = ?1",
        params![day],
        |r| r.get(0),
    )?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("insight day {day}: {e}")))
}

/// The details of some terms in each of two periods: `[before, asked for]`.
pub type PeriodDetails = [HashMap<String, TermDetail>; 2];

/// Two periods' counts (`[from_ms, current_from_ms)` before,
/// `[current_from_ms, to_ms)` asked for), then the details of the terms
/// `pick` chooses from them in both (examples only in the one asked for).
fn period_words(
    conn: &Connection,
    (from_ms, current_from_ms, to_ms): (i64, i64, i64),
    words: &mut Words,
    pick: impl FnOnce(&PeriodWords) -> Vec<String>,
) -> Result<(PeriodWords, PeriodDetails), StoreError> {
    let mut period = PeriodWords::default();
    let mut both: [Vec<Counted>; 2] = [Vec::new(), Vec::new()];
    for (asked_for, from, to) in [
        (false, from_ms, current_from_ms),
        (true, current_from_ms, to_ms),
    ] {
        for stretch in stretches(from, to) {
            let counted = counted(conn, stretch, words)?;
            match &counted {
                Counted::Live(uses) => period.add(uses, asked_for),
                Counted::Kept(day) => {
                    let (sessions, counts) = kept_counts(conn, *day)?;
                    period.add_counts(
                        sessions,
                        counts.iter().map(|(t, n)| (t.as_str(), *n)),
                        asked_for,
                    );
                }
            }
            both[usize::from(asked_for)].push(counted);
        }
    }
    let terms = pick(&period);
    let [before, asked] = both;
    let details = [
        term_details(conn, &before, &terms, false)?,
        term_details(conn, &asked, &terms, true)?,
    ];
    Ok((period, details))
}

/// `terms`' details over the stretches of a period.
fn term_details(
    conn: &Connection,
    stretches: &[Counted],
    terms: &[String],
    with_examples: bool,
) -> Result<HashMap<String, TermDetail>, StoreError> {
    let mut kept: Vec<(Vec<String>, HashMap<String, TermUse>)> = Vec::new();
    let mut stmt =
        conn.prepare_cached("SELECT uses FROM insight_day_terms WHERE day = ?1 AND term = ?2")?;
    for stretch in stretches {
        let Counted::Kept(day) = *stretch else {
            continue;
        };
        let mut uses = HashMap::new();
        for term in terms {
            let json: Option<String> = stmt
                .query_row(params![day, term], |r| r.get(0))
                .optional()?;
            if let Some(json) = json {
                let term_use: TermUse = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("insight day {day}: {e}")))?;
                uses.insert(term.clone(), term_use);
            }
        }
        if !uses.is_empty() {
            kept.push((kept_sessions(conn, day)?, uses));
        }
    }
    let wanted: HashSet<&String> = terms.iter().collect();
    let live = stretches.iter().filter_map(|stretch| {
        let Counted::Live(w) = stretch else {
            return None;
        };
        let uses = w
            .terms
            .iter()
            .filter(|(t, _)| wanted.contains(t))
            .map(|(t, u)| (t.clone(), u.clone()))
            .collect();
        Some((w.sessions.as_slice(), uses))
    });
    let all = kept
        .iter()
        .map(|(s, u)| (s.as_slice(), u.clone()))
        .chain(live);
    let mut text =
        conn.prepare_cached("SELECT text FROM messages WHERE session_id = ?1 AND seq = ?2")?;
    let mut details = details(all, |session, seq| match with_examples {
        true => Ok(text.query_row(params![session, seq], |r| r.get(0))?),
        false => Ok(String::new()),
    })?;
    if !with_examples {
        details.values_mut().for_each(|d| d.examples.clear());
    }
    Ok(details)
}

impl Store {
    /// The words of the period asked for (`[current_from_ms, to_ms)`) and
    /// the one before (`[from_ms, current_from_ms)`), counted per
    /// conversation, and the details of the terms `pick` chooses.
    pub async fn period_words<W, P>(
        &self,
        period: (i64, i64, i64),
        mut words: W,
        pick: P,
    ) -> Result<(PeriodWords, PeriodDetails), StoreError>
    where
        W: FnMut(&str) -> Vec<(String, String)> + Send + 'static,
        P: FnOnce(&PeriodWords) -> Vec<String> + Send + 'static,
    {
        self.run(move |conn| period_words(conn, period, &mut words, pick))
            .await
    }

    /// The conversations started in `[from_ms, to_ms)` in which a customer
    /// used any of `terms`.
    pub async fn conversations_using<W>(
        &self,
        (from_ms, to_ms): (i64, i64),
        terms: Vec<String>,
        mut words: W,
    ) -> Result<HashSet<String>, StoreError>
    where
        W: FnMut(&str) -> Vec<(String, String)> + Send + 'static,
    {
        self.run(move |conn| {
            let counted = stretches(from_ms, to_ms)
                .into_iter()
                .map(|stretch| counted(conn, stretch, &mut words))
                .collect::<Result<Vec<_>, _>>()?;
            let details = term_details(conn, &counted, &terms, false)?;
            Ok(details
                .into_values()
                .flat_map(|d| d.conversations)
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn say(conn: &Connection, session: &str, at: i64, seq: i64, text: &str) {
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, created_at_ms, last_seq, status) VALUES (?1, ?2, 0, 'bot')",
            params![session, at],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (session_id, seq, role, text, created_at_ms) VALUES (?1, ?2, 'customer', ?3, ?4)",
            params![session, seq, text, at],
        )
        .unwrap();
    }

    /// Lowercased words of three letters or more.
    fn words() -> impl FnMut(&str) -> Vec<(String, String)> + Send + Clone + 'static {
        |text: &str| {
            text.split_whitespace()
                .filter(|w| w.len() >= 3)
                .map(|w| (w.to_lowercase(), w.to_owned()))
                .collect()
        }
    }

    fn everything(_: &PeriodWords) -> Vec<String> {
        ["lid", "parcel", "cracked"].map(String::from).to_vec()
    }

    #[test]
    fn kept_days_give_what_counting_afresh_gives_and_a_new_message_drops_its_days_words() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("topics.sqlite3")).unwrap();
        let conn = store.lock();
        let now = 100 * DAY_MS + 5 * HOUR_MS;
        // Days 93..=96 before, 97..=99 and today asked for.
        say(&conn, "p1", 94 * DAY_MS, 1, "where is my parcel");
        say(&conn, "p2", 95 * DAY_MS, 1, "parcel late");
        say(
            &conn,
            "c1",
            97 * DAY_MS + HOUR_MS,
            1,
            "the lid arrived cracked",
        );
        say(&conn, "c1", 97 * DAY_MS + 2 * HOUR_MS, 2, "the lid again");
        say(&conn, "c2", 98 * DAY_MS, 1, "cracked lid");
        say(&conn, "c3", 99 * DAY_MS + 23 * HOUR_MS, 1, "lid and parcel");
        say(&conn, "c4", now - HOUR_MS, 1, "a cracked lid");
        let period = (now - 8 * DAY_MS, now - 4 * DAY_MS + HOUR_MS, now);
        let look =
            |conn: &Connection| period_words(conn, period, &mut words(), everything).unwrap();

        let (fresh, fresh_details) = look(&conn);
        assert_eq!(fresh.conversations, [2, 4]);
        assert_eq!(fresh.counts["lid"], [0, 4]);
        assert_eq!(fresh.counts["parcel"], [2, 1]);
        let lid = &fresh_details[1]["lid"];
        assert_eq!(lid.surfaces["lid"], 5);
        // Newest first, one per conversation: c1's newest use is its second message.
        let examples: Vec<_> = lid
            .examples
            .iter()
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            examples,
            [
                ("c4", "a cracked lid"),
                ("c3", "lid and parcel"),
                ("c2", "cracked lid")
            ]
        );
        assert!(
            fresh_details[0]["parcel"].examples.is_empty(),
            "no examples from the period before"
        );

        // Days whose sums are kept keep their words too, and read them back.
        for day in 90..100 {
            conn.execute(
                "INSERT INTO insight_days (day, abandoned_after_ms, tally) VALUES (?1, 0, '{}')",
                [day],
            )
            .unwrap();
        }
        assert_eq!(look(&conn), (fresh.clone(), fresh_details.clone()));
        let kept: i64 = conn
            .query_row(
                "SELECT COUNT(DISTINCT day) FROM insight_day_terms",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 5, "days 94, 95, 97, 98, 99 had words");
        assert_eq!(look(&conn), (fresh, fresh_details));
        let using = |conn: &Connection, terms: &[&str]| {
            let terms: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
            let counted: Vec<Counted> = stretches(now - 4 * DAY_MS, now)
                .into_iter()
                .map(|s| counted(conn, s, &mut words()).unwrap())
                .collect();
            let mut sessions: Vec<String> = term_details(conn, &counted, &terms, false)
                .unwrap()
                .into_values()
                .flat_map(|d| d.conversations)
                .collect();
            sessions.sort();
            sessions.dedup();
            sessions
        };
        assert_eq!(
            using(&conn, &["parcel", "cracked"]),
            ["c1", "c2", "c3", "c4"]
        );

        // A customer of day 98 writes again: that day's words are counted afresh.
        say(&conn, "c2", now - 2 * HOUR_MS, 2, "my parcel too");
        let days: Vec<i64> = conn
            .prepare("SELECT DISTINCT day FROM insight_day_terms ORDER BY day")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(days, [94, 95, 97, 99]);
        let (after, _) = look(&conn);
        assert_eq!(after.counts["parcel"], [2, 2]);
        assert_eq!(using(&conn, &["parcel"]), ["c2", "c3"]);
    }
}
