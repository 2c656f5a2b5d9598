//! Reading a customer message as questions: how many it asks, whether it
//! leans on the previous one, and which source sentences answer each.

use serde::Serialize;

use std::collections::HashSet;

use crate::generation::grounding;
use crate::knowledge::retriever::{Corpus, Retrieved};
use crate::knowledge::{Analyzer, Passage, RetrievalQuery};
use crate::understanding::encoder::Encoder;
use crate::understanding::vectors::cosine;

/// A source passage and the sentences of it that answer.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    pub passage: Passage,
    pub sentences: Vec<String>,
}

pub use crate::generation::grounding::asks_for_a_kind_of_fact;

/// Number of distinct content terms (stop words dropped, stemmed).
pub fn content_terms(text: &str) -> usize {
    Analyzer::default().distinct_terms(text).len()
}

/// Whether the question asks yes or no (about an option, a service).
pub fn is_yes_no(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .is_some_and(|w| {
            crate::language::words()
                .questions
                .yes_no_starts
                .contains(&w.to_lowercase())
        })
}

/// Whether a message that mentions people asks about them rather than for
/// one of them.
pub fn asks_about_people(text: &str) -> bool {
    let lower = text.trim().to_lowercase();
    let first = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .find(|w| !w.is_empty())
        .unwrap_or("");
    crate::language::words()
        .questions
        .about_words
        .contains(first)
        && !crate::language::words()
            .questions
            .asking_for_one
            .iter()
            .any(|w| lower.contains(w))
}

/// Whether a message continues the conversation's topic ("and to Belgium?",
/// "is it free?") rather than asking something new.
pub fn is_follow_up(text: &str) -> bool {
    let lower = text.trim().to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return false;
    }
    let terms = content_terms(text);
    let continues = crate::language::words()
        .questions
        .continuations
        .iter()
        .any(|c| lower.starts_with(&format!("{c} ")));
    let points_back = words
        .iter()
        .any(|w| crate::language::words().questions.anaphora.contains(w));
    continues && terms <= 4 || points_back && terms <= 1 || terms <= 1 && words.len() <= 6
}

/// The sentences of a long message, each searched on its own too: the
/// question is often one of them. Empty for a message of one sentence.
pub fn clauses(text: &str) -> Vec<String> {
    let parts: Vec<String> = text
        .split(['.', '!', '?', ';', ',', '\n'])
        .flat_map(|p| p.split(" and ").flat_map(|p| p.split(" but ")))
        .map(str::trim)
        .filter(|p| content_terms(p) >= 2)
        .map(str::to_string)
        .collect();
    if parts.len() < 2 { Vec::new() } else { parts }
}

/// The questions one message asks: "How much is express and do you deliver
/// on Saturdays?" asks two. A later question with few words of its own
/// borrows the first's ("Do you ship to Norway and how long does it take?").
pub fn split(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    for chunk in text.split(['?', '\n']) {
        let mut rest = chunk.trim();
        loop {
            let lower = rest.to_lowercase();
            let cut = [" and ", ", and ", "; "].iter().find_map(|sep| {
                lower.match_indices(sep).find_map(|(at, _)| {
                    let after = lower[at + sep.len()..].trim_start();
                    let first = after.split_whitespace().next().unwrap_or("");
                    crate::language::words()
                        .questions
                        .question_words
                        .contains(first)
                        .then_some((at, at + sep.len()))
                })
            });
            match cut {
                Some((end, next)) => {
                    pieces.push(rest[..end].trim().to_string());
                    rest = rest[next..].trim();
                }
                None => {
                    pieces.push(rest.to_string());
                    break;
                }
            }
        }
    }
    // A piece of filler alone ("how long does it take") still asks something.
    pieces.retain(|p| p.chars().any(char::is_alphanumeric));
    if pieces.len() < 2 || pieces.len() > 3 {
        return vec![text.trim().to_string()];
    }
    let first = pieces[0].clone();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if i > 0 && content_terms(&p) <= 1 {
                format!("{first} {p}")
            } else {
                p
            }
        })
        .collect()
}

/// The article that answers `question` among `answerable` passages, and
/// its sentences that do: code, not the model, picks both. Retrieval picks
/// the passage; the sentences may come from any part of its article (an
/// article is often found by its intro or example questions while the fact
/// sits in a section): the best one by shared words, the kind of fact asked
/// for and closeness in meaning, and up to two more nearly as good.
///
/// `within` names the article to answer from when one of its passages is
/// answerable (a follow-up's topic, the article the customer chose);
/// `meaning` is the question's embedding, when the caller has it.
/// `upset`: the customer complains; from an article about something gone
/// wrong they hear what to do and what the shop does about it (the lead
/// sentence of each section), not only the sentence closest to their words.
pub fn extract(
    query: &RetrievalQuery,
    answerable: &[Retrieved],
    within: Option<&str>,
    meaning: Option<&[f32]>,
    upset: bool,
    corpus: &Corpus,
    encoder: &Encoder,
) -> Part {
    let question = query.text.as_str();
    let terms = query.subject_terms(&mut Analyzer::default());
    let in_article: Vec<&Retrieved> = answerable
        .iter()
        .filter(|h| within.is_some_and(|id| h.passage.article_id == id))
        .collect();
    let pool = if in_article.is_empty() {
        answerable.iter().collect()
    } else {
        in_article
    };
    let candidates: Vec<(f32, &Passage)> = pool.iter().map(|h| (h.relevance, &h.passage)).collect();
    let chosen = candidates[grounding::best_source(question, &candidates)].1;
    let passages = corpus
        .article(&chosen.article_id)
        .map(|a| a.passages())
        .unwrap_or_else(|| vec![chosen.clone()]);
    let embedded;
    let meaning = match meaning {
        Some(m) => Some(m),
        None => {
            embedded = encoder.embed(&[question]).ok().map(|mut v| v.remove(0));
            embedded.as_deref()
        }
    };
    let every_section = upset && chosen.tags.iter().any(|t| t == COMPLAINT_TAG);
    Part {
        sentences: best_sentences(
            question,
            &terms,
            chosen,
            &passages,
            meaning,
            every_section,
            encoder,
        ),
        passage: chosen.clone(),
    }
}

/// A sentence of an article, where it stands, and how well it answers.
struct Candidate {
    passage: usize,
    text: String,
    own: HashSet<String>,
    score: f32,
}

/// Up to three sentences of the article that answer `question`, in the
/// article's order; a sentence that introduces a list brings the list.
/// With `every_section`, each other section's first sentence joins them.
fn best_sentences(
    question: &str,
    terms: &[String],
    chosen: &Passage,
    passages: &[Passage],
    meaning: Option<&[f32]>,
    every_section: bool,
    encoder: &Encoder,
) -> Vec<String> {
    let mut analyzer = Analyzer::default();
    let mut all: Vec<Candidate> = Vec::new();
    // The title's words speak for every section alike (the intro has no
    // heading of its own), so only a section's own heading words count.
    let title: HashSet<String> = analyzer.terms(&chosen.article_title).into_iter().collect();
    for (i, p) in passages.iter().enumerate() {
        let heading: HashSet<String> = analyzer
            .terms(&p.heading)
            .into_iter()
            .filter(|t| !title.contains(t))
            .collect();
        let heading_bonus = terms.iter().filter(|t| heading.contains(*t)).count() as f32;
        // The passage retrieval chose is the likeliest place for the answer.
        let chosen_bonus = if p.id == chosen.id { 1.0 } else { 0.0 };
        for text in grounding::sentences(&p.text) {
            let own: HashSet<String> = analyzer.terms(&text).into_iter().collect();
            let asked = f32::from(u8::from(grounding::holds_asked_fact(question, &text)));
            let digits = f32::from(u8::from(has_figure(&text)));
            all.push(Candidate {
                passage: i,
                score: heading_bonus + chosen_bonus + 2.0 * asked + 0.5 * digits,
                text,
                own,
            });
        }
    }
    if all.is_empty() {
        return Vec::new();
    }
    // A question word every sentence of the article shares names its topic
    // ("delete", "account"); one few sentences hold says what is asked
    // about it ("keep"), so it counts more.
    let n = all.len() as f32;
    for t in terms.iter().collect::<HashSet<_>>() {
        let holding: Vec<usize> = (0..all.len()).filter(|&i| all[i].own.contains(t)).collect();
        let weight = 2.0 * (1.0 - holding.len() as f32 / n).max(RARE_FLOOR)
            / (1.0 - 1.0 / n).max(RARE_FLOOR);
        for i in holding {
            all[i].score += weight.min(2.0);
        }
    }
    if let Some(m) = meaning {
        let texts: Vec<&str> = all.iter().map(|c| c.text.as_str()).collect();
        if let Ok(vectors) = encoder.embed(&texts) {
            for (c, v) in all.iter_mut().zip(vectors) {
                c.score += 4.0 * cosine(m, &v).max(0.0);
            }
        }
    }
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[b].score.total_cmp(&all[a].score).then(a.cmp(&b)));
    let best = order[0];
    if all[best].text.ends_with(':') {
        // A sentence that introduces a list is useless without the list.
        let passage = &passages[all[best].passage];
        return vec![grounding::extractive(question, terms, passage)];
    }
    // More sentences, each nearly as good as the best, while the answer stays short.
    let mut picked = vec![best];
    let mut bytes = all[best].text.len();
    for &next in order.iter().skip(1).take(MAX_SENTENCES - 1) {
        let candidate = &all[next];
        if candidate.score < EXTRA_SENTENCE * all[best].score
            || candidate.text.ends_with(':')
            || bytes + candidate.text.len() > MAX_ANSWER_BYTES
        {
            break;
        }
        bytes += candidate.text.len();
        picked.push(next);
    }
    // A rule stated without its figure ("we may refund only part of the
    // price") is followed by the figure ("at most 50%"): the customer needs
    // both, so the next sentence of the same section comes along.
    let limit = if every_section {
        MAX_COMPLAINT_BYTES
    } else {
        MAX_ANSWER_BYTES
    };
    for i in picked.clone() {
        let next = i + 1;
        if next < all.len()
            && all[next].passage == all[i].passage
            && !picked.contains(&next)
            && !has_figure(&all[i].text)
            && has_figure(&all[next].text)
            && !all[next].text.ends_with(':')
            && bytes + all[next].text.len() <= limit
        {
            bytes += all[next].text.len();
            picked.push(next);
        }
    }
    if every_section {
        // A section's first sentence states its point ("We send a free
        // replacement..."); the rest qualifies it.
        for p in 0..passages.len() {
            let Some(top) = all.iter().position(|c| c.passage == p) else {
                continue;
            };
            if picked.iter().any(|&i| all[i].passage == p)
                || all[top].text.ends_with(':')
                || bytes + all[top].text.len() > MAX_COMPLAINT_BYTES
            {
                continue;
            }
            bytes += all[top].text.len();
            picked.push(top);
        }
    }
    // Candidates are in article order already.
    picked.sort_unstable();
    picked
        .into_iter()
        .map(|i| std::mem::take(&mut all[i].text))
        .collect()
}

/// A sentence that states a number, an amount or a duration.
fn has_figure(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
}

/// The least weight of a question word all sentences hold, as a share of
/// one only one sentence holds.
const RARE_FLOOR: f32 = 0.5;
/// Most sentences in an answer from one article.
const MAX_SENTENCES: usize = 3;
/// Another sentence is added when it scores at least this share of the best.
const EXTRA_SENTENCE: f32 = 0.45;
/// Longest answer, in bytes.
const MAX_ANSWER_BYTES: usize = 480;
/// Longest answer to a complaint: the steps and the remedy.
const MAX_COMPLAINT_BYTES: usize = 640;
/// The tag of articles about something gone wrong (damaged, missing, faulty).
pub const COMPLAINT_TAG: &str = "complaint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_questions_start_with_an_auxiliary() {
        for q in [
            "Can I pay with bitcoin?",
            "do you ship to Norway",
            "Is there a fee?",
        ] {
            assert!(is_yes_no(q), "{q}");
        }
        for q in [
            "How do I clean a copper pan?",
            "which cards do you take",
            "my order can wait",
        ] {
            assert!(!is_yes_no(q), "{q}");
        }
    }

    #[test]
    fn two_questions_in_one_message_are_split() {
        assert_eq!(
            split("How much is express delivery and do you deliver on saturdays?"),
            vec![
                "How much is express delivery",
                "do you deliver on saturdays"
            ]
        );
        assert_eq!(
            split("Do you ship to Norway and how long does it take?"),
            vec![
                "Do you ship to Norway",
                "Do you ship to Norway how long does it take"
            ]
        );
        assert_eq!(
            split("What is the return window? Who pays return shipping from Germany?"),
            vec![
                "What is the return window",
                "Who pays return shipping from Germany"
            ]
        );
        // One question with "and" in it stays whole.
        assert_eq!(
            split("Can I return towels and sheets?"),
            vec!["Can I return towels and sheets?"]
        );
    }

    #[test]
    fn questions_about_the_team_are_not_requests_for_a_person() {
        for about in [
            "do real people work there or is it only bots",
            "how quickly does a human reply in the chat",
            "are you a bot?",
        ] {
            assert!(asks_about_people(about), "{about}");
        }
        for request in [
            "can I speak to a human",
            "is there a real person I can chat with",
            "are you a robot? I want a human",
            "human please",
            "how do I talk to someone",
        ] {
            assert!(!asks_about_people(request), "{request}");
        }
    }

    #[test]
    fn follow_ups_lean_on_the_topic_and_new_questions_do_not() {
        for f in [
            "and to belgium?",
            "is it free?",
            "and if it rusts?",
            "how long?",
        ] {
            assert!(is_follow_up(f), "{f}");
        }
        for n in [
            "can i pay with paypal",
            "Do you ship to Norway and how long does it take?",
            "how long do I have to return something and get a refund for my damaged lamp?",
            "what are your opening hours on saturday",
        ] {
            assert!(!is_follow_up(n), "{n}");
        }
    }
}
