//! Live console updates: every change to a conversation (a message, a
//! flag, a takeover), heard on the conversation event bus, is sent to
//! every open console websocket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::AggregatedMessage;
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::auth::SignedIn;
use super::{ConversationView, view};
use crate::conversation::events::ConversationEvent;
use crate::conversation::protocol::HistoryEntry;
use crate::state::AppState;

/// What an open console hears.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleEvent {
    /// Sent first, to say who is signed in.
    Hello { agent: String },
    /// A conversation's list entry, new or changed.
    Conversation { conversation: ConversationView },
    /// A stored message, new or newly understood (same `seq`: replace it).
    Message {
        session_id: Uuid,
        message: HistoryEntry,
    },
}

pub struct ConsoleHub {
    events: broadcast::Sender<ConsoleEvent>,
}

impl Default for ConsoleHub {
    fn default() -> Self {
        ConsoleHub {
            events: broadcast::channel(1024).0,
        }
    }
}

impl ConsoleHub {
    fn watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    fn publish(&self, event: ConsoleEvent) {
        let _ = self.events.send(event);
    }
}

/// Listens to the conversation events and tells open consoles what
/// changed: the message with `seq` (when given) and the conversation's list
/// entry. Ends when the state is dropped; a console that misses a change
/// reloads the list on reconnect.
pub fn follow(state: &Arc<AppState>, hub: Arc<ConsoleHub>) {
    state.events.listen("console feed", state, move |state, event| {
        let hub = hub.clone();
        async move {
            let ConversationEvent::Changed { session, seq } = event else {
                return;
            };
            if !hub.watched() {
                return;
            }
            if let Err(e) = publish_change(&state, &hub, session, seq).await {
                tracing::warn!(error = %e, session = %crate::telemetry::session_ref(session), "cannot tell the console about a change");
            }
        }
    });
}

async fn publish_change(
    state: &AppState,
    hub: &ConsoleHub,
    session: Uuid,
    seq: Option<i64>,
) -> Result<(), crate::storage::StoreError> {
    if let Some(seq) = seq {
        let stored = state.store.messages_after(session, seq - 1).await?;
        if let Some(m) = stored.first().filter(|m| m.seq == seq) {
            hub.publish(ConsoleEvent::Message {
                session_id: session,
                message: HistoryEntry::from(m),
            });
        }
    }
    if let Some(summary) = state.store.conversation(session).await? {
        let conversation = view(state, summary).await?;
        hub.publish(ConsoleEvent::Conversation { conversation });
    }
    Ok(())
}

/// `GET /api/console/ws`: the live feed, for signed-in agents only (the
/// scope's middleware has checked the token).
pub async fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    hub: web::Data<ConsoleHub>,
    agent: web::ReqData<SignedIn>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, mut session, mut stream) =
        crate::websocket::accept(&req, body, 64 * 1024).await?;
    let mut events = hub.events.subscribe();
    let heartbeat = Duration::from_secs(state.config.heartbeat_secs);
    let timeout = Duration::from_secs(state.config.client_timeout_secs);
    let name = agent.into_inner().name;
    actix_web::rt::spawn(async move {
        let hello = ConsoleEvent::Hello {
            agent: name.clone(),
        };
        if session.text(to_json(&hello)).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.tick().await;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                incoming = stream.recv() => match incoming {
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        last_heard = Instant::now();
                        let _ = session.pong(&bytes).await;
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None | Some(Err(_)) => break,
                    // The console acts over REST; anything else it sends is
                    // only a sign of life.
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                event = events.recv() => match event {
                    Ok(event) => {
                        if session.text(to_json(&event)).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, agent = %name, "console fell behind; it reloads");
                        // Closing makes the page reconnect and reload the list.
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = ticker.tick() => {
                    if last_heard.elapsed() > timeout || session.ping(b"").await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

fn to_json(event: &ConsoleEvent) -> String {
    serde_json::to_string(event).expect("console events always serialise")
}
