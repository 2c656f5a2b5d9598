//! The customer chat: websocket protocol, live sessions, and answering.

pub mod escalation;
pub mod events;
pub mod handoff_note;
pub mod identity;
pub mod protocol;
pub mod responder;
mod session;
pub mod ws;

pub use session::{LiveSession, Opened, SessionHub};
