//! Rising topics: words customers use more this period than the one before,
//! beyond what the change in traffic explains, grouped when they come up in
//! the same conversations, each with a few of the messages behind it.
//!
//! Words, not embeddings: a shop owner can read and check a word, every
//! period is computed from the stored text alone (no model at query time,
//! nothing extra stored per message), and a topic clicks through to exactly
//! the conversations that used its words.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::knowledge::Analyzer;

pub use crate::storage::insights::TopicMessage;

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
const MAX_EXAMPLES: usize = 3;

#[derive(Default)]
struct Term {
    current: HashSet<usize>,
    previous: HashSet<usize>,
    /// Surface forms and how often each was written.
    surfaces: HashMap<String, usize>,
    /// The period's messages that used it (indices, oldest first): where
    /// its examples come from without reading the text again.
    used_in: Vec<usize>,
}

/// The period's rising topics, strongest first. `messages` are in the order
/// they were written (oldest first).
pub fn rising_topics(analyzer: &mut Analyzer, messages: &[TopicMessage]) -> Vec<RisingTopic> {
    let mut sessions: HashMap<&str, usize> = HashMap::new();
    let mut totals = [HashSet::new(), HashSet::new()];
    let mut terms: HashMap<String, Term> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        let next = sessions.len();
        let id = *sessions.entry(message.session.as_str()).or_insert(next);
        totals[usize::from(message.current)].insert(id);
        for (term, surface) in words(analyzer, &message.text) {
            let entry = terms.entry(term).or_default();
            if message.current {
                entry.current.insert(id);
                entry.used_in.push(index);
                *entry.surfaces.entry(surface).or_default() += 1;
            } else {
                entry.previous.insert(id);
            }
        }
    }
    let (n_previous, n_current) = (totals[0].len(), totals[1].len());
    // Nothing rises without a period before it to rise from.
    if n_current == 0 || n_previous == 0 {
        return Vec::new();
    }
    // The previous count scaled to this period's traffic.
    let scale = n_current as f64 / n_previous as f64;
    let mut rising: Vec<(&String, &Term, f64)> = terms
        .iter()
        .filter(|(_, t)| {
            t.current.len() >= MIN_CONVERSATIONS
                && (t.current.len() as f64) <= MAX_SHARE * n_current as f64
        })
        .map(|(word, t)| {
            let expected = t.previous.len() as f64 * scale;
            let score = (t.current.len() as f64 - expected) / (expected + 1.0).sqrt();
            (word, t, score)
        })
        .filter(|(_, _, score)| *score >= MIN_SCORE)
        .collect();
    // Strongest first; ties by more conversations, then alphabetically, so
    // the same data always gives the same page.
    rising.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then(b.1.current.len().cmp(&a.1.current.len()))
            .then(a.0.cmp(b.0))
    });

    /// The first member leads: the others joined it.
    struct Group<'a> {
        members: Vec<(&'a String, &'a Term)>,
        score: f64,
    }
    let mut groups: Vec<Group> = Vec::new();
    for (word, term, score) in rising {
        let joins = groups.iter().position(|g| {
            let lead = g.members[0].1;
            let shared = lead.current.intersection(&term.current).count();
            shared as f64 >= SAME_TOPIC_OVERLAP * lead.current.len().min(term.current.len()) as f64
        });
        match joins {
            Some(group) => groups[group].members.push((word, term)),
            None if groups.len() < MAX_TOPICS => groups.push(Group {
                members: vec![(word, term)],
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
            for (_, term) in &group.members {
                current.extend(term.current.iter().copied());
                previous.extend(term.previous.iter().copied());
            }
            let label = group
                .members
                .iter()
                .take(MAX_LABEL_WORDS)
                .map(|(_, term)| most_written(term))
                .collect::<Vec<_>>()
                .join(" · ");
            let examples = examples(messages, group.members[0].1);
            RisingTopic {
                label,
                terms: group.members.iter().map(|(w, _)| (*w).clone()).collect(),
                conversations: current.len(),
                previous: previous.len(),
                score: (group.score * 100.0).round() / 100.0,
                examples,
            }
        })
        .collect()
}

/// Whether `text` uses any of `terms` (the drill-down behind a topic).
pub fn mentions_any(analyzer: &mut Analyzer, text: &str, terms: &[String]) -> bool {
    words(analyzer, text).any(|(term, _)| terms.contains(&term))
}

/// The analyzer's terms of `text` with the words they came from;
/// numbers and very short words name no topic.
fn words(analyzer: &mut Analyzer, text: &str) -> impl Iterator<Item = (String, String)> {
    analyzer
        .terms_with_words(text)
        .into_iter()
        .filter(|(term, _)| term.chars().count() >= 3 && !term.chars().any(|c| c.is_ascii_digit()))
}

fn most_written(term: &Term) -> String {
    term.surfaces
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(s, _)| s.clone())
        .unwrap_or_default()
}

/// The newest messages that used the lead word, one per conversation.
fn examples(messages: &[TopicMessage], lead: &Term) -> Vec<TopicExample> {
    let mut seen = HashSet::new();
    lead.used_in
        .iter()
        .rev()
        .map(|&index| &messages[index])
        .filter(|message| seen.insert(message.session.as_str()))
        .take(MAX_EXAMPLES)
        .map(|message| TopicExample {
            session: message.session.clone(),
            text: message.text.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let topics = rising_topics(&mut Analyzer::default(), &messages);
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
        assert_eq!(topic.examples.len(), MAX_EXAMPLES);
        assert_eq!(topic.examples[0].session, "s300");
        assert_eq!(topic.examples[1].session, "s205");
    }

    #[test]
    fn a_word_that_grows_only_with_traffic_is_not_rising() {
        let mut messages = steady(0, 10, false);
        messages.extend(steady(100, 40, true));
        assert!(rising_topics(&mut Analyzer::default(), &messages).is_empty());
    }

    #[test]
    fn a_word_in_too_few_conversations_is_no_topic() {
        let mut messages = steady(0, 10, false);
        messages.extend(steady(100, 10, true));
        for i in 200..200 + MIN_CONVERSATIONS - 1 {
            messages.push(message(i, true, "the teapot lid is cracked"));
        }
        assert!(rising_topics(&mut Analyzer::default(), &messages).is_empty());
    }

    #[test]
    fn without_a_period_before_nothing_is_rising() {
        let messages: Vec<_> = (0..10)
            .map(|i| message(i, true, "the teapot lid is cracked"))
            .collect();
        assert!(rising_topics(&mut Analyzer::default(), &messages).is_empty());
    }

    #[test]
    fn the_drill_down_matches_any_form_of_a_topics_words() {
        let mut analyzer = Analyzer::default();
        let terms = vec!["lid".to_owned()];
        assert!(mentions_any(&mut analyzer, "Both LIDS were broken", &terms));
        assert!(!mentions_any(&mut analyzer, "the teapot was fine", &terms));
    }
}
