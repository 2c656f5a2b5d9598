//! The pure step of answering: from the message, what it was understood
//! as, and what the conversation remembers, decide what to reply and with
//! which evidence. No I/O beyond the (CPU-bound) search of one immutable
//! knowledge-base snapshot, so chat, the admin hit test and `kb search`
//! reach the same decision for the same conversation.

use serde::Serialize;

use super::dialogue::{Choice, DialogueState, Offer, OfferAnswer, Topic, answer_to_offer};
use super::questions::{self, Part};
use super::texts::Texts;
use crate::generation::grounding;
use crate::knowledge::retriever::{Answerability, Corpus, Retrieved, RetrieverKind};
use crate::knowledge::{Citation, RetrievalQuery};
use crate::orders::{LookupRequest, OrderItem, ReturnLine, ReturnRequest};
use crate::storage::ReplyKind;
use crate::understanding::Understood;
use crate::understanding::catalogue::{Catalogue, IntentAction, OUT_OF_SCOPE};
use crate::understanding::demand::DemandCatalogue;
use crate::understanding::encoder::Encoder;
use crate::understanding::sentiment::STRONGLY_NEGATIVE;
use crate::understanding::signals::Signal;

/// What the answer pipeline needs besides the message.
pub struct Context<'a> {
    pub corpus: &'a Corpus,
    pub encoder: &'a Encoder,
    pub catalogue: &'a Catalogue,
    /// The shop's products: a question means the same whichever it names.
    pub products: &'a DemandCatalogue,
    pub rule: Answerability,
    pub texts: &'a Texts,
    /// A shop order system is connected: orders can be looked up.
    pub orders: bool,
}

/// One customer message to answer.
pub struct Input<'a> {
    pub text: &'a str,
    /// `None` when understanding failed: the message is still searched.
    pub understood: Option<&'a Understood>,
    pub dialogue: &'a DialogueState,
}

/// The reply decided on: fixed words around the source sentences, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub kind: ReplyKind,
    /// Said first: an acknowledgement of how the customer feels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    /// Source passages with the sentences of each that answer.
    pub parts: Vec<Part>,
    /// Said last: a fixed reply, a question, an offer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    /// The offer's buttons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
    /// The subject for later follow-ups, when this answers from an article.
    #[serde(skip)]
    pub topic: Option<Topic>,
    /// Why, in words, for staff and logs.
    pub why: String,
    /// What to ask the shop's order system before replying; the reply then
    /// says what the shop says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderRequest>,
    /// The customer says they are done after an answer: once this reply is
    /// stored the conversation closes as solved.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub solved: bool,
}

/// A request to the shop's order system, made by the async part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OrderRequest {
    Lookup(LookupRequest),
    /// Only after the customer confirmed it.
    Cancel(LookupRequest),
    /// Looks the order up to ask which of its items go back (or to confirm
    /// those `wanted` names).
    PrepareReturn {
        lookup: LookupRequest,
        wanted: String,
    },
    /// Only after the customer confirmed it.
    Return(ReturnRequest),
}

impl OrderRequest {
    pub fn order_number(&self) -> &str {
        match self {
            OrderRequest::Lookup(r) | OrderRequest::Cancel(r) => &r.order_number,
            OrderRequest::PrepareReturn { lookup, .. } => &lookup.order_number,
            OrderRequest::Return(r) => &r.order_number,
        }
    }
}

impl Plan {
    fn fixed(kind: ReplyKind, text: &str, why: impl Into<String>) -> Plan {
        Plan {
            kind,
            lead: None,
            parts: Vec::new(),
            tail: Some(text.to_string()),
            offer: None,
            quick_replies: Vec::new(),
            topic: None,
            why: why.into(),
            order: None,
            solved: false,
        }
    }

    /// An answer from the knowledge base, before its frame.
    fn answer(parts: Vec<Part>, topic: Topic, why: impl Into<String>) -> Plan {
        Plan {
            kind: ReplyKind::Extractive,
            lead: None,
            parts,
            tail: None,
            offer: None,
            quick_replies: Vec::new(),
            topic: Some(topic),
            why: why.into(),
            order: None,
            solved: false,
        }
    }

    /// A reply that is what the shop's order system answers `request`,
    /// written once it has (`answer::order_reply`).
    fn ask_shop(request: OrderRequest, why: &str) -> Plan {
        let mut plan = Plan::fixed(ReplyKind::OrderStatus, "", why);
        plan.tail = None;
        plan.order = Some(request);
        plan
    }

    /// The reply when no more order checks are allowed: the shop is not
    /// asked, a person is offered.
    pub fn order_checks_spent(texts: &Texts, why: &str) -> Plan {
        Plan::fixed(ReplyKind::OrderStatus, &texts.orders.too_many_attempts, why)
            .with_offer(Offer::Person, texts)
    }

    /// Asks the customer to confirm a return of `items` (never registered
    /// without their yes).
    pub(super) fn confirm_return(
        &mut self,
        order_number: &str,
        items: Vec<OrderItem>,
        texts: &Texts,
    ) {
        let t = &texts.orders.returns;
        self.tail = Some(
            t.confirm
                .replace("{items}", &t.list_items(&items))
                .replace("{order}", order_number),
        );
        self.set_offer(
            Offer::StartReturn {
                order_number: order_number.to_string(),
                items,
            },
            texts,
        );
    }

    /// Ends the reply by offering a person, with the Yes / No buttons.
    fn offer_a_person(&mut self, texts: &Texts) {
        self.tail = Some(texts.offer_person.clone());
        self.set_offer(Offer::Person, texts);
    }

    fn with_offer(mut self, offer: Offer, texts: &Texts) -> Plan {
        self.set_offer(offer, texts);
        self
    }

    pub(super) fn set_offer(&mut self, offer: Offer, texts: &Texts) {
        self.quick_replies = match &offer {
            Offer::Person => vec![texts.yes_person.clone(), texts.no_thanks.clone()],
            Offer::Choice { options, .. } => options.iter().map(|o| o.title.clone()).collect(),
            Offer::CancelOrder { .. } => {
                vec![
                    texts.orders.yes_cancel.clone(),
                    texts.orders.no_keep.clone(),
                ]
            }
            Offer::ReturnItems { items, .. } => items
                .iter()
                .map(|i| i.name.clone())
                .chain(std::iter::once(texts.orders.returns.all_items.clone()))
                .collect(),
            Offer::StartReturn { .. } => {
                let t = &texts.orders.returns;
                vec![t.yes.clone(), t.no.clone()]
            }
        };
        self.offer = Some(offer);
    }

    /// The whole reply as the customer reads it.
    pub fn text(&self) -> String {
        let mut pieces: Vec<&str> = Vec::new();
        pieces.extend(self.lead.as_deref());
        for part in &self.parts {
            pieces.extend(part.sentences.iter().map(String::as_str));
        }
        pieces.extend(self.tail.as_deref());
        pieces.join(" ")
    }

    /// Every article the reply takes a sentence from, once.
    pub fn citations(&self) -> Vec<Citation> {
        let mut out: Vec<Citation> = Vec::new();
        for part in &self.parts {
            let c = Citation::of(&part.passage);
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    pub fn answers_from_kb(&self) -> bool {
        !self.parts.is_empty()
    }
}

impl DialogueState {
    /// Takes in the reply this plan made.
    pub fn after_plan(&mut self, plan: &Plan) {
        self.after_reply(
            plan.kind,
            plan.offer.clone().map(|o| (o, plan.quick_replies.clone())),
            plan.topic.clone(),
        );
    }
}

/// What was searched and found, for the hit test and logs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Evidence {
    /// The text searched (with the earlier question for a follow-up).
    pub searched: Vec<String>,
    pub passages: Vec<Retrieved>,
    /// The best similarity of any passage, for gap tracking.
    pub best_similarity: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub plan: Plan,
    pub evidence: Evidence,
}

/// Least confidence for an intent to steer retrieval towards its articles.
const CONFIDENT_INTENT: f32 = 0.6;
/// A passage of an article tagged with a confident intent may answer on
/// this similarity alone: the classifier already says what it is about.
const INTENT_MIN_SIMILARITY: f32 = 0.4;
/// A passage of a confident intent's article that holds the question's
/// words answers on this similarity: the encoder does not know shop words
/// ("is iDEAL accepted" is 0.17 from the payment methods).
const INTENT_WORDS_MIN_SIMILARITY: f32 = 0.15;
/// A fixed reply answers a longer message only when the classifier is this
/// sure; "hi, how long do returns take?" is a question.
const SURE_REPLY: f32 = 0.8;
/// A follow-up that shares a word with its topic's article answers from it
/// on this similarity.
const FOLLOW_UP_MIN_SIMILARITY: f32 = 0.3;
/// A classifier this sure puts its articles first among those that answer.
const SURE_INTENT: f32 = 0.85;
/// Two articles closer than this (similarity) fit a vague question equally.
const TIE: f32 = 0.02;

/// Decides the reply to one message. CPU-bound: call off the executor.
pub fn decide(input: &Input<'_>, ctx: &Context<'_>) -> Decision {
    let t = ctx.texts;
    if let Some((offer, labels)) = &input.dialogue.offer
        && let Some(answer) = answer_to_offer(input.text, offer, labels)
    {
        match (offer, answer) {
            (Offer::Person, OfferAnswer::Yes) => {
                return fixed(Plan::fixed(
                    ReplyKind::Handoff,
                    &t.handoff,
                    "accepted the offer of a person",
                ));
            }
            (_, OfferAnswer::No) => {
                return fixed(Plan::fixed(
                    ReplyKind::Smalltalk,
                    &t.anything_else,
                    "declined the offer",
                ));
            }
            (Offer::CancelOrder { order_number }, OfferAnswer::Yes) => {
                if let Some(verifier) = input.dialogue.slots.verifier() {
                    let request = OrderRequest::Cancel(LookupRequest {
                        order_number: order_number.clone(),
                        verifier: verifier.to_string(),
                    });
                    return fixed(Plan::ask_shop(request, "confirmed the cancellation"));
                }
            }
            (
                Offer::StartReturn {
                    order_number,
                    items,
                },
                OfferAnswer::Yes,
            ) => {
                if let Some(verifier) = input.dialogue.slots.verifier() {
                    let request = OrderRequest::Return(ReturnRequest {
                        order_number: order_number.clone(),
                        verifier: verifier.to_string(),
                        items: items
                            .iter()
                            .map(|i| ReturnLine {
                                sku: i.sku.clone(),
                                quantity: i.quantity,
                            })
                            .collect(),
                    });
                    return fixed(Plan::ask_shop(request, "confirmed the return"));
                }
            }
            (
                Offer::ReturnItems {
                    order_number,
                    items,
                },
                OfferAnswer::Items(picked),
            ) => {
                let chosen = picked
                    .iter()
                    .filter_map(|&i| items.get(i).cloned())
                    .collect();
                let mut plan = Plan::fixed(ReplyKind::OrderStatus, "", "chose the items to return");
                plan.confirm_return(order_number, chosen, t);
                return fixed(plan);
            }
            (Offer::Choice { question, options }, OfferAnswer::Pick(i)) => {
                if let Some(choice) = options.get(i) {
                    return answer_from_article(question, choice, input, ctx);
                }
            }
            _ => {}
        }
    }
    if t.instructs(input.text) {
        // Articles and the shop's words decide what the bot says; a customer
        // message never does.
        return fixed(
            Plan::fixed(ReplyKind::Declined, &t.decline, "tries to instruct the bot")
                .with_offer(Offer::Person, t),
        );
    }
    if let Some(plan) = order_lookup(input, ctx) {
        return fixed(plan);
    }
    if let Some(u) = input.understood.filter(|u| u.asks_for_human(ctx.catalogue)) {
        let handoff = fixed(Plan::fixed(
            ReplyKind::Handoff,
            &t.handoff,
            "asked for a person",
        ));
        // "Do real people answer here?" asks about the team rather than for
        // one of them: the article answers and a person is one tap away.
        if wants_a_person(u, input.text, ctx.catalogue) {
            return handoff;
        }
        let mut decision = search_and_answer(input, ctx, intent_tags(u, ctx), false);
        if !decision.plan.answers_from_kb() {
            return handoff;
        }
        decision.plan.offer_a_person(t);
        return decision;
    }
    let steer = match input.understood {
        Some(u) => steer(u, input.text, ctx),
        None => Steer::Search {
            tags: Vec::new(),
            declined_unless_clear: false,
        },
    };
    match steer {
        Steer::Fixed(mut plan) => {
            // "That's all, bye" after an answer: the customer's question was
            // answered, so the conversation ends as solved.
            plan.solved = plan.kind == ReplyKind::Smalltalk
                && input.dialogue.topic.is_some()
                && input
                    .understood
                    .and_then(|u| ctx.catalogue.get(&u.intent.name))
                    .is_some_and(|s| s.ends_conversation);
            fixed(*plan)
        }
        Steer::Search {
            tags,
            declined_unless_clear,
        } => search_and_answer(input, ctx, tags, declined_unless_clear),
    }
}

fn fixed(plan: Plan) -> Decision {
    Decision {
        plan,
        evidence: Evidence::default(),
    }
}

enum Steer {
    Fixed(Box<Plan>),
    /// Search, preferring articles with these tags; a message the classifier
    /// put out of scope is answered only from a passage that clearly means
    /// the same thing.
    Search {
        tags: Vec<String>,
        declined_unless_clear: bool,
    },
}

/// What the intent asks for. Hand-off intents never get here: `decide`
/// answers every message that asks for a person first.
fn steer(understood: &Understood, text: &str, ctx: &Context<'_>) -> Steer {
    let intent = &understood.intent;
    let spec = ctx.catalogue.get(&intent.name);
    match spec.map(|s| s.action) {
        // Small talk only when that is all the message is: "hi, how long do
        // returns take?" is a question.
        Some(IntentAction::Reply)
            if questions::content_terms(text) <= 2 || intent.confidence >= SURE_REPLY =>
        {
            let reply = spec.and_then(|s| s.reply.as_deref()).unwrap_or_default();
            Steer::Fixed(Box::new(Plan::fixed(
                ReplyKind::Smalltalk,
                reply,
                format!("small talk ({})", intent.name),
            )))
        }
        Some(IntentAction::Answer) if intent.confidence >= CONFIDENT_INTENT => Steer::Search {
            tags: intent_tags(understood, ctx),
            declined_unless_clear: false,
        },
        _ if intent.is_out_of_scope() => {
            let classifier_says_so = intent
                .alternatives
                .iter()
                .any(|a| a.name == OUT_OF_SCOPE && a.confidence >= 0.5);
            Steer::Search {
                tags: Vec::new(),
                declined_unless_clear: classifier_says_so,
            }
        }
        _ => Steer::Search {
            tags: Vec::new(),
            declined_unless_clear: false,
        },
    }
}

/// Whether a message asks for a person now: its intent or words say so,
/// and it is not a question about the team ("do real people answer here?").
pub fn wants_a_person(understood: &Understood, text: &str, catalogue: &Catalogue) -> bool {
    understood.asks_for_human(catalogue) && !questions::asks_about_people(text)
}

/// The article tags of the understood intent: its name and its own tags.
fn intent_tags(understood: &Understood, ctx: &Context<'_>) -> Vec<String> {
    let name = &understood.intent.name;
    let own = ctx
        .catalogue
        .get(name)
        .map(|s| s.tags.clone())
        .unwrap_or_default();
    std::iter::once(name.clone()).chain(own).collect()
}

/// Similarity a passage needs to answer a message the classifier called
/// out of scope: only a clear paraphrase of the article overrides it.
const CLEAR_MATCH: f32 = 0.7;

fn search_and_answer(
    input: &Input<'_>,
    ctx: &Context<'_>,
    tags: Vec<String>,
    declined_unless_clear: bool,
) -> Decision {
    let t = ctx.texts;
    // Typos are corrected against the articles' own words before searching,
    // and places are named as the articles name them ("Rotterdam (the
    // Netherlands)").
    let corrected = ctx.corpus.correct_spelling(input.text, ctx.encoder);
    let corrected = corrected.as_deref().unwrap_or(input.text);
    let annotated = t.places.annotate(corrected);
    let text = annotated.as_deref().unwrap_or(corrected);
    let subs = questions::split(text);
    let mut evidence = Evidence::default();
    let mut parts: Vec<Part> = Vec::new();
    let mut tie: Option<(Retrieved, Retrieved)> = None;
    let mut followed_up = false;
    let confidence = input.understood.map_or(0.0, |u| u.intent.confidence);
    let upset = input.understood.is_some_and(is_upset);
    // A passage of the intent's own articles may answer on a looser
    // similarity: the classifier already says what the message is about.
    let intent_floor = if tags.is_empty() {
        f32::INFINITY
    } else {
        INTENT_MIN_SIMILARITY
    };
    let tagged = |h: &Retrieved| h.passage.tags.iter().any(|t| tags.first() == Some(t));
    for (i, sub) in subs.iter().enumerate() {
        let follow_up = input
            .dialogue
            .topic
            .as_ref()
            .filter(|_| questions::is_follow_up(sub));
        followed_up |= follow_up.is_some();
        let in_topic =
            |h: &Retrieved| follow_up.is_some_and(|t| t.article_id == h.passage.article_id);
        let context = follow_up.map(|t| t.question.clone());
        // What the customer wrote is searched and judged; the places named
        // as the articles name them only help pick the sentences.
        let own_words = t.places.strip(sub);
        let query = RetrievalQuery {
            text: own_words.clone(),
            context: context.clone(),
            prefer_tags: tags.clone(),
        };
        // A follow-up means what the earlier question meant plus its own
        // words; a long message also means what each of its sentences does
        // ("My skillet arrived cracked. Nobody answers. I am furious!").
        let meaning = match &context {
            Some(c) => format!("{c}\n{own_words}"),
            None => own_words.clone(),
        };
        let mut meanings = vec![meaning.clone()];
        if context.is_none() {
            meanings.extend(questions::clauses(&own_words));
        }
        let texts: Vec<&str> = meanings.iter().map(String::as_str).collect();
        let mut embeddings: Vec<Vec<f32>> = match (subs.len(), input.understood, &context) {
            (1, Some(u), None) if own_words == input.text && !u.embedding.is_empty() => {
                let mut all = vec![u.embedding.clone()];
                all.extend(ctx.encoder.embed(&texts[1..]).unwrap_or_default());
                all
            }
            _ => ctx.encoder.embed(&texts).unwrap_or_default(),
        };
        let search = |embeddings: &[Vec<f32>]| {
            let embeddings: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
            ctx.corpus
                .search_any(&query, &embeddings, RetrieverKind::Hybrid, 12)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "knowledge-base search failed");
                    Vec::new()
                })
        };
        // "Can I pay with bitcoin?": a yes/no question about something no
        // article mentions is not answered by the article on the general
        // topic (the list of payment methods), unless a passage clearly
        // means the question, or holds most of its words, the unknown one
        // being another form of a word it uses ("tumble dryer").
        let unheard = questions::is_yes_no(sub) && has_unheard_word(&own_words, ctx);
        let answers = |h: &Retrieved| {
            if unheard && h.relevance < UNHEARD_MAX_RELEVANCE {
                return h.similarity >= CLEAR_MATCH;
            }
            if declined_unless_clear {
                return h.similarity >= CLEAR_MATCH
                    || (h.relevance >= 0.8 && h.similarity >= ctx.rule.min_similarity);
            }
            // A follow-up's own words ("and to Belgium?") in the topic's
            // article are enough: the conversation says what it is about.
            h.answers(&ctx.rule)
                || (tagged(h) && h.similarity >= intent_floor && h.relevance > 0.0)
                || (tagged(h)
                    && h.relevance >= ctx.rule.min_relevance
                    && h.similarity >= INTENT_WORDS_MIN_SIMILARITY)
                || (in_topic(h) && h.similarity >= FOLLOW_UP_MIN_SIMILARITY && h.relevance > 0.0)
        };
        let mut hits = search(&embeddings);
        // "send back the chair cushions" means "send back an item": when
        // nothing answers, the product's name may have pulled the question
        // away from the policy, so it is searched once more without it.
        if context.is_none()
            && !hits.iter().any(answers)
            && let Some(plain) = ctx.products.without_products(&own_words)
        {
            embeddings.extend(ctx.encoder.embed(&[plain.as_str()]).unwrap_or_default());
            hits = search(&embeddings);
        }
        let embeddings: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
        evidence.searched.push(match &context {
            Some(c) => format!("{c}\n{sub}"),
            None => sub.clone(),
        });
        let best = hits.iter().map(|h| h.similarity).reduce(f32::max);
        evidence.best_similarity = match (evidence.best_similarity, best) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut answerable: Vec<Retrieved> = hits.iter().filter(|h| answers(h)).cloned().collect();
        // A question that asks for a kind of fact (a duration, an amount) is
        // answered by a passage that holds one, however it ranks.
        if questions::asks_for_a_kind_of_fact(sub) {
            answerable.sort_by_key(|h| !grounding::holds_asked_fact(sub, &h.passage.text));
        }
        // A sure classifier knows the articles for its intent: those come
        // first, unless another passage clearly says the same thing as the
        // question (an example question staff wrote for it).
        // With several questions the intent is the message's, not each one's.
        if confidence >= SURE_INTENT && subs.len() == 1 && answerable.iter().any(&tagged) {
            answerable.sort_by_key(|h| !(tagged(h) || h.similarity >= CLEAR_MATCH));
        }
        // A follow-up stays with the article of the topic ("and to
        // Belgium?"), unless it asks for a kind of fact that article does
        // not hold ("and how long does it take?").
        let stay_with = follow_up
            .map(|t| t.article_id.as_str())
            .filter(|id| {
                ctx.corpus.article(id).is_some_and(|a| {
                    !questions::asks_for_a_kind_of_fact(sub)
                        || grounding::holds_asked_fact(sub, &a.body)
                })
            })
            .filter(|_| answerable.iter().any(&in_topic));
        if stay_with.is_some() {
            answerable.sort_by_key(|h| !in_topic(h));
        } else if let Some(topic) = &input.dialogue.topic
            && follow_up.is_none()
            && answerable.iter().all(|h| h.similarity < CLEAR_MATCH)
        {
            // A new question without pointing words may still be about the
            // topic ("is there a minimum amount?" after Klarna): the topic's
            // article answers first when it holds the question's words and
            // nothing else clearly means the question.
            let on_topic = hits.iter().find(|h| {
                h.passage.article_id == topic.article_id
                    && h.relevance >= ctx.rule.min_relevance
                    && h.similarity >= FOLLOW_UP_MIN_SIMILARITY
            });
            if let Some(hit) = on_topic {
                answerable.retain(|h| h.passage.id != hit.passage.id);
                answerable.insert(0, hit.clone());
            }
        }
        answerable.truncate(3);
        if i == 0 {
            evidence.passages = hits;
        }
        if answerable.is_empty() {
            continue;
        }
        if subs.len() == 1 && follow_up.is_none() {
            tie = vague_tie(sub, &answerable, &tagged);
        }
        // The question alone (not a follow-up's context) picks the sentences.
        let meaning = context.is_none().then(|| embeddings[0]);
        let part = questions::extract(
            &RetrievalQuery {
                text: sub.clone(),
                ..query.clone()
            },
            &answerable,
            stay_with,
            meaning,
            upset,
            ctx.corpus,
            ctx.encoder,
        );
        // Sentences come from the whole article, so two passages of one
        // article make one part: no sentence is said twice.
        match parts
            .iter_mut()
            .find(|p| p.passage.article_id == part.passage.article_id)
        {
            Some(existing) => {
                for s in part.sentences {
                    if !existing.sentences.contains(&s) {
                        existing.sentences.push(s);
                    }
                }
            }
            None => parts.push(part),
        }
    }
    if let Some((a, b)) = tie {
        let options = vec![
            Choice {
                article_id: a.passage.article_id.clone(),
                title: a.passage.article_title.clone(),
            },
            Choice {
                article_id: b.passage.article_id.clone(),
                title: b.passage.article_title.clone(),
            },
        ];
        let text = t.which_one(&options[0].title, &options[1].title);
        let plan = Plan::fixed(ReplyKind::Clarify, &text, "two articles fit equally").with_offer(
            Offer::Choice {
                question: input.text.to_string(),
                options,
            },
            t,
        );
        return Decision { plan, evidence };
    }
    if parts.is_empty()
        && let Some(hit) = complaint_fallback(input, &evidence)
    {
        let query = RetrievalQuery {
            text: text.to_string(),
            context: None,
            prefer_tags: vec![questions::COMPLAINT_TAG.to_string()],
        };
        parts.push(questions::extract(
            &query,
            std::slice::from_ref(&hit),
            None,
            None,
            true,
            ctx.corpus,
            ctx.encoder,
        ));
    }
    if parts.is_empty() {
        let (kind, text, why) = if declined_unless_clear {
            (ReplyKind::Declined, &t.decline, "out of scope")
        } else {
            (
                ReplyKind::NoAnswer,
                &t.no_answer,
                "no passage good enough to answer from",
            )
        };
        let plan = Plan::fixed(kind, text, why).with_offer(Offer::Person, t);
        return Decision { plan, evidence };
    }
    let topic = Topic {
        article_id: parts[0].passage.article_id.clone(),
        question: match (&input.dialogue.topic, followed_up) {
            (Some(t), true) => format!("{} {}", t.question, input.text),
            _ => input.text.to_string(),
        },
    };
    let why = if followed_up {
        "answered from the knowledge base (a follow-up)"
    } else {
        "answered from the knowledge base"
    };
    let mut plan = Plan::answer(parts, topic, why);
    frame(&mut plan, input, t, ctx.orders);
    Decision { plan, evidence }
}

/// Whether a question holds a word that no article uses and that is not a
/// place, a product of the catalogue, a number or an abbreviation.
fn has_unheard_word(text: &str, ctx: &Context<'_>) -> bool {
    ctx.corpus.unknown_words(text).into_iter().any(|w| {
        w.chars().count() >= MIN_UNHEARD_LEN
            && w.chars().all(char::is_alphabetic)
            && !ctx.texts.places.is_place(w)
            && ctx.products.without_products(w).is_none()
    })
}

/// A passage that holds this share of a question's words (by rarity)
/// answers it despite a word no article uses.
const UNHEARD_MAX_RELEVANCE: f32 = 0.5;

/// Shorter words are abbreviations ("min", "pls") or too common to judge.
const MIN_UNHEARD_LEN: usize = 4;

/// The intent of "where is my order?".
const TRACK_ORDER: &str = "track_order";

/// A message that completes what an order lookup needs (the order number
/// and the e-mail address or postcode, this message giving at least one),
/// about an order or saying little else ("it's anna@example.com"): the
/// order is looked up, and the reply says what the shop says.
fn order_lookup(input: &Input<'_>, ctx: &Context<'_>) -> Option<Plan> {
    if !ctx.orders || super::dialogue::extract_slots(input.text).is_empty() {
        return None;
    }
    let slots = &input.dialogue.slots;
    let (number, verifier) = (slots.order_number.as_ref()?, slots.verifier()?);
    if input.dialogue.failed_checks >= MAX_FAILED_CHECKS {
        // Guessing e-mail addresses or postcodes stops here.
        return Some(Plan::order_checks_spent(
            ctx.texts,
            "too many order details that did not match",
        ));
    }
    let intent = input
        .understood
        .filter(|u| u.intent.confidence >= 0.5)
        .map(|u| u.intent.name.as_str());
    // A message that only gives the details continues the conversation's
    // topic: cancelling when its article is about cancelling.
    let topic_has = |intent_tag: &str| {
        input.dialogue.topic.as_ref().is_some_and(|t| {
            ctx.corpus
                .article(&t.article_id)
                .is_some_and(|a| a.tags.iter().any(|tag| tag == intent_tag))
        })
    };
    let details_only = questions::content_terms(input.text) <= DETAILS_ONLY_TERMS;
    if intent == Some(CANCEL_ORDER)
        || (details_only && topic_has(CANCEL_ORDER) && intent != Some(TRACK_ORDER))
    {
        // Never without the customer's yes.
        let text = ctx.texts.orders.confirm_cancel.replace("{order}", number);
        return Some(
            Plan::fixed(
                ReplyKind::OrderStatus,
                &text,
                "asks to confirm the cancellation",
            )
            .with_offer(
                Offer::CancelOrder {
                    order_number: number.clone(),
                },
                ctx.texts,
            ),
        );
    }
    let lookup = LookupRequest {
        order_number: number.clone(),
        verifier: verifier.to_string(),
    };
    if intent == Some(RETURN_ITEM)
        || (details_only && topic_has(RETURN_ITEM) && intent != Some(TRACK_ORDER))
    {
        // The items may have been named before the order details were.
        let wanted = match &input.dialogue.topic {
            Some(topic) if details_only => format!("{}\n{}", topic.question, input.text),
            _ => input.text.to_string(),
        };
        let request = OrderRequest::PrepareReturn { lookup, wanted };
        return Some(Plan::ask_shop(
            request,
            "looks up the order to return items",
        ));
    }
    if intent != Some(TRACK_ORDER) && !details_only {
        return None;
    }
    let mut plan = Plan::ask_shop(OrderRequest::Lookup(lookup), "looks up the order");
    plan.parts = late_advice(ctx);
    Some(plan)
}

const LATE_ADVICE_SENTENCES: usize = 2;

/// What the knowledge base says to do when an order is late (the answer
/// to the shop's `late_question`), said after an open order's status.
fn late_advice(ctx: &Context<'_>) -> Vec<Part> {
    let question = ctx.texts.orders.late_question.trim();
    if question.is_empty() {
        return Vec::new();
    }
    let asked = Input {
        text: question,
        understood: None,
        dialogue: &DialogueState::default(),
    };
    let mut decision = search_and_answer(&asked, ctx, Vec::new(), false);
    if decision.plan.kind != ReplyKind::Extractive {
        return Vec::new();
    }
    // Briefly: the status is what was asked.
    decision.plan.parts.truncate(1);
    for part in &mut decision.plan.parts {
        part.sentences.truncate(LATE_ADVICE_SENTENCES);
    }
    decision.plan.parts
}

/// Order details that did not match, per conversation, before only a
/// person is offered.
pub const MAX_FAILED_CHECKS: u32 = 3;

/// The intent of "please cancel my order".
const CANCEL_ORDER: &str = "cancel_order";

/// The intent of "I want to send this back".
const RETURN_ITEM: &str = "return_item";

/// Content words a message that only gives order details may hold besides
/// them ("my email is ...", "order LO-1 postcode 3511 AB").
const DETAILS_ONLY_TERMS: usize = 4;

/// Fixed words around the source's: a complaint or a very unhappy customer
/// hears that first and is offered a person after the steps; a question
/// about an order is asked for its number.
fn frame(plan: &mut Plan, input: &Input<'_>, t: &Texts, orders: bool) {
    let Some(understood) = input.understood else {
        return;
    };
    if is_upset(understood) {
        plan.lead = Some(t.sorry.clone());
        plan.offer_a_person(t);
    } else if understood.intent.name == TRACK_ORDER {
        let slots = &input.dialogue.slots;
        plan.tail = Some(match (&slots.order_number, orders) {
            (Some(n), true) => t.orders.ask_verifier.replace("{order}", n),
            (None, true) => t.orders.ask_order.clone(),
            (Some(n), false) => t.order_noted(n),
            (None, false) => t.ask_order_number.clone(),
        });
    } else if understood.intent.name == CANCEL_ORDER && orders {
        plan.tail = Some(match &input.dialogue.slots.order_number {
            Some(n) => t.orders.ask_verifier.replace("{order}", n),
            None => t.orders.ask_cancel.clone(),
        });
    } else if understood.intent.name == RETURN_ITEM
        && understood.intent.confidence >= SURE_INTENT
        && orders
    {
        plan.tail = Some(match &input.dialogue.slots.order_number {
            Some(n) => t.orders.ask_verifier.replace("{order}", n),
            None => t.orders.returns.ask_order.clone(),
        });
    }
}

/// A complaint or a clearly upset customer (calm questions about returns
/// or refunds score a little negative, so the score alone must be low).
fn is_upset(understood: &Understood) -> bool {
    (understood.intent.name == COMPLAINT && understood.intent.confidence >= 0.5)
        || understood.sentiment.score <= STRONGLY_NEGATIVE
        || understood.sentiment.signals.iter().any(|s| {
            matches!(
                s,
                Signal::Anger | Signal::Profanity | Signal::RepeatedFailure
            )
        })
}

/// The intent whose articles hold what to do when something went wrong.
const COMPLAINT: &str = "complaint";
/// Least similarity for an upset customer's message to a complaint article
/// when nothing else answers: angry words are far from any article's.
const UPSET_MIN_SIMILARITY: f32 = 0.3;

/// For an upset customer nothing else answered: the best-ranked passage of
/// an article about things going wrong (damaged, missing, late, faulty),
/// if it is at all on topic. Better the steps and a person than "I
/// couldn't find anything" to someone who is furious.
fn complaint_fallback(input: &Input<'_>, evidence: &Evidence) -> Option<Retrieved> {
    input.understood.filter(|u| is_upset(u))?;
    evidence
        .passages
        .iter()
        .find(|h| {
            h.passage.tags.iter().any(|t| t == questions::COMPLAINT_TAG)
                && h.similarity >= UPSET_MIN_SIMILARITY
                && h.relevance > 0.0
        })
        .cloned()
}

/// Two answerable passages of different articles that fit a vague question
/// ("how much does it cost?") equally well, and that the intent does not
/// tell apart.
fn vague_tie(
    question: &str,
    answerable: &[Retrieved],
    tagged: &impl Fn(&Retrieved) -> bool,
) -> Option<(Retrieved, Retrieved)> {
    if questions::content_terms(question) > 2 {
        return None;
    }
    let first = answerable.first()?;
    let second = answerable
        .iter()
        .find(|h| h.passage.article_id != first.passage.article_id)?;
    let close = (first.similarity - second.similarity).abs() < TIE
        && (first.relevance - second.relevance).abs() < 0.05
        && tagged(first) == tagged(second);
    close.then(|| (first.clone(), second.clone()))
}

/// Answers the earlier `question` from the article the customer picked.
fn answer_from_article(
    question: &str,
    choice: &Choice,
    input: &Input<'_>,
    ctx: &Context<'_>,
) -> Decision {
    let query = RetrievalQuery {
        text: question.to_string(),
        context: None,
        prefer_tags: Vec::new(),
    };
    let embedding = ctx.encoder.embed(&[question]).ok().map(|mut v| v.remove(0));
    let hits: Vec<Retrieved> = ctx
        .corpus
        .search(&query, embedding.as_deref(), RetrieverKind::Hybrid, 50)
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.passage.article_id == choice.article_id)
        .collect();
    if hits.is_empty() {
        return fixed(
            Plan::fixed(
                ReplyKind::NoAnswer,
                &ctx.texts.no_answer,
                "the chosen article is gone",
            )
            .with_offer(Offer::Person, ctx.texts),
        );
    }
    let part = questions::extract(
        &query,
        &hits[..hits.len().min(3)],
        Some(choice.article_id.as_str()),
        embedding.as_deref(),
        input.understood.is_some_and(is_upset),
        ctx.corpus,
        ctx.encoder,
    );
    let topic = Topic {
        article_id: choice.article_id.clone(),
        question: question.to_string(),
    };
    let mut plan = Plan::answer(
        vec![part],
        topic,
        format!("the customer chose {:?}", choice.title),
    );
    frame(&mut plan, input, ctx.texts, ctx.orders);
    Decision {
        plan,
        evidence: Evidence {
            searched: vec![question.to_string()],
            passages: hits,
            best_similarity: None,
        },
    }
}
