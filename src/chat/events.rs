//! What happens in conversations, published once for whoever listens: the
//! agent console's feed today, insights or another replica later. Events
//! flow one way: the conversation publishes and never calls its listeners.

use tokio::sync::broadcast;
use uuid::Uuid;

/// One change to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationEvent {
    /// A message was stored or newly understood (`seq`), or the
    /// conversation itself changed (`seq` is `None`): flagged, taken over,
    /// handed back, closed, connected or left.
    Changed { session: Uuid, seq: Option<i64> },
}

/// The bus. A listener that falls more than its capacity behind misses
/// events and is told so (`Lagged`); publishing never waits for listeners.
pub struct ConversationEvents {
    sender: broadcast::Sender<ConversationEvent>,
}

impl Default for ConversationEvents {
    fn default() -> Self {
        ConversationEvents {
            sender: broadcast::channel(4096).0,
        }
    }
}

impl ConversationEvents {
    /// Says that `session` changed (at `seq`, when a message did).
    pub fn changed(&self, session: Uuid, seq: Option<i64>) {
        // No listener is fine: nothing is waiting for it.
        let _ = self
            .sender
            .send(ConversationEvent::Changed { session, seq });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ConversationEvent> {
        self.sender.subscribe()
    }
}
