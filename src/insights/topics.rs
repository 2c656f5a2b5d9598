//! Rising topics: words customers use more this period than the one before,
//! beyond what the change in traffic explains, grouped when they come up in
//! the same conversations, each with a few of the messages behind it.
//!
//! Words, not embeddings: a shop owner can read and check a word, every
//! period is computed from the stored text alone (no model at query time,
//! nothing extra stored per message), and a topic clicks through to exactly
//! the conversations that used its words. Counting is storage's
//! (`storage::topic_days`, which keeps past days' counts): this file decides
//! what rises and how words group.

use std::collections::HashSet;

use serde::Serialize;

use crate::knowledge::Analyzer;
use crate::storage::topic_days::{PeriodDetails, PeriodWords, TermDetail};
use crate::storage::{Store, StoreError};

/// A group of words that rose together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RisingTopic {
    /// The words as customers wrote them, most telling first.
    pub label: String,
    /// The analyzer's terms: what the drill-down filters on.
    pub terms: Vec<String>,
    /// Conversations that used any of the words, this period and the one
    /// before.
    pub conversations: usize,
    pub previous: usize,
    /// How far above what the previous period and the traffic predict, in
    /// standard deviations of a count (a Poisson z-score).
    pub score: f64,
    /// A few of this period's messages that used the lead word, newest
    /// first, from different conversations.
    pub examples: Vec<TopicExample>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicExample {
    pub session: String,
    pub text: String,
}

/// A word must come up in this many conversations of the period.
pub const MIN_CONVERSATIONS: usize = 3;
/// And this many standard deviations above its expected count: about one
/// chance in forty of a word getting there by luck alone.
pub const MIN_SCORE: f64 = 2.0;
/// Words shared by more of the period's conversations than this are about
/// everything (order, help) and name no topic.
const MAX_SHARE: f64 = 0.5;
/// Two words are one topic when this share of the smaller one's
/// conversations used both.
const SAME_TOPIC_OVERLAP: f64 = 0.6;
const MAX_TOPICS: usize = 10;
const MAX_LABEL_WORDS: usize = 3;
/// The strongest rising words looked at closely (their conversations,
/// surfaces and examples): enough for ten topics of several words each.
const MAX_CANDIDATES: usize = 100;

/// The terms of `text` with the words they came from, as topics count them:
/// numbers and very short words name no topic.
pub fn words(analyzer: &mut Analyzer, text: &str) -> Vec<(String, String)> {
    let mut terms = analyzer.terms_with_words(text);
    terms
        .retain(|(term, _)| term.chars().count() >= 3 && !term.chars().any(|c| c.is_ascii_digit()));
    terms
}

/// `words` with an analyzer of its own, for storage to call.
pub fn word_counter() -> impl FnMut(&str) -> Vec<(String, String)> + Send + Clone + 'static {
    let mut analyzer = Analyzer::default();
    move |text| words(&mut analyzer, text)
}

/// The rising words, strongest first (ties: more conversations, then
/// alphabetically, so the same data always gives the same page), with
/// their scores: in enough of the period's conversations, not in most,
/// and counted well above what the period before and the change in
/// traffic predict.
fn rising(period: &PeriodWords) -> Vec<(&String, f64)> {
    let [n_previous, n_current] = period.conversations;
    // Nothing rises without a period before it to rise from.
    if n_current == 0 || n_previous == 0 {
        return Vec::new();
    }
    // The previous count scaled to this period's traffic.
    let scale = n_current as f64 / n_previous as f64;
    let mut rising: Vec<(&String, usize, f64)> = period
        .counts
        .iter()
        .filter(|(_, [_, current])| {
            *current >= MIN_CONVERSATIONS && (*current as f64) <= MAX_SHARE * n_current as f64
        })
        .map(|(word, [previous, current])| {
            let expected = *previous as f64 * scale;
            let score = (*current as f64 - expected) / (expected + 1.0).sqrt();
            (word, *current, score)
        })
        .filter(|(_, _, score)| *score >= MIN_SCORE)
        .collect();
    rising.sort_by(|a, b| b.2.total_cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
    rising.truncate(MAX_CANDIDATES);
    rising.into_iter().map(|(w, _, score)| (w, score)).collect()
}

/// The rising topics of `[to_ms - span_ms, to_ms)` against the `span_ms`
/// before it: storage counts the words (kept days read back, the rest
/// tokenised on its blocking thread, off the executor), this file chooses
/// and groups them.
pub async fn rising_topics(
    store: &Store,
    to_ms: i64,
    span_ms: i64,
) -> Result<Vec<RisingTopic>, StoreError> {
    let (period, details) = store
        .period_words(
            (to_ms - 2 * span_ms, to_ms - span_ms, to_ms),
            word_counter(),
            candidates,
        )
        .await?;
    Ok(topics(&period, &details))
}

/// The terms whose details `topics` needs.
pub fn candidates(period: &PeriodWords) -> Vec<String> {
    rising(period).into_iter().map(|(w, _)| w.clone()).collect()
}

/// The period's rising topics, strongest first, from its counts and the
/// details of `candidates(period)` in both periods.
pub fn topics(period: &PeriodWords, details: &PeriodDetails) -> Vec<RisingTopic> {
    let [before, asked] = details;
    let none = TermDetail::default();
    let detail = |word: &String| asked.get(word).unwrap_or(&none);

    /// The first member leads: the others joined it.
    struct Group<'a> {
        members: Vec<&'a String>,
        score: f64,
    }
    let mut groups: Vec<Group> = Vec::new();
    for (word, score) in rising(period) {
        let term = detail(word);
        let joins = groups.iter().position(|g| {
            let lead = detail(g.members[0]);
            let shared = lead.conversations.intersection(&term.conversations).count();
            shared as f64
                >= SAME_TOPIC_OVERLAP
                    * lead.conversations.len().min(term.conversations.len()) as f64
        });
        match joins {
            Some(group) => groups[group].members.push(word),
            None if groups.len() < MAX_TOPICS => groups.push(Group {
                members: vec![word],
                score,
            }),
            None => {}
        }
    }

    groups
        .into_iter()
        .map(|group| {
            let mut current = HashSet::new();
            let mut previous = HashSet::new();
            for word in &group.members {
                current.extend(detail(word).conversations.iter());
                if let Some(d) = before.get(*word) {
                    previous.extend(d.conversations.iter());
                }
            }
            let label = group
                .members
                .iter()
                .take(MAX_LABEL_WORDS)
                .map(|word| most_written(detail(word)))
                .collect::<Vec<_>>()
                .join(" · ");
            let examples = detail(group.members[0])
                .examples
                .iter()
                .map(|(session, text)| TopicExample {
                    session: session.clone(),
                    text: text.clone(),
                })
                .collect();
            RisingTopic {
                label,
                terms: group.members.iter().map(|w| (*w).clone()).collect(),
                conversations: current.len(),
                previous: previous.len(),
                score: (group.score * 100.0).round() / 100.0,
                examples,
            }
        })
        .collect()
}

fn most_written(term: &TermDetail) -> String {
    term.surfaces
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(s, _)| s.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::storage::topic_days::{CustomerMessage, WordUses, details};

    struct TopicMessage {
        session: String,
        current: bool,
        text: String,
    }

    /// The topics of `messages` (in the order written), counted in memory
    /// the way storage counts a stretch of time that is not kept.
    fn rising_topics(messages: &[TopicMessage]) -> Vec<RisingTopic> {
        let mut words = word_counter();
        let mut count = |current: bool| {
            let written = messages
                .iter()
                .enumerate()
                .filter(|(_, m)| m.current == current)
                .map(|(i, m)| CustomerMessage {
                    session: m.session.clone(),
                    at_ms: i as i64,
                    seq: i as i64,
                    text: m.text.clone(),
                });
            WordUses::count(written, &mut words)
        };
        let uses = [count(false), count(true)];
        let mut period = PeriodWords::default();
        period.add(&uses[0], false);
        period.add(&uses[1], true);
        let terms = candidates(&period);
        let detail = |u: &WordUses| {
            let picked: HashMap<_, _> = u
                .terms
                .iter()
                .filter(|(t, _)| terms.contains(t))
                .map(|(t, u)| (t.clone(), u.clone()))
                .collect();
            details([(u.sessions.as_slice(), picked)], |_, seq| {
                Ok(messages[seq as usize].text.clone())
            })
            .unwrap()
        };
        topics(&period, &[detail(&uses[0]), detail(&uses[1])])
    }

    fn message(session: usize, current: bool, text: &str) -> TopicMessage {
        TopicMessage {
            session: format!("s{session}"),
            current,
            text: text.to_owned(),
        }
    }

    /// `n` conversations of a period, each one message about the same
    /// steady things, numbered from `first`.
    fn steady(first: usize, n: usize, current: bool) -> Vec<TopicMessage> {
        (first..first + n)
            .map(|i| {
                let text = if i % 2 == 0 {
                    "where is my parcel"
                } else {
                    "how do I pay with a voucher"
                };
                message(i, current, text)
            })
            .collect()
    }

    #[test]
    fn words_that_rise_together_are_one_topic_and_steady_ones_are_none() {
        let mut messages = steady(0, 20, false);
        messages.extend(steady(100, 20, true));
        for i in 200..206 {
            messages.push(message(i, true, "The lid of my teapot arrived cracked"));
        }
        messages.push(message(300, true, "Cracked lids again?"));
        let topics = rising_topics(&messages);
        assert_eq!(topics.len(), 1, "{topics:#?}");
        let topic = &topics[0];
        assert_eq!((topic.conversations, topic.previous), (7, 0));
        assert!(topic.terms.contains(&"lid".to_owned()), "{:?}", topic.terms);
        assert!(
            topic.terms.contains(&"crack".to_owned()),
            "{:?}",
            topic.terms
        );
        assert!(topic.label.contains("cracked"), "{}", topic.label);
        // Newest first, one per conversation, at most three.
        assert_eq!(topic.examples.len(), crate::storage::topic_days::EXAMPLES);
        assert_eq!(topic.examples[0].session, "s300");
        assert_eq!(topic.examples[1].session, "s205");
    }

    #[test]
    fn a_word_that_grows_only_with_traffic_is_not_rising() {
        let mut messages = steady(0, 10, false);
        messages.extend(steady(100, 40, true));
        assert!(rising_topics(&messages).is_empty());
    }

    #[test]
    fn a_word_in_too_few_conversations_is_no_topic() {
        let mut messages = steady(0, 10, false);
        messages.extend(steady(100, 10, true));
        for i in 200..200 + MIN_CONVERSATIONS - 1 {
            messages.push(message(i, true, "the teapot lid is cracked"));
        }
        assert!(rising_topics(&messages).is_empty());
    }

    #[test]
    fn without_a_period_before_nothing_is_rising() {
        let messages: Vec<_> = (0..10)
            .map(|i| message(i, true, "the teapot lid is cracked"))
            .collect();
        assert!(rising_topics(&messages).is_empty());
    }

    #[test]
    fn any_form_of_a_word_counts_as_the_word_and_numbers_are_no_words() {
        let mut analyzer = Analyzer::default();
        let mut terms = |text| words(&mut analyzer, text);
        assert!(
            terms("Both LIDS were broken")
                .iter()
                .any(|(t, w)| t == "lid" && w == "lids")
        );
        assert!(
            terms("order 12345 is late")
                .iter()
                .all(|(t, _)| t != "12345")
        );
    }
}
