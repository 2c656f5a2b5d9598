//! Who handles a conversation (the bot, a person, nobody once closed), the
//! agents' messages and the events of a hand-over, and the console's list.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ConversationListRow, Role, Store, StoreError, StoredMessage, next_seq, now_ms, read_flag,
};

/// Something that happened to a conversation, stored in its transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationEvent {
    /// A person took the conversation over from the bot.
    AgentJoined,
    /// The person handed the conversation back to the bot.
    AgentLeft,
    /// A person closed the conversation with an outcome.
    Closed,
    /// The shop cancelled an order at the customer's request, in the chat.
    OrderCancelled,
    /// The shop registered a return the customer asked for in the chat.
    ReturnStarted,
    /// The customer rated the conversation.
    Rated,
}

impl ConversationEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentJoined => "agent_joined",
            Self::AgentLeft => "agent_left",
            Self::Closed => "closed",
            Self::OrderCancelled => "order_cancelled",
            Self::ReturnStarted => "return_started",
            Self::Rated => "rated",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        [
            Self::AgentJoined,
            Self::AgentLeft,
            Self::Closed,
            Self::OrderCancelled,
            Self::ReturnStarted,
            Self::Rated,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown conversation event {s:?}")))
    }

    /// What the customer reads of a hand-over event (an order event's
    /// words come from the shop's answer).
    fn text(self, agent: &str) -> String {
        match self {
            Self::AgentJoined => format!("{agent} from our team joined the chat"),
            Self::AgentLeft => format!("{agent} handed you back to our assistant"),
            Self::Closed => format!("{agent} closed the conversation"),
            Self::OrderCancelled | Self::ReturnStarted => format!("{agent} changed an order"),
            Self::Rated => format!("{agent} rated the conversation"),
        }
    }
}

/// How a closed conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Resolved,
    Unresolved,
}

/// Who answers the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Bot,
    Agent,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handler {
    pub status: Status,
    /// The agent who has the conversation, or who closed it.
    pub agent: Option<String>,
    pub outcome: Option<Outcome>,
}

impl Handler {
    pub fn bot() -> Handler {
        Handler {
            status: Status::Bot,
            agent: None,
            outcome: None,
        }
    }

    /// The bot may answer: no person has the conversation (a closed one
    /// that the customer writes to again is the bot's).
    pub fn bot_answers(&self) -> bool {
        self.status != Status::Agent
    }
}

/// Why a hand-over was refused.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("no conversation {0}")]
    NotFound(Uuid),
    #[error("{0} already has this conversation")]
    TakenBy(String),
    #[error("take the conversation over before writing or handing it back")]
    NotYours,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for HandoverError {
    fn from(e: rusqlite::Error) -> Self {
        HandoverError::Store(e.into())
    }
}

const LIST_ROW_COLUMNS: &str = "s.id, s.created_at_ms, s.flag_reason, s.flagged_at_ms, m.text, m.created_at_ms, m.role, s.status, s.agent, s.outcome, s.summary, s.customer_id, s.customer_email";

fn read_list_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<ConversationListRow, StoreError>> {
    let id: String = r.get(0)?;
    let created_at_ms: i64 = r.get(1)?;
    let reason: Option<String> = r.get(2)?;
    let at: Option<i64> = r.get(3)?;
    let last_message: Option<String> = r.get(4)?;
    let last_message_at_ms: Option<i64> = r.get(5)?;
    let last_role: Option<String> = r.get(6)?;
    let status: String = r.get(7)?;
    let agent: Option<String> = r.get(8)?;
    let outcome: Option<String> = r.get(9)?;
    let summary: Option<String> = r.get(10)?;
    let customer_id: Option<String> = r.get(11)?;
    let customer_email: Option<String> = r.get(12)?;
    Ok((|| {
        let corrupt = |e: String| StoreError::Corrupt(e);
        let json = |s: &str| serde_json::Value::String(s.to_string());
        Ok(ConversationListRow {
            session_id: Uuid::parse_str(&id).map_err(|e| corrupt(e.to_string()))?,
            created_at_ms,
            flag: read_flag(reason.zip(at))?,
            last_message,
            last_message_at_ms,
            last_role: last_role.as_deref().map(Role::parse).transpose()?,
            handler: Handler {
                status: serde_json::from_value(json(&status))
                    .map_err(|e| corrupt(e.to_string()))?,
                agent,
                outcome: outcome
                    .map(|o| serde_json::from_value(json(&o)).map_err(|e| corrupt(e.to_string())))
                    .transpose()?,
            },
            summary,
            customer: customer_id
                .zip(customer_email)
                .map(|(id, email)| super::shop_records::Customer { id, email }),
        })
    })())
}

fn handler_in(conn: &rusqlite::Connection, session: Uuid) -> Result<Handler, HandoverError> {
    let id = session.to_string();
    let row: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT status, agent FROM sessions WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (status, agent) = row.ok_or(HandoverError::NotFound(session))?;
    let status = serde_json::from_value(serde_json::Value::String(status))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Handler {
        status,
        agent,
        outcome: None,
    })
}

/// Appends an agent message or an event inside `tx`.
fn append(
    tx: &rusqlite::Transaction<'_>,
    session: Uuid,
    role: Role,
    text: String,
    agent: &str,
    event: Option<ConversationEvent>,
) -> Result<StoredMessage, StoreError> {
    let seq = next_seq(tx, session)?;
    let created_at_ms = now_ms();
    let role_name = match role {
        Role::Agent => "agent",
        _ => "event",
    };
    tx.execute(
        "INSERT INTO messages (session_id, seq, role, text, kind, author, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            session.to_string(),
            seq,
            role_name,
            text,
            event.map(ConversationEvent::as_str),
            agent,
            created_at_ms
        ],
    )?;
    Ok(StoredMessage {
        seq,
        role,
        text,
        client_id: None,
        reply: None,
        understood: None,
        author: Some(agent.to_string()),
        event,
        created_at_ms,
    })
}

/// Who causes an event the bot did.
pub const ASSISTANT: &str = "assistant";
/// Who causes an event the customer did.
pub const CUSTOMER: &str = "customer";

impl Store {
    /// Stores what the shop did at the customer's request in the chat (an
    /// order cancelled, a return registered) as an event of the transcript,
    /// caused by the assistant.
    pub async fn append_order_event(
        &self,
        session: Uuid,
        event: ConversationEvent,
        text: String,
    ) -> Result<StoredMessage, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let stored = append(&tx, session, Role::Event, text, ASSISTANT, Some(event))?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// The customer ended an answered conversation ("that's all, bye"): it
    /// closes as solved, with no agent, stored as a `closed` event saying
    /// `text`. `None` when it is not the bot's to close (a person has it,
    /// or it is closed already).
    pub async fn close_solved(
        &self,
        session: Uuid,
        text: String,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "UPDATE sessions SET status = 'closed', agent = NULL, outcome = 'resolved'
                 WHERE id = ?1 AND status = 'bot'",
                [session.to_string()],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            let stored = append(
                &tx,
                session,
                Role::Event,
                text,
                CUSTOMER,
                Some(ConversationEvent::Closed),
            )?;
            tx.commit()?;
            Ok(Some(stored))
        })
        .await
    }

    /// Records the customer's rating of the conversation (the latest
    /// counts) and stores it as an event of the transcript, `text` being
    /// what the console and the widget show.
    pub async fn rate(
        &self,
        session: Uuid,
        score: u8,
        comment: Option<String>,
        text: String,
    ) -> Result<StoredMessage, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE sessions SET rating = ?2, rating_comment = ?3 WHERE id = ?1",
                params![session.to_string(), score, comment],
            )?;
            let stored = append(
                &tx,
                session,
                Role::Event,
                text,
                CUSTOMER,
                Some(ConversationEvent::Rated),
            )?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }
}

fn append_event(
    tx: &rusqlite::Transaction<'_>,
    session: Uuid,
    agent: &str,
    event: ConversationEvent,
) -> Result<StoredMessage, StoreError> {
    append(
        tx,
        session,
        Role::Event,
        event.text(agent),
        agent,
        Some(event),
    )
}

impl Store {
    /// Conversations, flagged and waiting for a person first, then the most
    /// recently active.
    pub async fn conversations(
        &self,
        limit: usize,
    ) -> Result<Vec<ConversationListRow>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {LIST_ROW_COLUMNS} FROM sessions s
                 LEFT JOIN messages m ON m.session_id = s.id AND m.seq = s.last_seq
                 ORDER BY (s.flag_reason IS NULL OR s.status = 'closed'),
                          COALESCE(s.last_at_ms, s.created_at_ms) DESC
                 LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], read_list_row)?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
                .collect()
        })
        .await
    }

    /// One conversation as the console lists it.
    pub async fn conversation(
        &self,
        session: Uuid,
    ) -> Result<Option<ConversationListRow>, StoreError> {
        self.run(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {LIST_ROW_COLUMNS} FROM sessions s
                     LEFT JOIN messages m ON m.session_id = s.id AND m.seq = s.last_seq
                     WHERE s.id = ?1"
                ),
                [session.to_string()],
                read_list_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    /// Every message of a conversation, oldest first.
    pub async fn transcript(&self, session: Uuid) -> Result<Vec<StoredMessage>, StoreError> {
        self.messages_after(session, 0).await
    }

    pub async fn handler(&self, session: Uuid) -> Result<Handler, HandoverError> {
        self.run(move |conn| handler_in(conn, session)).await
    }

    /// `agent` takes the conversation from the bot (or from nobody, once
    /// closed). Taking it again is harmless; another agent's is refused.
    /// Returns the `agent_joined` event, or `None` when it was already theirs.
    pub async fn take_over(
        &self,
        session: Uuid,
        agent: String,
    ) -> Result<Option<StoredMessage>, HandoverError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let handler = handler_in(&tx, session)?;
            match (handler.status, handler.agent) {
                (Status::Agent, Some(current)) if current == agent => return Ok(None),
                (Status::Agent, Some(current)) => return Err(HandoverError::TakenBy(current)),
                _ => {}
            }
            tx.execute(
                "UPDATE sessions SET status = 'agent', agent = ?2, outcome = NULL WHERE id = ?1",
                params![session.to_string(), agent],
            )?;
            let event = ConversationEvent::AgentJoined;
            let stored = append_event(&tx, session, &agent, event)?;
            tx.commit()?;
            Ok(Some(stored))
        })
        .await
    }

    /// Stores a message from the agent who has the conversation.
    pub async fn append_agent(
        &self,
        session: Uuid,
        agent: String,
        text: String,
    ) -> Result<StoredMessage, HandoverError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            require_agent(&tx, session, &agent)?;
            let stored = append(&tx, session, Role::Agent, text, &agent, None)?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// Gives the conversation back to the bot, or closes it with an outcome.
    pub async fn release(
        &self,
        session: Uuid,
        agent: String,
        outcome: Option<Outcome>,
    ) -> Result<StoredMessage, HandoverError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let handler = handler_in(&tx, session)?;
            // Closing needs no takeover: an agent may close a conversation the bot has.
            if outcome.is_none() || handler.status == Status::Agent {
                require_agent(&tx, session, &agent)?;
            }
            let (status, event) = match outcome {
                None => ("bot", ConversationEvent::AgentLeft),
                Some(_) => ("closed", ConversationEvent::Closed),
            };
            let outcome_name = outcome.map(|o| match o {
                Outcome::Resolved => "resolved",
                Outcome::Unresolved => "unresolved",
            });
            tx.execute(
                "UPDATE sessions SET status = ?2, agent = ?3, outcome = ?4 WHERE id = ?1",
                params![
                    session.to_string(),
                    status,
                    outcome.map(|_| agent.as_str()),
                    outcome_name
                ],
            )?;
            let stored = append_event(&tx, session, &agent, event)?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// Keeps what the bot gathered for the agent; the first summary of a
    /// hand-off is replaced as the conversation goes on.
    pub async fn set_summary(&self, session: Uuid, summary: String) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE sessions SET summary = ?2 WHERE id = ?1",
                params![session.to_string(), summary],
            )?;
            Ok(())
        })
        .await
    }
}

fn require_agent(
    conn: &rusqlite::Connection,
    session: Uuid,
    agent: &str,
) -> Result<(), HandoverError> {
    let handler = handler_in(conn, session)?;
    match (handler.status, handler.agent) {
        (Status::Agent, Some(current)) if current == agent => Ok(()),
        (Status::Agent, Some(current)) => Err(HandoverError::TakenBy(current)),
        _ => Err(HandoverError::NotYours),
    }
}
