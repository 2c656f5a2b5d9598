//! The one answer pipeline, shared by chat, the admin hit test, `kb search`
//! and `eval answers`: a pure step that decides the reply and its evidence
//! (`plan`), and an async step that streams it, checked, to the customer
//! (`compose`), after an order lookup when the plan asks for one
//! (`order_reply`). What the bot says around the sources is data (`texts`).

pub mod compose;
mod data_file;
pub mod dialogue;
pub mod order_reply;
pub mod places;
pub mod plan;
pub mod questions;
pub mod texts;

pub use dialogue::{DialogueState, Offer};

use crate::knowledge::retriever::Corpus;
use crate::understanding::encoder::Encoder;

/// A customer message as it is understood (classified): without the order
/// details it gives, typos corrected to the knowledge base's words ("how
/// do i cancle my order" is a cancellation, not product care).
pub fn as_meant(text: &str, corpus: &Corpus, encoder: &Encoder) -> String {
    let without = dialogue::without_details(text);
    corpus
        .correct_spelling(&without, encoder)
        .unwrap_or_else(|| without.into_owned())
}
pub use plan::{Context, Decision, Evidence, Input, Plan, decide, wants_a_person};
pub use texts::Texts;
