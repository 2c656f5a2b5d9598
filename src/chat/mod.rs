//! The customer chat: the widget's websocket and answering its messages.
//! What a conversation is and holds lives in `conversation/`; this module
//! serves it over the app's state.

pub mod responder;
pub mod ws;
