//! Live session state: one entry per conversation in a `DashMap`, holding the
//! recent turns for prompts and a broadcast channel to every connection of
//! the session. The store stays the source of truth; this is a cache that
//! idle sessions leave.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::escalation::Escalation;
use super::protocol::ServerFrame;
use crate::answer::DialogueState;
use crate::generation::{ChatTurn, Speaker};
use crate::storage::FlagReason;
use crate::storage::ReplyKind;
use crate::storage::conversations::{Handler, Status};
use crate::storage::{Role, Store, StoreError, StoredMessage, now_ms};
use crate::understanding::Understood;

/// Frames a session's broadcast holds for a connection that is behind. The
/// buffer is allocated whole (512 slots were ~145 KB a session); each
/// connection copies frames out at once into its own queue, so only a
/// client that stopped reading falls this far behind, and it is dropped.
const EVENT_BUFFER: usize = 128;

/// Turns kept in memory per session; the prompt window takes what fits from these.
const KEPT_TURNS: usize = 40;

pub struct LiveSession {
    pub id: Uuid,
    events: broadcast::Sender<ServerFrame>,
    turns: Mutex<Vec<ChatTurn>>,
    /// Serialises replies within a session, in arrival order (tokio's mutex is fair).
    pub reply_lock: tokio::sync::Mutex<()>,
    last_active_ms: AtomicI64,
    connections: AtomicUsize,
    escalation: Mutex<Escalation>,
    handler: Mutex<Handler>,
    /// Cancelled when a person takes over, stopping the bot's reply in flight.
    bot_turn: Mutex<CancellationToken>,
    /// The offer pending, the topic, what the customer told us.
    dialogue: Mutex<DialogueState>,
    /// Customer messages stored and not yet answered.
    queued: AtomicUsize,
}

/// Unanswered messages a session may have before more are refused: a
/// person types a few questions in a row; a flood would queue hours of
/// bot work that runs on after the client has gone.
pub const MAX_QUEUED_ANSWERS: usize = 5;

/// Counts one queued answer for as long as it lives.
pub struct QueuedAnswer(Arc<LiveSession>);

impl Drop for QueuedAnswer {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LiveSession {
    fn new(id: Uuid, history: &[StoredMessage], handler: Handler) -> LiveSession {
        // What a person wrote is part of the conversation the bot continues.
        let turns = history
            .iter()
            .filter_map(|m| {
                let speaker = match m.role {
                    Role::Customer => Speaker::Customer,
                    Role::Bot | Role::Agent => Speaker::Assistant,
                    Role::Event => return None,
                };
                Some(ChatTurn {
                    speaker,
                    text: m.text.clone(),
                })
            })
            .collect();
        LiveSession {
            id,
            events: broadcast::channel(EVENT_BUFFER).0,
            turns: Mutex::new(turns),
            reply_lock: tokio::sync::Mutex::new(()),
            last_active_ms: AtomicI64::new(now_ms()),
            connections: AtomicUsize::new(0),
            escalation: Mutex::new(Escalation::from_history(history)),
            handler: Mutex::new(handler),
            bot_turn: Mutex::new(CancellationToken::new()),
            dialogue: Mutex::new(DialogueState::from_history(history)),
            queued: AtomicUsize::new(0),
        }
    }

    pub fn dialogue(&self) -> DialogueState {
        lock(&self.dialogue).clone()
    }

    /// Changes the conversation's memory.
    pub fn update_dialogue(&self, change: impl FnOnce(&mut DialogueState)) {
        change(&mut lock(&self.dialogue));
    }

    pub fn handler(&self) -> Handler {
        lock(&self.handler).clone()
    }

    /// Changes who answers. Taking the conversation from the bot stops any
    /// reply it is writing.
    pub fn set_handler(&self, handler: Handler) {
        if handler.status == Status::Agent {
            let mut turn = lock(&self.bot_turn);
            turn.cancel();
            *turn = CancellationToken::new();
            // The person answers now; an offer the bot made is settled.
            lock(&self.dialogue).offer = None;
        }
        *lock(&self.handler) = handler;
    }

    /// Cancelled if a person takes over while the bot answers.
    pub fn bot_turn(&self) -> CancellationToken {
        lock(&self.bot_turn).clone()
    }

    /// Whether a connection of this session is open.
    pub fn is_connected(&self) -> bool {
        self.connections.load(Ordering::Relaxed) > 0
    }

    /// The last few messages' sentiment scores, oldest first.
    pub fn sentiment_trend(&self) -> Vec<f32> {
        lock(&self.escalation).trend()
    }

    /// Records a customer message's meaning (`wants_person`: it asks for a
    /// person now); returns a reason to flag the session, if there is one.
    pub fn observe_message(
        &self,
        understood: &Understood,
        wants_person: bool,
    ) -> Option<FlagReason> {
        lock(&self.escalation).observe_message(understood, wants_person)
    }

    /// Records how the bot replied; returns a reason to flag, if any.
    pub fn observe_reply(&self, kind: ReplyKind) -> Option<FlagReason> {
        lock(&self.escalation).observe_reply(kind)
    }

    /// Sends a frame to every connection of the session.
    pub fn publish(&self, frame: ServerFrame) {
        // No receivers just means nobody is connected right now; the store has it.
        let _ = self.events.send(frame);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ServerFrame> {
        self.events.subscribe()
    }

    pub fn touch(&self) {
        self.last_active_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn turns(&self) -> Vec<ChatTurn> {
        lock(&self.turns).clone()
    }

    /// The customer's latest message before the one being answered.
    pub fn previous_question(&self) -> Option<String> {
        lock(&self.turns)
            .iter()
            .rev()
            .find(|t| t.speaker == Speaker::Customer)
            .map(|t| t.text.clone())
    }

    pub fn push_turns(&self, new: impl IntoIterator<Item = ChatTurn>) {
        let mut turns = lock(&self.turns);
        turns.extend(new);
        let excess = turns.len().saturating_sub(KEPT_TURNS);
        if excess > 0 {
            // Keep the opening question: the prompt window may still want it.
            let first = turns.first().cloned();
            turns.drain(..excess);
            if let Some(first) = first
                && first.speaker == Speaker::Customer
            {
                turns[0] = first;
            }
        }
    }

    /// A place in the session's queue of answers, unless it is full.
    pub fn queue_answer(self: &Arc<Self>) -> Option<QueuedAnswer> {
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        let place = QueuedAnswer(self.clone());
        (before < MAX_QUEUED_ANSWERS).then_some(place)
    }

    /// Counts a connection for as long as the guard lives.
    pub fn connect(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.touch();
        ConnectionGuard(self.clone())
    }
}

/// Locks a session's state. A panic elsewhere while it was held leaves
/// plain data behind, still usable, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct ConnectionGuard(Arc<LiveSession>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// All sessions currently in memory.
#[derive(Default)]
pub struct SessionHub {
    sessions: DashMap<Uuid, Arc<LiveSession>>,
}

/// A session found or created by [`SessionHub::open`].
pub struct Opened {
    pub session: Arc<LiveSession>,
    /// It existed before (in memory or in the store).
    pub resumed: bool,
    /// It was loaded from the store just now (e.g. after a restart).
    pub loaded: bool,
}

impl SessionHub {
    /// Finds the session `id`, loading it from the store if needed. An unknown
    /// or absent id starts a new session with a fresh id.
    pub async fn open(&self, store: &Store, id: Option<Uuid>) -> Result<Opened, StoreError> {
        if let Some(id) = id
            && let Some(opened) = self.resume(store, id).await?
        {
            return Ok(opened);
        }
        let session = self.create(store, Uuid::new_v4()).await?;
        Ok(Opened {
            session,
            resumed: false,
            loaded: false,
        })
    }

    /// The session `id` if it exists, in memory or in the store.
    pub async fn resume(&self, store: &Store, id: Uuid) -> Result<Option<Opened>, StoreError> {
        if let Some(live) = self.sessions.get(&id).map(|e| e.clone()) {
            return Ok(Some(Opened {
                session: live,
                resumed: true,
                loaded: false,
            }));
        }
        if !store.session_exists(id).await? {
            return Ok(None);
        }
        let history = store.recent_messages(id, KEPT_TURNS).await?;
        let handler = match store.handler(id).await {
            Ok(h) => h,
            Err(crate::storage::conversations::HandoverError::Store(e)) => return Err(e),
            Err(_) => Handler::bot(),
        };
        let failed_checks = store.failed_order_checks(id).await?;
        // Two connections may load the same session at once (after a
        // restart): only the one that puts it in memory reports it loaded,
        // so its pending messages are answered once.
        let (live, loaded) = match self.sessions.entry(id) {
            dashmap::Entry::Occupied(e) => (e.get().clone(), false),
            dashmap::Entry::Vacant(e) => {
                let live = Arc::new(LiveSession::new(id, &history, handler));
                live.update_dialogue(|d| d.failed_checks = failed_checks);
                e.insert(live.clone());
                (live, true)
            }
        };
        Ok(Some(Opened {
            session: live,
            resumed: true,
            loaded,
        }))
    }

    /// Stores and keeps in memory a new session with the id the client was
    /// given (when its first message arrives: a connection that never
    /// writes costs no row and no memory).
    pub async fn create(&self, store: &Store, id: Uuid) -> Result<Arc<LiveSession>, StoreError> {
        store.open_session(id).await?;
        Ok(self
            .sessions
            .entry(id)
            .or_insert_with(|| Arc::new(LiveSession::new(id, &[], Handler::bot())))
            .clone())
    }

    /// Drops an erased session from memory and stops its bot turn.
    pub fn forget(&self, id: Uuid) {
        if let Some((_, session)) = self.sessions.remove(&id) {
            session.bot_turn().cancel();
        }
    }

    /// Drops sessions that have no connection and no activity for `idle`.
    /// Returns how many were dropped.
    pub fn reap_idle(&self, idle: Duration) -> usize {
        let cutoff = now_ms() - idle.as_millis() as i64;
        let before = self.sessions.len();
        self.sessions.retain(|_, s| {
            s.connections.load(Ordering::Relaxed) > 0
                || s.last_active_ms.load(Ordering::Relaxed) > cutoff
                || s.reply_lock.try_lock().is_err()
        });
        before - self.sessions.len()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions in memory with a connection open.
    pub fn connected(&self) -> usize {
        self.sessions.iter().filter(|s| s.is_connected()).count()
    }

    /// The session if it is in memory.
    pub fn get(&self, id: Uuid) -> Option<Arc<LiveSession>> {
        self.sessions.get(&id).map(|e| e.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}
