//! A conversation: its live state in memory, the frames its customer sees,
//! the rules that flag it, the hand-off note, the signed customer identity,
//! and the event bus it publishes to. Nothing here reads the app's state;
//! the chat (`chat/`) and the console drive it.

pub mod escalation;
pub mod events;
pub mod handoff_note;
pub mod identity;
pub mod protocol;
mod session;

pub use session::{ConnectionGuard, LiveSession, Opened, SessionHub};
