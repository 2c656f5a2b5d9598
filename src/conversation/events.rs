//! What happens in conversations, published once for whoever listens: the
//! agent console's feed and the knowledge-gap recorder today, insights or
//! another replica later. Events flow one way: the conversation publishes
//! and never calls its listeners.

use std::future::Future;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::storage::gaps::GapReason;

/// One change to a conversation.
#[derive(Debug, Clone)]
pub enum ConversationEvent {
    /// A message was stored or newly understood (`seq`), or the
    /// conversation itself changed (`seq` is `None`): flagged, taken over,
    /// handed back, closed, connected or left.
    Changed { session: Uuid, seq: Option<i64> },
    /// A reply showed a hole in the knowledge base.
    Unanswered(Arc<Unanswered>),
}

/// A question the bot answered badly or not at all.
#[derive(Debug)]
pub struct Unanswered {
    pub session: Uuid,
    pub reason: GapReason,
    /// As the customer wrote it (for a hand-off: the question before it).
    pub question: String,
    /// The best passage's similarity, when there was one.
    pub best: Option<f32>,
    /// The question's embedding, when it was at hand.
    pub embedding: Option<Vec<f32>>,
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
        self.publish(ConversationEvent::Changed { session, seq });
    }

    /// Says that a reply left a question unanswered.
    pub fn unanswered(&self, gap: Unanswered) {
        self.publish(ConversationEvent::Unanswered(Arc::new(gap)));
    }

    fn publish(&self, event: ConversationEvent) {
        // No listener is fine: nothing is waiting for it.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ConversationEvent> {
        self.sender.subscribe()
    }

    /// Runs `handle` on every event published from now on, one at a time,
    /// with `owner` (the app's state, which holds this bus) while it lives.
    /// Ends when the owner is dropped. A listener that falls behind logs
    /// how many events it missed and goes on.
    pub fn listen<S, F, Fut>(&self, listener: &'static str, owner: &Arc<S>, handle: F)
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, ConversationEvent) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let mut events = self.subscribe();
        let owner: Weak<S> = Arc::downgrade(owner);
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            listener,
                            missed,
                            "a listener fell behind the conversations"
                        );
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(owner) = owner.upgrade() else { return };
                handle(owner, event).await;
            }
        });
    }
}
