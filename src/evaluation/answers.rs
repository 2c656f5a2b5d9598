//! `frontdesk eval answers`: conversations run through the chat's own
//! answering path (understand → decide → compose → store), without a
//! websocket, scored on what a customer would judge: the right article and
//! the fact asked for, honest declines, nothing unsupported on screen, no
//! injection leaking, and the time to the first visible word.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::chat::responder::{self, Question};
use crate::conversation::protocol::ServerFrame;
use crate::generation::grounding;
use crate::state::AppState;
use crate::storage::{Offer, ReplyKind};

/// One conversation of a set: JSON lines, one object each.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    #[serde(default)]
    pub id: Option<String>,
    pub turns: Vec<TurnSpec>,
    /// Expectations written at the top level are the last turn's.
    #[serde(flatten)]
    pub last: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TurnSpec {
    Text(String),
    Turn(Turn),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    #[serde(
        alias = "say",
        alias = "message",
        alias = "customer",
        alias = "user",
        alias = "q"
    )]
    pub text: String,
    #[serde(flatten)]
    pub expect: Expect,
}

/// What a turn's reply should do; all optional (an empty one is not scored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Expect {
    /// Acceptable article ids: the reply must cite one.
    #[serde(
        default,
        alias = "article_ids",
        alias = "acceptable_articles",
        alias = "article",
        alias = "doc_ids"
    )]
    pub articles: OneOrMany,
    /// Patterns (case-insensitive regular expressions) the reply must all match.
    #[serde(
        default,
        alias = "expected_facts",
        alias = "fact_patterns",
        alias = "fact",
        alias = "expect_facts"
    )]
    pub facts: OneOrMany,
    /// `false`: the knowledge base cannot answer; the bot should decline and offer a person.
    #[serde(default)]
    pub answerable: Option<bool>,
    /// `handoff`, `no_handoff`, `smalltalk`, `clarify`: the reply's kind;
    /// `order`: a reply from the shop's order system holding `facts`.
    #[serde(default)]
    pub expect: Option<String>,
    /// Patterns the reply must not match (an injection's goal).
    #[serde(default, alias = "must_not")]
    pub forbidden: OneOrMany,
}

impl Expect {
    fn is_empty(&self) -> bool {
        self.articles.0.is_empty()
            && self.facts.0.is_empty()
            && self.answerable.is_none()
            && self.expect.is_none()
            && self.forbidden.0.is_empty()
    }
}

/// A string or a list of strings.
#[derive(Debug, Clone, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
            Null(()),
        }
        Ok(OneOrMany(match Raw::deserialize(d)? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
            Raw::Null(()) => Vec::new(),
        }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    #[error("line {line}: {message}")]
    Invalid { line: usize, message: String },
    #[error("cannot start a conversation: {0}")]
    Store(#[from] crate::storage::StoreError),
}

/// Reads a JSON-lines set; blank lines and `#` comments are skipped.
pub fn read_set(path: &Path) -> Result<Vec<Conversation>, EvalError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| EvalError::Io(path.display().to_string(), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut c: Conversation = serde_json::from_str(line).map_err(|e| EvalError::Invalid {
            line: i + 1,
            message: e.to_string(),
        })?;
        if c.turns.is_empty() {
            return Err(EvalError::Invalid {
                line: i + 1,
                message: "a conversation needs at least one turn".into(),
            });
        }
        c.id.get_or_insert_with(|| format!("line-{}", i + 1));
        out.push(c);
    }
    Ok(out)
}

/// A scored share: how many of how many.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Share {
    pub hit: usize,
    pub of: usize,
    pub rate: f32,
}

impl Share {
    fn add(&mut self, hit: bool) {
        self.of += 1;
        self.hit += usize::from(hit);
        self.rate = self.hit as f32 / self.of as f32;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub conversation: String,
    pub turn: usize,
    pub text: String,
    pub problem: String,
    pub reply: String,
    pub kind: ReplyKind,
    pub cited: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub conversations: usize,
    pub turns: usize,
    /// Answerable questions answered with an acceptable article cited and every expected fact present.
    pub answered_right: Share,
    /// Of those, the article alone.
    pub right_article: Share,
    /// Unanswerable questions declined with a person offered.
    pub declined: Share,
    /// Dialogue expectations met (hand-off, small talk, a question back).
    pub dialogue: Share,
    /// Order turns (`"expect": "order"`) answered from the shop's order
    /// system with every expected fact.
    pub orders: Share,
    /// Replies with a number, amount, duration, name, e-mail or link their sources do not hold.
    pub unsupported_replies: usize,
    /// Streamed text with such a fact, or streamed text that is not the reply.
    pub unsupported_streams: usize,
    /// Replies matching a forbidden pattern.
    pub injection_leaks: usize,
    pub first_visible_ms_p50: f64,
    pub first_visible_ms_p95: f64,
    pub misses: Vec<Miss>,
}

/// Runs every conversation through `state`'s answering path.
pub async fn run(state: Arc<AppState>, set: &[Conversation]) -> Result<Report, EvalError> {
    let mut report = Report {
        conversations: set.len(),
        turns: 0,
        answered_right: Share::default(),
        right_article: Share::default(),
        declined: Share::default(),
        dialogue: Share::default(),
        orders: Share::default(),
        unsupported_replies: 0,
        unsupported_streams: 0,
        injection_leaks: 0,
        first_visible_ms_p50: 0.0,
        first_visible_ms_p95: 0.0,
        misses: Vec::new(),
    };
    let mut first_visible: Vec<Duration> = Vec::new();
    for conversation in set {
        let id = conversation.id.clone().unwrap_or_default();
        let opened = state.hub.open(&state.store, None).await?;
        let live = opened.session;
        let mut frames = live.subscribe();
        let mut said: Vec<String> = Vec::new();
        let last = conversation.turns.len() - 1;
        for (n, spec) in conversation.turns.iter().enumerate() {
            let (text, expect) = match spec {
                TurnSpec::Text(t) => (t.clone(), Expect::default()),
                TurnSpec::Turn(t) => (t.text.clone(), t.expect.clone()),
            };
            let expect = if n == last && expect.is_empty() {
                conversation.last.clone()
            } else {
                expect
            };
            report.turns += 1;
            said.push(text.clone());
            let client_id = format!("eval-{n}");
            let appended = state
                .store
                .append_customer(live.id, client_id.clone(), text.clone())
                .await?;
            let question = Question {
                id: client_id,
                seq: appended.seq,
                text: text.clone(),
                ip: None,
            };
            let Some((stored, stats)) =
                responder::answer(state.clone(), live.clone(), question).await
            else {
                continue;
            };
            let mut streamed = String::new();
            while let Ok(frame) = frames.try_recv() {
                if let ServerFrame::Token { text, .. } = frame {
                    streamed.push_str(&text);
                }
            }
            if let Some(d) = stats.first_visible {
                first_visible.push(d);
            }
            let reply = stored.reply.expect("a bot reply");
            let cited: Vec<String> = reply
                .citations
                .iter()
                .map(|c| c.article_id.clone())
                .collect();
            let mut miss = |problem: String| {
                report.misses.push(Miss {
                    conversation: id.clone(),
                    turn: n + 1,
                    text: text.clone(),
                    problem,
                    reply: reply.text.clone(),
                    kind: reply.kind,
                    cited: cited.clone(),
                })
            };
            // Support: the cited articles, the customer's own words, and the shop's fixed wording.
            let corpus = state.kb.snapshot();
            let mut sources: Vec<String> = cited
                .iter()
                .filter_map(|a| corpus.article(a))
                .map(|a| format!("{}\n{}", a.title, a.body))
                .collect();
            sources.push(fixed_wording(&state));
            // What the shop's order system said in this conversation: the
            // orders it described and the actions it recorded.
            for order in state.store.conversation_orders(live.id).await? {
                sources.push(order_text(&order));
            }
            sources.extend(
                state
                    .store
                    .transcript(live.id)
                    .await?
                    .into_iter()
                    .filter(|m| m.event.is_some())
                    .map(|m| m.text),
            );
            if let Some(Offer::Choice { options, .. }) = &reply.offer {
                sources.extend(options.iter().map(|o| o.title.clone()));
            }
            let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
            let asked = said.join("\n");
            let unsupported = grounding::check(&reply.text, &sources, &asked).unsupported;
            if !unsupported.is_empty() {
                report.unsupported_replies += 1;
                miss(format!("unsupported in reply: {}", list(&unsupported)));
            }
            let stream_unsupported = grounding::check(&streamed, &sources, &asked).unsupported;
            if !stream_unsupported.is_empty() || (!streamed.is_empty() && streamed != reply.text) {
                report.unsupported_streams += 1;
                miss(format!(
                    "streamed text differs or is unsupported: {streamed:?}"
                ));
            }
            if !expect.forbidden.0.is_empty() {
                let leaked: Vec<&String> = expect
                    .forbidden
                    .0
                    .iter()
                    .filter(|p| pattern(p).is_match(&reply.text))
                    .collect();
                if !leaked.is_empty() {
                    report.injection_leaks += 1;
                    miss(format!("injection leak: {leaked:?}"));
                }
            }
            if !expect.articles.0.is_empty() {
                let right_article = cited.iter().any(|c| expect.articles.0.contains(c));
                let missing: Vec<&String> = expect
                    .facts
                    .0
                    .iter()
                    .filter(|f| !pattern(f).is_match(&reply.text))
                    .collect();
                report.right_article.add(right_article);
                report
                    .answered_right
                    .add(right_article && missing.is_empty());
                if !right_article {
                    miss(format!(
                        "wrong or no article (wanted {:?})",
                        expect.articles.0
                    ));
                } else if !missing.is_empty() {
                    miss(format!("fact missing: {missing:?}"));
                }
            } else if expect.answerable == Some(false) {
                let offers_person = matches!(reply.offer, Some(Offer::Person))
                    || matches!(reply.kind, ReplyKind::Handoff | ReplyKind::Declined);
                let declined = reply.citations.is_empty() && offers_person;
                report.declined.add(declined);
                if !declined {
                    miss("answered a question the knowledge base cannot answer".into());
                }
            }
            if expect.expect.as_deref() == Some("order") {
                let missing: Vec<&String> = expect
                    .facts
                    .0
                    .iter()
                    .filter(|f| !pattern(f).is_match(&reply.text))
                    .collect();
                let from_shop = reply.kind == ReplyKind::OrderStatus;
                report.orders.add(from_shop && missing.is_empty());
                if !from_shop {
                    miss("expected a reply from the order system".into());
                } else if !missing.is_empty() {
                    miss(format!("fact missing: {missing:?}"));
                }
            } else if let Some(kind) = &expect.expect {
                let met = match kind.as_str() {
                    "handoff" => reply.kind == ReplyKind::Handoff,
                    "no_handoff" => reply.kind != ReplyKind::Handoff,
                    "smalltalk" => reply.kind == ReplyKind::Smalltalk,
                    "clarify" => reply.kind == ReplyKind::Clarify,
                    _ => false,
                };
                report.dialogue.add(met);
                if !met {
                    miss(format!("expected {kind}"));
                }
            }
        }
    }
    first_visible.sort();
    let ms = |q: f64| {
        if first_visible.is_empty() {
            return 0.0;
        }
        let i = ((first_visible.len() - 1) as f64 * q).round() as usize;
        first_visible[i].as_secs_f64() * 1000.0
    };
    report.first_visible_ms_p50 = ms(0.5);
    report.first_visible_ms_p95 = ms(0.95);
    Ok(report)
}

/// An order's fields as words, so the fact checker reads them as it reads
/// an article (compact JSON runs a link into the fields after it).
fn order_text(o: &crate::orders::Order) -> String {
    let mut out = vec![o.number.clone()];
    out.extend(o.carrier.clone());
    out.extend(o.tracking_url.clone());
    if let Some(w) = &o.delivery_window {
        out.extend([w.from.clone(), w.to.clone()]);
    }
    out.extend(o.items.iter().map(|i| format!("{} {}", i.quantity, i.name)));
    out.join(" \n")
}

fn pattern(p: &str) -> Regex {
    RegexBuilder::new(p)
        .case_insensitive(true)
        .build()
        .unwrap_or_else(|_| Regex::new(&regex::escape(p)).expect("escaped text is a valid regex"))
}

fn list(facts: &[grounding::Fact]) -> String {
    let shown: HashSet<String> = facts.iter().map(|f| f.to_string()).collect();
    let mut shown: Vec<String> = shown.into_iter().collect();
    shown.sort();
    shown.join(", ")
}

/// The shop's own words, which may name things no article does.
fn fixed_wording(state: &AppState) -> String {
    let t = &state.texts;
    let mut all = vec![
        t.greeting.clone(),
        t.handoff.clone(),
        t.no_answer.clone(),
        t.decline.clone(),
        t.busy.clone(),
        t.anything_else.clone(),
        t.sorry.clone(),
        t.offer_person.clone(),
        t.ask_order_number.clone(),
    ];
    all.extend(
        state
            .understanding
            .catalogue()
            .replies()
            .map(str::to_string),
    );
    all.join("\n")
}

/// The report as text, for people.
pub fn to_text(r: &Report) -> String {
    let share = |s: &Share| format!("{:>5.1}% ({}/{})", s.rate * 100.0, s.hit, s.of);
    let mut out = format!(
        "conversations {}, turns {}\n\
         answered right (article + fact)  {}\n\
         right article                    {}\n\
         declined when unanswerable       {}\n\
         dialogue expectations            {}\n\
         order replies right              {}\n\
         replies with unsupported facts   {}\n\
         streams with unsupported text    {}\n\
         injection leaks                  {}\n\
         first visible word p50 / p95     {:.0} ms / {:.0} ms\n",
        r.conversations,
        r.turns,
        share(&r.answered_right),
        share(&r.right_article),
        share(&r.declined),
        share(&r.dialogue),
        share(&r.orders),
        r.unsupported_replies,
        r.unsupported_streams,
        r.injection_leaks,
        r.first_visible_ms_p50,
        r.first_visible_ms_p95,
    );
    if !r.misses.is_empty() {
        out.push_str("\nmisses:\n");
        for m in &r.misses {
            out.push_str(&format!(
                "- [{} #{}] {:?}: {} -> {:?} {:?}: {:?}\n",
                m.conversation, m.turn, m.text, m.problem, m.kind, m.cited, m.reply
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_read_in_several_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"id":"a","turns":["Do you ship to Norway?"],"articles":["shipping-countries"],"facts":"Norway"}"#, "\n",
                "# a comment\n\n",
                r#"{"turns":[{"say":"gift wrap?","answerable":false},{"text":"yes","expect":"handoff"}]}"#, "\n",
            ),
        )
        .unwrap();
        let set = read_set(&path).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].last.articles.0, vec!["shipping-countries"]);
        assert_eq!(set[0].last.facts.0, vec!["Norway"]);
        assert_eq!(set[1].id.as_deref(), Some("line-4"));
        let TurnSpec::Turn(first) = &set[1].turns[0] else {
            panic!("a turn object")
        };
        assert_eq!(first.expect.answerable, Some(false));
        std::fs::write(&path, r#"{"turns":[]}"#).unwrap();
        assert!(matches!(
            read_set(&path),
            Err(EvalError::Invalid { line: 1, .. })
        ));
    }

    #[test]
    fn the_shipped_development_set_reads() {
        let set = read_set(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/evalsets/answers-dev.jsonl"
        )))
        .unwrap();
        assert!(set.len() >= 200, "{}", set.len());
    }
}
