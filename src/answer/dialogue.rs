//! What a conversation remembers between turns: the offer the bot made last
//! (so "yes", "no thanks" or "the first one" are answered against it), the
//! topic of the last answer (for follow-ups), and what the customer already
//! told us (order number, e-mail address) for later turns and the agent.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use crate::storage::{Choice, Offer};
use crate::storage::{ReplyKind, Role, StoredMessage};

/// How a message answers the pending offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferAnswer {
    Yes,
    No,
    /// The n-th option (from 0) of a choice.
    Pick(usize),
    /// Some items (by position, from 0) of the order a return is about.
    Items(Vec<usize>),
}

/// The last answer's subject, for follow-ups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Topic {
    pub article_id: String,
    /// The customer's words that led to it.
    pub question: String,
}

/// Facts the customer gave about themselves or their order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Slots {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
}

impl Slots {
    /// What proves who placed an order: the e-mail address, else the postcode.
    pub fn verifier(&self) -> Option<&str> {
        self.email.as_deref().or(self.postcode.as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.order_number.is_none() && self.email.is_none() && self.postcode.is_none()
    }
}

/// Per-conversation memory, held by the live session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DialogueState {
    /// The last bot reply's offer and the labels of its buttons.
    pub offer: Option<(Offer, Vec<String>)>,
    pub topic: Option<Topic>,
    pub slots: Slots,
    /// Order details that did not match in this conversation (also
    /// stored): a few, then only a person can help.
    pub failed_checks: u32,
}

impl DialogueState {
    /// The state a stored conversation ends in (after a restart, or when an
    /// idle session is loaded again).
    pub fn from_history(history: &[StoredMessage]) -> DialogueState {
        let mut state = DialogueState::default();
        let mut last_question: Option<&str> = None;
        for m in history {
            match (m.role, &m.reply) {
                (Role::Customer, _) => {
                    state.observe_customer(&m.text);
                    last_question = Some(&m.text);
                }
                (Role::Bot, Some(reply)) => {
                    let topic = reply.citations.first().map(|c| Topic {
                        article_id: c.article_id.clone(),
                        question: last_question.unwrap_or_default().to_string(),
                    });
                    state.after_reply(
                        reply.kind,
                        reply
                            .offer
                            .clone()
                            .map(|o| (o, reply.quick_replies.clone())),
                        topic,
                    );
                }
                // A person answered: their words settle any open offer.
                (Role::Agent, _) => state.offer = None,
                _ => {}
            }
        }
        state
    }

    /// Takes in the bot's reply: its offer replaces any earlier one; an
    /// answer from an article becomes the topic; a reply that could not
    /// help ends the topic, so the next question stands on its own.
    pub fn after_reply(
        &mut self,
        kind: ReplyKind,
        offer: Option<(Offer, Vec<String>)>,
        topic: Option<Topic>,
    ) {
        self.offer = offer;
        match kind {
            ReplyKind::NoAnswer | ReplyKind::Declined => self.topic = None,
            _ if topic.is_some() => self.topic = topic,
            _ => {}
        }
    }

    /// Remembers what a customer message says about them.
    pub fn observe_customer(&mut self, text: &str) {
        let found = extract_slots(text);
        if found.order_number.is_some() {
            self.slots.order_number = found.order_number;
        }
        if found.email.is_some() {
            self.slots.email = found.email;
        }
        if found.postcode.is_some() {
            self.slots.postcode = found.postcode;
        }
    }
}

static ORDER_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(LO-?\d{6,10})\b|(?:order|bestelling)\s*(?:number|no\.?|nr\.?)?\s*[:#]?\s*#?(\d{4,10})\b|#(\d{4,10})\b")
        .expect("valid regex")
});
/// A Dutch postcode ("3511 AB"), the demo shop's.
static POSTCODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([1-9]\d{3})\s?([A-Za-z]{2})\b").expect("valid regex"));
/// A postcode named as one: four or five digits (Belgium, Germany, the
/// Netherlands without its letters), with the Dutch letters if they follow.
static NAMED_POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:post\s?code|postal\s+code|zip\s?code|zip)\b\s*(?:is\s+|:\s*)?(\d{4,5})(?:\s?([a-z]{2})\b)?")
        .expect("valid regex")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").expect("valid regex")
});

/// The message without the order details it gives (order numbers, e-mail
/// addresses, postcodes with the word that names them), for understanding
/// what it asks: "check order LO-1, postcode is 2000" is about an order,
/// not a change of address. A message of details only is kept as it is.
pub fn without_details(text: &str) -> std::borrow::Cow<'_, str> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for c in ORDER_NUMBER.captures_iter(text) {
        if let Some(m) = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)) {
            spans.push((m.start(), m.end()));
        }
    }
    spans.extend(EMAIL.find_iter(text).map(|m| (m.start(), m.end())));
    spans.extend(NAMED_POSTCODE.find_iter(text).map(|m| (m.start(), m.end())));
    spans.extend(POSTCODE.find_iter(text).map(|m| (m.start(), m.end())));
    if spans.is_empty() {
        return text.into();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        if start >= at {
            out.push_str(&text[at..start]);
        }
        at = at.max(end);
    }
    out.push_str(&text[at..]);
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().any(char::is_alphabetic) {
        out.into()
    } else {
        text.into()
    }
}

/// Order numbers ("LO-12345678", "order #10482") and e-mail addresses in a message.
pub fn extract_slots(text: &str) -> Slots {
    let order_number = ORDER_NUMBER.captures(text).and_then(|c| {
        c.get(1)
            .map(|m| m.as_str().to_ascii_uppercase())
            .or_else(|| {
                c.get(2)
                    .or_else(|| c.get(3))
                    .map(|m| m.as_str().to_string())
            })
    });
    let email = EMAIL.find(text).map(|m| m.as_str().to_ascii_lowercase());
    // Two letters after four digits are a postcode only when they are not
    // a word ("1234 is my order").
    let letters_ok = |letters: &str| {
        letters.chars().all(|ch| ch.is_ascii_uppercase())
            || !crate::language::words()
                .dialogue
                .not_postcode_letters
                .contains(&letters.to_ascii_lowercase())
    };
    let named = NAMED_POSTCODE.captures(text).map(|c| {
        match c.get(2).map(|m| m.as_str()).filter(|l| letters_ok(l)) {
            Some(letters) => format!("{} {}", &c[1], letters.to_ascii_uppercase()),
            None => c[1].to_string(),
        }
    });
    let postcode = named.or_else(|| {
        POSTCODE.captures(text).and_then(|c| {
            let letters = c.get(2)?.as_str();
            letters_ok(letters).then(|| format!("{} {}", &c[1], letters.to_ascii_uppercase()))
        })
    });
    Slots {
        order_number,
        email,
        postcode,
    }
}

/// Words an answer naming items may have ("the mugs and the throw please").
const MAX_ITEM_ANSWER_WORDS: usize = 12;

// "one" alone means the first; in "the second one" it means nothing.

/// Whether `text` answers `offer` (whose buttons are `labels`), and how. A
/// message that says more than an answer ("yes, and how much is
/// shipping?") is a new question, not an answer.
pub fn answer_to_offer(text: &str, offer: &Offer, labels: &[String]) -> Option<OfferAnswer> {
    let norm = normalise(text);
    if norm.is_empty() {
        return None;
    }
    let words: Vec<&str> = norm.split(' ').collect();
    let button = labels.iter().position(|l| normalise(l) == norm);
    match offer {
        Offer::Person | Offer::CancelOrder { .. } | Offer::StartReturn { .. } => {
            if button == Some(1)
                || crate::language::words().dialogue.no.contains(&norm)
                || (words.len() <= 4 && words[0] == "no")
            {
                Some(OfferAnswer::No)
            } else if button == Some(0)
                || crate::language::words().dialogue.yes.contains(&norm)
                || (words.len() <= 5 && crate::language::words().dialogue.yes.contains(words[0]))
            {
                Some(OfferAnswer::Yes)
            } else {
                None
            }
        }
        Offer::ReturnItems { items, .. } => {
            let all = || Some(OfferAnswer::Items((0..items.len()).collect()));
            match button {
                Some(i) if i < items.len() => return Some(OfferAnswer::Items(vec![i])),
                Some(_) => return all(),
                None => {}
            }
            if crate::language::words().dialogue.all.contains(&norm) {
                return all();
            }
            if crate::language::words().dialogue.no.contains(&norm) {
                return Some(OfferAnswer::No);
            }
            if words.len() > MAX_ITEM_ANSWER_WORDS {
                return None;
            }
            let named: Vec<usize> = crate::orders::named_items(text, items)
                .into_iter()
                .filter_map(|n| items.iter().position(|i| std::ptr::eq(i, n)))
                .collect();
            (!named.is_empty()).then_some(OfferAnswer::Items(named))
        }
        Offer::Choice { options, .. } => {
            // A label sent by a quick-reply button, or words of one title only.
            if let Some(i) =
                button.or_else(|| options.iter().position(|o| normalise(&o.title) == norm))
            {
                return Some(OfferAnswer::Pick(i));
            }
            if words.len() > 6 {
                return None;
            }
            if norm == "one" {
                return Some(OfferAnswer::Pick(0));
            }
            let has = |list: &crate::language::Words| list.iter().any(|w| words.contains(&w));
            let dialogue = &crate::language::words().dialogue;
            match (has(&dialogue.first), has(&dialogue.second)) {
                (true, false) => return Some(OfferAnswer::Pick(0)),
                (false, true) => return Some(OfferAnswer::Pick(1)),
                _ => {}
            }
            let matching: Vec<usize> = options
                .iter()
                .enumerate()
                .filter(|(_, o)| {
                    let title = normalise(&o.title);
                    words.iter().any(|w| {
                        w.len() > 3
                            && title
                                .split(' ')
                                .any(|t| t.len() > 3 && (t.starts_with(w) || w.starts_with(t)))
                    })
                })
                .map(|(i, _)| i)
                .collect();
            match matching.as_slice() {
                [i] => Some(OfferAnswer::Pick(*i)),
                _ if crate::language::words().dialogue.no.contains(&norm) => Some(OfferAnswer::No),
                _ => None,
            }
        }
    }
}

fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace(['’', '`'], "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["Yes, connect me".into(), "No, thanks".into()]
    }

    fn choice() -> Offer {
        Offer::Choice {
            question: "how much does it cost?".into(),
            options: vec![
                Choice {
                    article_id: "shipping-costs".into(),
                    title: "Shipping costs".into(),
                },
                Choice {
                    article_id: "return-shipping-costs".into(),
                    title: "Return shipping costs".into(),
                },
            ],
        }
    }

    #[test]
    fn yes_and_no_answer_an_offer_of_a_person() {
        for yes in [
            "yes",
            "Yes please!",
            "ok please",
            "sure",
            "Yes, connect me",
            "yeah go ahead",
        ] {
            assert_eq!(
                answer_to_offer(yes, &Offer::Person, &labels()),
                Some(OfferAnswer::Yes),
                "{yes}"
            );
        }
        for no in ["no", "No, thanks", "nope", "no, I'm fine", "never mind"] {
            assert_eq!(
                answer_to_offer(no, &Offer::Person, &labels()),
                Some(OfferAnswer::No),
                "{no}"
            );
        }
        for other in ["how much is shipping to Belgium?", "what do you mean"] {
            assert_eq!(
                answer_to_offer(other, &Offer::Person, &labels()),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn a_choice_is_answered_by_position_label_or_a_word_of_one_title() {
        let offer = choice();
        let none: Vec<String> = Vec::new();
        assert_eq!(
            answer_to_offer("the first one", &offer, &none),
            Some(OfferAnswer::Pick(0))
        );
        assert_eq!(
            answer_to_offer("second", &offer, &none),
            Some(OfferAnswer::Pick(1))
        );
        assert_eq!(
            answer_to_offer("the second one", &offer, &none),
            Some(OfferAnswer::Pick(1))
        );
        assert_eq!(
            answer_to_offer("Return shipping costs", &offer, &none),
            Some(OfferAnswer::Pick(1))
        );
        assert_eq!(
            answer_to_offer("returns", &offer, &none),
            Some(OfferAnswer::Pick(1))
        );
        assert_eq!(
            answer_to_offer("shipping", &offer, &none),
            None,
            "both titles"
        );
        assert_eq!(
            answer_to_offer(
                "what are your opening hours on saturday please",
                &offer,
                &none
            ),
            None
        );
    }

    #[test]
    fn slots_find_order_numbers_and_emails() {
        let s = extract_slots("where is my order #10482? mail me at Ann@Example.com");
        assert_eq!(s.order_number.as_deref(), Some("10482"));
        assert_eq!(s.email.as_deref(), Some("ann@example.com"));
        assert_eq!(
            extract_slots("order lo-12345678 is late")
                .order_number
                .as_deref(),
            Some("LO-12345678")
        );
        assert_eq!(
            extract_slots("my order number: 55123")
                .order_number
                .as_deref(),
            Some("55123")
        );
        assert_eq!(extract_slots("I ordered 3 mugs").order_number, None);
        let mut state = DialogueState::default();
        state.observe_customer("it's order LO-00001234");
        state.observe_customer("any news?");
        assert_eq!(state.slots.order_number.as_deref(), Some("LO-00001234"));
    }

    #[test]
    fn details_are_left_out_for_understanding() {
        assert_eq!(
            without_details("hi could you check on order LO-10482003 for me, postcode is 2000"),
            "hi could you check on order for me,"
        );
        assert_eq!(
            without_details("return the mugs from order #10482, anna@example.com"),
            "return the mugs from order #,"
        );
        assert_eq!(
            without_details("how long do returns take?"),
            "how long do returns take?"
        );
        assert_eq!(without_details("LO-10482002"), "LO-10482002");
    }

    #[test]
    fn postcodes_are_found_dutch_or_named() {
        let postcode = |t: &str| extract_slots(t).postcode;
        assert_eq!(postcode("it's 3511 ab").as_deref(), Some("3511 AB"));
        assert_eq!(postcode("postcode is 2000").as_deref(), Some("2000"));
        assert_eq!(postcode("zip: 10115 and email").as_deref(), Some("10115"));
        assert_eq!(postcode("Postcode 1012JS").as_deref(), Some("1012 JS"));
        assert_eq!(postcode("postcode 2000 is mine").as_deref(), Some("2000"));
        assert_eq!(postcode("1234 is my order"), None);
        assert_eq!(postcode("I paid 2000 euros"), None);
    }
}
