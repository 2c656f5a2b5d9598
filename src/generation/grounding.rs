//! Grounding enforced by code: every number, amount, duration, name, email
//! and link in a generated reply must appear in the passages it was given.
//! Small models paraphrase well but invent specifics ("7 business days" when
//! the article says 5); a reply that fails is replaced by sentences taken
//! from the best passage.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::knowledge::{Analyzer, Passage};

/// A specific claim found in text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fact {
    /// A number with its unit, if one follows it ("5 business day", "4.95 €").
    Quantity { value: String, unit: Option<String> },
    /// A capitalised word that is not at the start of a sentence.
    Name(String),
    /// An email address or link.
    Address(String),
}

impl std::fmt::Display for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fact::Quantity {
                value,
                unit: Some(u),
            } => write!(f, "{value} {u}"),
            Fact::Quantity { value, unit: None } => write!(f, "{value}"),
            Fact::Name(n) | Fact::Address(n) => write!(f, "{n}"),
        }
    }
}

/// The outcome of checking a reply against its sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Facts in the reply that no source supports.
    pub unsupported: Vec<Fact>,
    /// Share of the reply's content words found in the sources or the question.
    /// Low for a generic reply ("as an assistant I cannot…") that says nothing false
    /// but answers nothing either.
    pub on_topic: f32,
    /// The question asks for a duration or an amount, the sources have one,
    /// and the reply does not.
    pub misses_asked_fact: bool,
    /// The reply denies something ("no", "cannot") while its sources deny
    /// nothing: small models flip a "yes" into a "no" without changing a
    /// single fact. (The other direction is not checked: sources are full of
    /// incidental negations, such as "no free shipping threshold".)
    pub flips_polarity: bool,
}

/// Least share of a reply's content words that must come from its sources.
pub const MIN_ON_TOPIC: f32 = 0.5;

impl Verdict {
    /// Nothing in the reply contradicts or goes beyond the sources.
    pub fn is_grounded(&self) -> bool {
        self.unsupported.is_empty()
    }

    /// Grounded, about the sources, and answering what was asked.
    pub fn is_acceptable(&self) -> bool {
        self.is_grounded()
            && self.on_topic >= MIN_ON_TOPIC
            && !self.misses_asked_fact
            && !self.flips_polarity
    }
}

static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)
        (?P<cur>[€$£])?\s?
        (?P<num>\d{1,2}:\d{2}|\d+(?:[.,]\d+)*)
        (?:\s?(?P<unit>%|percent|°c|(?:business|working)\s+days?|days?|weeks?|months?|years?|hours?|minutes?|mins?|characters?|digits?|euros?|eur\b|kg|cm))?",
    )
    .expect("valid regex")
});
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)https?://[^\s)\]]+|[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}")
        .expect("valid regex")
});
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z][A-Za-z'&-]*").expect("valid regex"));

/// Replaces number words by digits so "five days" and "5 days" compare equal.
fn digits_for_words(text: &str) -> String {
    WORD.replace_all(text, |c: &regex::Captures<'_>| {
        let word = &c[0];
        crate::language::words()
            .grounding
            .number_words
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| word.to_string())
    })
    .into_owned()
}

fn normalise_unit(unit: &str, currency: Option<&str>) -> Option<String> {
    if let Some(c) = currency {
        return Some(match c {
            "$" => "$".into(),
            "£" => "£".into(),
            _ => "€".into(),
        });
    }
    let unit = unit.to_ascii_lowercase();
    let unit = unit.split_whitespace().collect::<Vec<_>>().join(" ");
    let unit = unit.trim_end_matches('s');
    Some(
        match unit {
            "" => return None,
            "percent" => "%",
            "working day" => "business day",
            "min" => "minute",
            "euro" | "eur" => "€",
            other => other,
        }
        .to_string(),
    )
}

fn normalise_number(num: &str) -> String {
    if num.contains(':') {
        return num.to_string();
    }
    // "1,500" is a thousands separator; "4,95" a decimal comma.
    let num = match num.rsplit_once(',') {
        Some((_, tail)) if tail.len() == 3 => num.replace(',', ""),
        _ => num.replace(',', "."),
    };
    let num = num.trim_end_matches('.');
    match num.split_once('.') {
        Some((int, frac)) if frac.chars().all(|c| c == '0') => int.to_string(),
        _ => num.to_string(),
    }
}

/// Extracts the specific claims of a text.
pub fn facts(text: &str) -> Vec<Fact> {
    let text = digits_for_words(text);
    let mut out = Vec::new();
    let without_addresses = ADDRESS.replace_all(&text, |c: &regex::Captures<'_>| {
        out.push(Fact::Address(
            c[0].trim_end_matches('.').to_ascii_lowercase(),
        ));
        " "
    });
    for c in QUANTITY.captures_iter(&without_addresses) {
        let value = normalise_number(&c["num"]);
        let unit = normalise_unit(
            c.name("unit").map(|m| m.as_str()).unwrap_or(""),
            c.name("cur").map(|m| m.as_str()),
        );
        out.push(Fact::Quantity { value, unit });
    }
    let mut sentence_start = true;
    for token in without_addresses.split_whitespace() {
        let word = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '&');
        if !word.is_empty()
            && !sentence_start
            && word.chars().next().is_some_and(char::is_uppercase)
            && !crate::language::words()
                .grounding
                .common_capitals
                .contains(word)
        {
            out.push(Fact::Name(word.to_string()));
        }
        sentence_start = token.ends_with(['.', '!', '?', ':']) || token.starts_with('-');
    }
    out
}

/// Checks a reply against the sources it was given and the customer's own words.
pub fn check(reply: &str, sources: &[&str], question: &str) -> Verdict {
    let source_text = sources.join("\n");
    // The customer's own numbers (an order number) may be said back.
    let known: HashSet<Fact> = facts(&format!("{source_text}\n{question}"))
        .into_iter()
        .collect();
    let known_values: HashSet<&str> = known
        .iter()
        .filter_map(|f| match f {
            Fact::Quantity { value, .. } => Some(value.as_str()),
            _ => None,
        })
        .collect();
    // Words and their parts ("LO-" is known as "lo" too, as names are split).
    let known_words: HashSet<String> = WORD
        .find_iter(&format!("{source_text}\n{question}"))
        .flat_map(|m| {
            let word = m.as_str().to_ascii_lowercase();
            let parts: Vec<String> = word
                .split(['\'', '-'])
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            std::iter::once(word).chain(parts)
        })
        .collect();
    let mut unsupported = Vec::new();
    let reply_facts = facts(reply);
    for fact in reply_facts.iter().cloned() {
        let supported = match &fact {
            Fact::Quantity { value, unit: None } => known_values.contains(value.as_str()),
            Fact::Quantity {
                value,
                unit: Some(unit),
            } => {
                known.contains(&fact)
                    // "5 days" is a looser way of saying "5 business days".
                    || (unit == "day"
                        && known.contains(&Fact::Quantity {
                            value: value.clone(),
                            unit: Some("business day".into()),
                        }))
            }
            // A name with digits ("LO-10482002") is known when its numbers
            // are.
            Fact::Name(name) => name.split(['\'', '-']).all(|part| {
                part.is_empty()
                    || known_words.contains(&part.to_ascii_lowercase())
                    || (part.chars().all(|c| c.is_ascii_digit())
                        && known_values.contains(normalise_number(part).as_str()))
            }),
            Fact::Address(_) => known.contains(&fact),
        };
        if !supported && !unsupported.contains(&fact) {
            unsupported.push(fact);
        }
    }
    let mut analyzer = Analyzer::default();
    let allowed: HashSet<String> = analyzer
        .terms(&format!("{source_text}\n{question}"))
        .into_iter()
        .collect();
    let reply_terms = analyzer.terms(reply);
    let on_topic = if reply_terms.is_empty() {
        0.0
    } else {
        reply_terms.iter().filter(|t| allowed.contains(*t)).count() as f32
            / reply_terms.len() as f32
    };
    let asked = wanted(question);
    let misses_asked_fact = asked != Wanted::Anything
        && known.iter().any(|f| is_wanted(f, asked))
        && !reply_facts.iter().any(|f| is_wanted(f, asked));
    Verdict {
        unsupported,
        on_topic,
        misses_asked_fact,
        flips_polarity: is_negated(reply) && !is_negated(&source_text),
    }
}

fn is_negated(text: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .any(|w| {
            crate::language::words()
                .grounding
                .negations
                .iter()
                .any(|n| n.eq_ignore_ascii_case(w))
        })
}

/// Splits passage text into sentences, dropping list markers.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line
            .trim()
            .trim_start_matches(['-', '*'])
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start_matches(". ")
            .trim();
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let end_of_sentence = matches!(b, b'.' | b'!' | b'?')
                && (i + 1 == bytes.len() || bytes[i + 1] == b' ')
                && !line[start..i].ends_with("e.g");
            if end_of_sentence {
                out.push(line[start..=i].trim().to_string());
                start = i + 1;
            }
        }
        if start < line.len() && !line[start..].trim().is_empty() {
            let mut rest = line[start..].trim().to_string();
            if !rest.ends_with(['.', '!', '?', ':']) {
                rest.push('.');
            }
            out.push(rest);
        }
    }
    out
}

/// What kind of fact a question asks for, from its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Duration,
    Amount,
    Anything,
}

fn wanted(question: &str) -> Wanted {
    let q = question.to_lowercase();
    if ["how long", "how many days", "how many weeks", "when "]
        .iter()
        .any(|c| q.contains(c))
    {
        Wanted::Duration
    } else if ["how much", "cost", "price", "fee", "charge"]
        .iter()
        .any(|c| q.contains(c))
    {
        Wanted::Amount
    } else {
        Wanted::Anything
    }
}

/// Whether `question` asks for a duration ("how long") or an amount ("how much").
pub fn asks_for_a_kind_of_fact(question: &str) -> bool {
    wanted(question) != Wanted::Anything
}

/// Whether `sentence` holds the kind of fact `question` asks for (a
/// duration for "how long", an amount for "how much"); false when the
/// question asks for no particular kind.
pub fn holds_asked_fact(question: &str, sentence: &str) -> bool {
    let w = wanted(question);
    w != Wanted::Anything && has_wanted_fact(sentence, w)
}

fn has_wanted_fact(text: &str, wanted: Wanted) -> bool {
    facts(text).iter().any(|f| is_wanted(f, wanted))
}

fn is_wanted(fact: &Fact, wanted: Wanted) -> bool {
    match (fact, wanted) {
        (Fact::Quantity { unit: Some(u), .. }, Wanted::Duration) => {
            crate::language::words().grounding.durations.contains(u)
        }
        (Fact::Quantity { unit: Some(u), .. }, Wanted::Amount) => u == "€" || u == "%",
        _ => false,
    }
}

/// Which of the retrieved passages (best first, with their relevance)
/// should answer: the one covering most of the question, then one holding
/// the kind of fact asked for, then retrieval rank (which already weighs
/// meaning, the intent and the conversation's topic). The answer's
/// sentences come from the whole article, so this mostly picks the article.
pub fn best_source(question: &str, candidates: &[(f32, &Passage)]) -> usize {
    let wanted = wanted(question);
    candidates
        .iter()
        .enumerate()
        .max_by_key(|(rank, (relevance, passage))| {
            (
                (relevance * 20.0).round() as i32,
                wanted != Wanted::Anything && has_wanted_fact(&passage.text, wanted),
                -(*rank as isize),
            )
        })
        .map(|(rank, _)| rank)
        .unwrap_or(0)
}

/// An answer made of the passage's sentences that best match the question.
pub fn extractive(question: &str, question_terms: &[String], passage: &Passage) -> String {
    let mut analyzer = Analyzer::default();
    let wanted = wanted(question);
    let sentences = sentences(&passage.text);
    let best = sentences
        .iter()
        .enumerate()
        .max_by_key(|(i, sentence)| {
            let terms: HashSet<String> = analyzer.terms(sentence).into_iter().collect();
            let score = question_terms.iter().filter(|t| terms.contains(*t)).count() * 2
                + usize::from(sentence.chars().any(|c| c.is_ascii_digit()))
                + 2 * usize::from(wanted != Wanted::Anything && has_wanted_fact(sentence, wanted));
            (score, usize::MAX - i)
        })
        .map(|(i, _)| i)
        .unwrap_or(0);
    let mut answer = sentences.get(best).cloned().unwrap_or_default();
    if let Some(next) = sentences.get(best + 1)
        && answer.len() + next.len() < 260
        && !answer.ends_with(':')
    {
        answer.push(' ');
        answer.push_str(next);
    }
    if answer.ends_with(':') {
        // A sentence that introduces a list is useless without the list.
        let list: Vec<&str> = passage
            .text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("- "))
            .map(|l| l.trim_start_matches("- ").trim_end_matches(['.', ';']))
            .collect();
        answer.push(' ');
        answer.push_str(&list.join("; "));
        answer.push('.');
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "We refund a return within 5 business days after it arrives. \
        Express delivery costs €9.95. Orders from €35 to €1,500. Call +31 30 555 0142 \
        or email support@lumenandoak.example. Open Monday to Friday, 08:00 to 20:00 CET.";

    #[test]
    fn supported_reply_passes() {
        let reply = "We refund your return within five business days, and express costs €9.95. \
            You can call us on Monday.";
        let v = check(reply, &[SOURCE], "when is my refund?");
        assert!(v.is_grounded(), "{:?}", v.unsupported);
    }

    #[test]
    fn invented_duration_fails() {
        let v = check(
            "Refunds arrive within 7 business days.",
            &[SOURCE],
            "refund?",
        );
        assert_eq!(
            v.unsupported,
            vec![Fact::Quantity {
                value: "7".into(),
                unit: Some("business day".into())
            }]
        );
    }

    #[test]
    fn changed_unit_amount_and_name_fail() {
        let v = check(
            "It takes 5 weeks and costs €12. Contact Amazon or help@shop.example.",
            &[SOURCE],
            "?",
        );
        let shown: Vec<String> = v.unsupported.iter().map(|f| f.to_string()).collect();
        assert_eq!(shown, vec!["help@shop.example", "5 week", "12 €", "Amazon"]);
    }

    #[test]
    fn thousands_and_times_normalise() {
        let v = check(
            "Orders up to €1500 between 08:00 and 20:00.",
            &[SOURCE],
            "?",
        );
        assert!(v.is_grounded(), "{:?}", v.unsupported);
    }

    #[test]
    fn names_from_the_question_are_allowed() {
        let v = check(
            "Yes, we ship to Germany.",
            &["We ship to Germany."],
            "Do you ship to germany?",
        );
        assert!(v.is_grounded());
        let v = check(
            "Sure, we ship to Spain.",
            &["We ship to Germany."],
            "Do you ship to Germany?",
        );
        assert!(!v.is_grounded());
    }

    fn passage(text: &str) -> Passage {
        Passage {
            id: "a#0".into(),
            article_id: "a".into(),
            article_title: "A".into(),
            heading: String::new(),
            text: text.into(),
            tags: vec![],
            url: "/kb/a".into(),
            questions: vec![],
        }
    }

    #[test]
    fn extractive_picks_the_matching_sentence() {
        let p = passage(
            "Shipping is fast. You can return most items within 30 days of delivery. Items must be unused.",
        );
        let answer = extractive("return?", &["return".into()], &p);
        assert!(
            answer.starts_with("You can return most items within 30 days"),
            "{answer}"
        );
    }

    #[test]
    fn extractive_keeps_a_list_together() {
        let p =
            passage("Delivery by country:\n- Netherlands: 1 to 2 days.\n- Belgium: 2 to 3 days.");
        let answer = extractive("delivery?", &["deliveri".into()], &p);
        assert_eq!(
            answer,
            "Delivery by country: Netherlands: 1 to 2 days; Belgium: 2 to 3 days."
        );
    }

    #[test]
    fn extractive_prefers_the_fact_asked_for_then_retrieval_rank() {
        let mut special =
            passage("After you register the return, we collect furniture within 3 business days.");
        special.heading = "Furniture returns".into();
        let general = passage("You can return most items within 30 days of delivery.");
        let other = passage("Register your return in the portal.");
        let q = "How long do I have to return something?";
        assert_eq!(
            best_source(q, &[(1.0, &other), (1.0, &general), (1.0, &special)]),
            1
        );
        assert_eq!(best_source(q, &[(0.5, &general), (1.0, &other)]), 1);
        let answer = extractive(
            "How much is express?",
            &["express".into()],
            &passage("Express is fast. Express costs €9.95."),
        );
        assert_eq!(answer, "Express costs €9.95.");
    }

    #[test]
    fn generic_or_evasive_replies_are_not_acceptable() {
        let source = "You can return most items within 30 days of delivery.";
        let q = "How long do I have to return something?";
        let good = check(
            "You have 30 days from delivery to return most items.",
            &[source],
            q,
        );
        assert!(good.is_acceptable(), "{good:?}");
        let generic = check(
            "As a chatbot designed to assist customers, I cannot share personal opinions.",
            &[source],
            q,
        );
        assert!(
            generic.is_grounded() && !generic.is_acceptable(),
            "{generic:?}"
        );
        let evasive = check("You can return most items after delivery.", &[source], q);
        assert!(evasive.misses_asked_fact, "{evasive:?}");
        let flipped = check(
            "No, you cannot pay with Klarna.",
            &["With Klarna you pay 30 days after dispatch."],
            "Can I pay with Klarna?",
        );
        assert!(
            flipped.flips_polarity && !flipped.is_acceptable(),
            "{flipped:?}"
        );
    }
}
