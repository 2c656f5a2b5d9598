//! Durable store: SQLite, embedded, in the data directory. Every customer
//! message and reply is written here before the client hears about it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::knowledge::Citation;
use crate::understanding::Understood;
use crate::understanding::intent::Intent;
use crate::understanding::sentiment::Sentiment;

pub mod agents;
pub mod articles;
pub mod conversations;
pub mod demo_orders;
pub mod gaps;
pub mod insights;
pub mod outcomes;
pub mod privacy;
pub mod profiles;
mod schema;
pub mod shop_records;
pub mod topic_days;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Task(String),
}

/// Who wrote a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Bot,
    /// A person from the shop, in the agent console.
    Agent,
    /// Something that happened to the conversation (a person joined, left, closed it).
    Event,
}

impl Role {
    fn parse(s: &str) -> Result<Role, StoreError> {
        match s {
            "customer" => Ok(Role::Customer),
            "bot" => Ok(Role::Bot),
            "agent" => Ok(Role::Agent),
            "event" => Ok(Role::Event),
            other => Err(StoreError::Corrupt(format!("unknown role {other:?}"))),
        }
    }
}

/// How a bot reply was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// The model's reply passed the grounding check.
    Generated,
    /// The model's reply failed the check and was replaced by text from the best passage.
    Extractive,
    /// Nothing in the knowledge base was relevant; a person is offered instead.
    NoAnswer,
    /// The model's queue was full.
    Busy,
    /// A greeting, thanks or goodbye, answered with the catalogue's fixed reply.
    Smalltalk,
    /// The customer asked for a person; one is offered and the session flagged.
    Handoff,
    /// Out of scope for a shop assistant; declined politely.
    Declined,
    /// Two articles fit the question equally; the customer is asked which.
    Clarify,
    /// The customer's order, as the shop's order system told it (or why it
    /// could not be told).
    OrderStatus,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Generated => "generated",
            ReplyKind::Extractive => "extractive",
            ReplyKind::NoAnswer => "no_answer",
            ReplyKind::Busy => "busy",
            ReplyKind::Smalltalk => "smalltalk",
            ReplyKind::Handoff => "handoff",
            ReplyKind::Declined => "declined",
            ReplyKind::Clarify => "clarify",
            ReplyKind::OrderStatus => "order_status",
        }
    }
}

/// An article the customer can pick when a question fits two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub article_id: String,
    pub title: String,
}

/// Something a bot reply asked the customer to answer; kept with the reply
/// so the next message is read against it, after a restart too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Offer {
    /// "Would you like me to connect you with someone from our team?"
    Person,
    /// "Do you mean A or B?", about `question`.
    Choice {
        question: String,
        options: Vec<Choice>,
    },
    /// "Shall I cancel order X?", once its number and who placed it are known.
    CancelOrder { order_number: String },
    /// "Which items of order X?", once the shop said what the order holds.
    ReturnItems {
        order_number: String,
        items: Vec<crate::orders::OrderItem>,
    },
    /// "Shall I register a return of these items?"
    StartReturn {
        order_number: String,
        items: Vec<crate::orders::OrderItem>,
    },
}

/// A bot reply's content, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotReply {
    pub reply_id: Uuid,
    pub text: String,
    pub citations: Vec<Citation>,
    pub grounded: bool,
    pub kind: ReplyKind,
    /// What the reply asks the customer, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    /// Buttons the widget shows under the reply; each sends its label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
}

impl BotReply {
    /// A reply that cites nothing: a fixed text, a decline, a hand-off.
    pub fn without_sources(reply_id: Uuid, kind: ReplyKind, text: impl Into<String>) -> Self {
        Self {
            reply_id,
            text: text.into(),
            citations: Vec::new(),
            grounded: false,
            kind,
            offer: None,
            quick_replies: Vec::new(),
        }
    }
}

/// One stored message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub seq: i64,
    pub role: Role,
    pub text: String,
    /// The widget's id for a customer message; for a reply, the id of the message it answers.
    pub client_id: Option<String>,
    pub reply: Option<BotReply>,
    /// A customer message's intent and sentiment; on a reply, those of the
    /// message it answers.
    pub understood: Option<Understood>,
    /// The agent who wrote an agent message or caused an event.
    pub author: Option<String>,
    /// What happened, for an event.
    pub event: Option<conversations::ConversationEvent>,
    pub created_at_ms: i64,
}

/// Why a conversation needs a person: stored with the session, decided by
/// `chat::escalation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    AskedForHuman,
    StronglyNegative,
    NegativeTwice,
    CouldNotAnswerTwice,
    OutOfScopeRepeatedly,
}

impl FlagReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AskedForHuman => "asked_for_human",
            Self::StronglyNegative => "strongly_negative",
            Self::NegativeTwice => "negative_twice",
            Self::CouldNotAnswerTwice => "could_not_answer_twice",
            Self::OutOfScopeRepeatedly => "out_of_scope_repeatedly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::AskedForHuman,
            Self::StronglyNegative,
            Self::NegativeTwice,
            Self::CouldNotAnswerTwice,
            Self::OutOfScopeRepeatedly,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Why and when a session was flagged for a person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Flag {
    pub reason: FlagReason,
    pub at_ms: i64,
}

/// One conversation as the console lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationListRow {
    pub session_id: Uuid,
    pub created_at_ms: i64,
    pub flag: Option<Flag>,
    pub last_message: Option<String>,
    pub last_message_at_ms: Option<i64>,
    /// Who wrote the last message.
    pub last_role: Option<Role>,
    pub handler: conversations::Handler,
    /// The hand-off note: what the bot gathered for the agent when it
    /// flagged the conversation (`chat::handoff_note`; "summary" means
    /// only this).
    pub summary: Option<String>,
    /// Who the shop's site says the customer is.
    pub customer: Option<shop_records::Customer>,
}

/// Result of storing a customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: i64,
    /// The same client id was stored before; nothing new was written.
    pub duplicate: bool,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        // One connection behind a mutex serves the whole server, a query at
        // a time; WAL lets another process (`frontdesk backup`, `privacy`)
        // read beside it. FULL sync because a message is acknowledged only
        // once it is on disk.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Erased and expired conversations are overwritten, not just unlinked.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Writes a consistent copy of the whole database to `path` (SQLite's
    /// `VACUUM INTO`) while the server keeps running. Refuses to overwrite.
    pub async fn backup_to(&self, path: std::path::PathBuf) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute("VACUUM INTO ?1", [path.to_string_lossy()])?;
            Ok(())
        })
        .await
    }

    /// Runs blocking SQLite work off the async executor.
    pub(crate) async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(StoreError::Task(e.to_string())))?
    }

    /// The connection, for blocking callers already off the executor.
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the session if it does not exist. Returns true if it existed.
    pub async fn open_session(&self, id: Uuid) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO sessions (id, created_at_ms, last_seq) VALUES (?1, ?2, 0)",
                params![id.to_string(), now_ms()],
            )?;
            Ok(inserted == 0)
        })
        .await
    }

    pub async fn session_exists(&self, id: Uuid) -> Result<bool, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT 1 FROM sessions WHERE id = ?1",
                    [id.to_string()],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    /// Stores a customer message, or finds the earlier one with the same client id.
    pub async fn append_customer(
        &self,
        session: Uuid,
        client_id: String,
        text: String,
    ) -> Result<Appended, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            // A customer writing into a closed conversation reopens it for the bot.
            tx.execute(
                "UPDATE sessions SET status = 'bot', agent = NULL WHERE id = ?1 AND status = 'closed'",
                [session.to_string()],
            )?;
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM messages WHERE session_id = ?1 AND role = 'customer' AND client_id = ?2",
                    params![session.to_string(), client_id],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(seq) = existing {
                return Ok(Appended {
                    seq,
                    duplicate: true,
                });
            }
            let seq = next_seq(&tx, session)?;
            tx.execute(
                "INSERT INTO messages (session_id, seq, role, text, client_id, created_at_ms)
                 VALUES (?1, ?2, 'customer', ?3, ?4, ?5)",
                params![session.to_string(), seq, text, client_id, now_ms()],
            )?;
            tx.commit()?;
            Ok(Appended {
                seq,
                duplicate: false,
            })
        })
        .await
    }

    /// Stores a bot reply to the customer message with `reply_to` as client id.
    pub async fn append_bot(
        &self,
        session: Uuid,
        reply_to: Option<String>,
        reply: BotReply,
        understood: Option<Understood>,
    ) -> Result<StoredMessage, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let seq = next_seq(&tx, session)?;
            let created_at_ms = now_ms();
            let (intent, sentiment, demand) = understood_columns(understood.as_ref())?;
            let citations = serde_json::to_string(&reply.citations)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let kind = serde_json::to_value(reply.kind)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let offer = reply
                .offer
                .as_ref()
                .map(|o| serde_json::to_string(&(o, &reply.quick_replies)))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO messages (session_id, seq, role, text, client_id, reply_id, citations, grounded, kind, created_at_ms, intent, sentiment, offer, demand)
                 VALUES (?1, ?2, 'bot', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    session.to_string(),
                    seq,
                    reply.text,
                    reply_to,
                    reply.reply_id.to_string(),
                    citations,
                    reply.grounded,
                    kind.as_str(),
                    created_at_ms,
                    intent,
                    sentiment,
                    offer,
                    demand
                ],
            )?;
            tx.commit()?;
            Ok(StoredMessage {
                seq,
                role: Role::Bot,
                text: reply.text.clone(),
                client_id: reply_to,
                reply: Some(reply),
                understood,
                author: None,
                event: None,
                created_at_ms,
            })
        })
        .await
    }

    /// Records what a stored customer message means.
    pub async fn annotate(
        &self,
        session: Uuid,
        seq: i64,
        understood: Understood,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            let (intent, sentiment, demand) = understood_columns(Some(&understood))?;
            conn.execute(
                "UPDATE messages SET intent = ?3, sentiment = ?4, demand = ?5 WHERE session_id = ?1 AND seq = ?2",
                params![session.to_string(), seq, intent, sentiment, demand],
            )?;
            Ok(())
        })
        .await
    }

    /// Flags a session for a person. The first reason stays; returns whether
    /// the session was newly flagged.
    pub async fn flag(&self, session: Uuid, reason: FlagReason) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE sessions SET flag_reason = ?2, flagged_at_ms = ?3
                 WHERE id = ?1 AND flag_reason IS NULL",
                params![session.to_string(), reason.as_str(), now_ms()],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    pub async fn flag_of(&self, session: Uuid) -> Result<Option<Flag>, StoreError> {
        self.run(move |conn| {
            let row: Option<(Option<String>, Option<i64>)> = conn
                .query_row(
                    "SELECT flag_reason, flagged_at_ms FROM sessions WHERE id = ?1",
                    [session.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            read_flag(row.and_then(|(r, at)| r.zip(at)))
        })
        .await
    }

    /// The sequence number of the session's latest message (0 when it has
    /// none or does not exist).
    pub async fn last_seq(&self, session: Uuid) -> Result<i64, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT last_seq FROM sessions WHERE id = ?1",
                    [session.to_string()],
                    |row| row.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
        .await
    }

    /// Messages with `seq > after`, oldest first.
    pub async fn messages_after(
        &self,
        session: Uuid,
        after: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.run(move |conn| {
            query_messages(
                conn,
                "WHERE session_id = ?1 AND seq > ?2 ORDER BY seq",
                params![session.to_string(), after],
            )
        })
        .await
    }

    /// The latest `limit` messages, oldest first.
    pub async fn recent_messages(
        &self,
        session: Uuid,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.run(move |conn| {
            let mut messages = query_messages(
                conn,
                "WHERE session_id = ?1 ORDER BY seq DESC LIMIT ?2",
                params![session.to_string(), limit as i64],
            )?;
            messages.reverse();
            Ok(messages)
        })
        .await
    }

    /// Customer messages that have no reply yet (the server stopped while
    /// answering). Messages written while a person had the conversation, or
    /// before they joined, were theirs to answer.
    pub async fn unanswered(&self, session: Uuid) -> Result<Vec<StoredMessage>, StoreError> {
        self.run(move |conn| {
            query_messages(
                conn,
                "WHERE session_id = ?1 AND role = 'customer'
                 AND seq > COALESCE((SELECT MAX(seq) FROM messages e WHERE e.session_id = m.session_id
                                     AND e.role IN ('agent', 'event')), 0)
                 AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.session_id = m.session_id
                                 AND r.role = 'bot' AND r.client_id = m.client_id)
                 ORDER BY seq",
                params![session.to_string()],
            )
        })
        .await
    }
}

/// Columns read by [`read_row`], in its order.
const MESSAGE_COLUMNS: &str = "seq, role, text, client_id, reply_id, citations, grounded, kind, created_at_ms, intent, sentiment, author, offer, demand";

type UnderstoodColumns = (Option<String>, Option<String>, Option<String>);

fn understood_columns(understood: Option<&Understood>) -> Result<UnderstoodColumns, StoreError> {
    fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
        serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    Ok(match understood {
        Some(u) => (
            Some(json(&u.intent)?),
            Some(json(&u.sentiment)?),
            Some(json(&u.demand)?),
        ),
        None => (None, None, None),
    })
}

pub(crate) fn read_flag(column: Option<(String, i64)>) -> Result<Option<Flag>, StoreError> {
    column
        .map(|(reason, at_ms)| {
            let reason = FlagReason::parse(&reason)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown flag reason {reason:?}")))?;
            Ok(Flag { reason, at_ms })
        })
        .transpose()
}

/// Runs `SELECT <MESSAGE_COLUMNS> FROM messages m <tail>` and reads the rows.
fn query_messages(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages m {tail}"))?;
    let rows = stmt.query_map(params, read_row)?;
    rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
        .collect()
}

pub(crate) fn next_seq(tx: &rusqlite::Transaction<'_>, session: Uuid) -> Result<i64, StoreError> {
    tx.query_row(
        "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        [session.to_string()],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::Corrupt(format!("session {session} does not exist")))
}

type RowResult = Result<StoredMessage, StoreError>;

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RowResult> {
    let role: String = row.get(1)?;
    let reply_id: Option<String> = row.get(4)?;
    let citations: Option<String> = row.get(5)?;
    let grounded: Option<bool> = row.get(6)?;
    let kind: Option<String> = row.get(7)?;
    let text: String = row.get(2)?;
    let seq: i64 = row.get(0)?;
    let client_id: Option<String> = row.get(3)?;
    let created_at_ms: i64 = row.get(8)?;
    let intent: Option<String> = row.get(9)?;
    let sentiment: Option<String> = row.get(10)?;
    let author: Option<String> = row.get(11)?;
    let offer: Option<String> = row.get(12)?;
    let demand: Option<String> = row.get(13)?;
    Ok((|| {
        let understood = match (intent, sentiment) {
            (Some(intent), Some(sentiment)) => Some(Understood {
                intent: serde_json::from_str::<Intent>(&intent)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                sentiment: serde_json::from_str::<Sentiment>(&sentiment)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                demand: demand
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                    .unwrap_or_default(),
                embedding: Vec::new(),
            }),
            _ => None,
        };
        let role = Role::parse(&role)?;
        let reply = match (role, reply_id) {
            (Role::Bot, Some(id)) => Some(BotReply {
                reply_id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                text: text.clone(),
                citations: serde_json::from_str(citations.as_deref().unwrap_or("[]"))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                grounded: grounded.unwrap_or(false),
                kind: serde_json::from_value(serde_json::Value::String(
                    kind.clone().unwrap_or_default(),
                ))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                offer: None,
                quick_replies: Vec::new(),
            }),
            _ => None,
        };
        let reply = match (reply, offer) {
            (Some(reply), Some(offer)) => {
                let (offer, quick_replies): (Offer, Vec<String>) =
                    serde_json::from_str(&offer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Some(BotReply {
                    offer: Some(offer),
                    quick_replies,
                    ..reply
                })
            }
            (reply, _) => reply,
        };
        let event = match role {
            Role::Event => Some(conversations::ConversationEvent::parse(
                kind.as_deref().unwrap_or_default(),
            )?),
            _ => None,
        };
        Ok(StoredMessage {
            seq,
            role,
            text,
            client_id,
            reply,
            understood,
            author,
            event,
            created_at_ms,
        })
    })())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
