//! The one answer pipeline, shared by chat, the admin hit test, `kb search`
//! and `eval answers`: a pure step that decides the reply and its evidence
//! (`plan`), and an async step that streams it, checked, to the customer
//! (`compose`), after an order lookup when the plan asks for one
//! (`order_reply`). What the bot says around the sources is data (`texts`).

pub mod compose;
pub mod dialogue;
pub mod order_reply;
pub mod places;
pub mod plan;
pub mod questions;
pub mod texts;

pub use dialogue::{DialogueState, Offer};
pub use plan::{Context, Decision, Evidence, Input, Plan, decide};
pub use texts::Texts;
