//! One customer's data on request (export, erasure), conversations past
//! the retention period, and the audit record of each: who did it, when,
//! to how many conversations, never what they held.

use rusqlite::{Connection, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Role, Store, StoreError, now_ms};

/// Whose data: one conversation, or every conversation in which the
/// customer wrote an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Session(Uuid),
    Email(String),
}

impl Subject {
    fn selector(&self) -> &'static str {
        match self {
            Subject::Session(_) => "session",
            Subject::Email(_) => "email",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyAction {
    Export,
    Erase,
    Retention,
}

impl PrivacyAction {
    fn as_str(self) -> &'static str {
        match self {
            PrivacyAction::Export => "export",
            PrivacyAction::Erase => "erase",
            PrivacyAction::Retention => "retention",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "export" => Ok(PrivacyAction::Export),
            "erase" => Ok(PrivacyAction::Erase),
            "retention" => Ok(PrivacyAction::Retention),
            other => Err(StoreError::Corrupt(format!(
                "unknown privacy action {other:?}"
            ))),
        }
    }
}

/// One line of the privacy audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub at_ms: i64,
    pub actor: String,
    pub action: PrivacyAction,
    /// How the conversations were chosen: `session`, `email` or `age`.
    pub selector: String,
    pub conversations: usize,
}

/// A conversation as exported: every stored message, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedConversation {
    pub session_id: Uuid,
    pub created_at_ms: i64,
    pub messages: Vec<ExportedMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedMessage {
    pub seq: i64,
    pub role: Role,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub at_ms: i64,
}

impl Store {
    /// Every message of each of the subject's conversations, oldest
    /// conversation first, and the audit record of the export.
    pub async fn export(
        &self,
        subject: Subject,
        actor: String,
    ) -> Result<Vec<ExportedConversation>, StoreError> {
        let selector = subject.selector();
        let sessions = self.run(move |conn| sessions_of(conn, &subject)).await?;
        let mut out = Vec::with_capacity(sessions.len());
        for id in sessions {
            let created_at_ms = self.conversation(id).await?.map_or(0, |c| c.created_at_ms);
            let messages = self
                .transcript(id)
                .await?
                .into_iter()
                .map(|m| ExportedMessage {
                    seq: m.seq,
                    role: m.role,
                    text: m.text,
                    author: m.author,
                    at_ms: m.created_at_ms,
                })
                .collect();
            out.push(ExportedConversation {
                session_id: id,
                created_at_ms,
                messages,
            });
        }
        let exported = out.len();
        self.run(move |conn| audit(conn, &actor, PrivacyAction::Export, selector, exported))
            .await?;
        Ok(out)
    }

    /// Deletes the subject's conversations and everything derived from
    /// them (knowledge-base gaps, the orders looked up), in one transaction, and records who did
    /// it. Returns the conversations erased.
    pub async fn erase(&self, subject: Subject, actor: String) -> Result<Vec<Uuid>, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let sessions = sessions_of(&tx, &subject)?;
            delete_sessions(&tx, &sessions)?;
            audit(
                &tx,
                &actor,
                PrivacyAction::Erase,
                subject.selector(),
                sessions.len(),
            )?;
            tx.commit()?;
            Ok(sessions)
        })
        .await
    }

    /// Deletes conversations whose last message (or start, if empty) is
    /// older than `cutoff_ms`, with everything derived from them. Returns
    /// the conversations deleted.
    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<Vec<Uuid>, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let sessions: Vec<Uuid> = {
                let mut stmt = tx.prepare(
                    "SELECT s.id FROM sessions s
                     WHERE COALESCE((SELECT MAX(created_at_ms) FROM messages m
                                     WHERE m.session_id = s.id), s.created_at_ms) < ?1",
                )?;
                let ids = stmt.query_map([cutoff_ms], |r| r.get::<_, String>(0))?;
                ids.map(|id| parse_id(&id?)).collect::<Result<_, _>>()?
            };
            if !sessions.is_empty() {
                delete_sessions(&tx, &sessions)?;
                audit(
                    &tx,
                    "retention",
                    PrivacyAction::Retention,
                    "age",
                    sessions.len(),
                )?;
            }
            tx.commit()?;
            Ok(sessions)
        })
        .await
    }

    /// The latest `limit` audit records, newest first.
    pub async fn privacy_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT at_ms, actor, action, selector, conversations FROM privacy_audit
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            rows.map(|row| {
                let (at_ms, actor, action, selector, conversations) = row?;
                Ok(AuditRecord {
                    at_ms,
                    actor,
                    action: PrivacyAction::parse(&action)?,
                    selector,
                    conversations: conversations as usize,
                })
            })
            .collect()
        })
        .await
    }
}

fn parse_id(id: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(id).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn sessions_of(conn: &Connection, subject: &Subject) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<String> = match subject {
        Subject::Session(id) => {
            let mut stmt = conn.prepare("SELECT id FROM sessions WHERE id = ?1")?;
            stmt.query_map([id.to_string()], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        }
        Subject::Email(address) => {
            // Case-insensitive: where the customer wrote it, or the shop's
            // site vouched for it (a signed identity).
            let mut stmt = conn.prepare(
                "SELECT s.id FROM sessions s WHERE lower(s.customer_email) = lower(?1) OR EXISTS (
                     SELECT 1 FROM messages m WHERE m.session_id = s.id
                     AND m.role = 'customer' AND instr(lower(m.text), lower(?1)) > 0)
                 ORDER BY s.created_at_ms",
            )?;
            stmt.query_map([address.trim()], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        }
    };
    ids.iter().map(|id| parse_id(id)).collect()
}

fn delete_sessions(conn: &Connection, sessions: &[Uuid]) -> Result<(), StoreError> {
    let mut gaps = conn.prepare_cached("DELETE FROM gaps WHERE session_id = ?1")?;
    let mut orders =
        conn.prepare_cached("DELETE FROM conversation_orders WHERE session_id = ?1")?;
    let mut messages = conn.prepare_cached("DELETE FROM messages WHERE session_id = ?1")?;
    let mut session = conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?;
    for id in sessions {
        let id = id.to_string();
        gaps.execute([&id])?;
        orders.execute([&id])?;
        messages.execute([&id])?;
        session.execute([&id])?;
    }
    Ok(())
}

fn audit(
    conn: &Connection,
    actor: &str,
    action: PrivacyAction,
    selector: &str,
    conversations: usize,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO privacy_audit (at_ms, actor, action, selector, conversations)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now_ms(),
            actor,
            action.as_str(),
            selector,
            conversations as i64
        ],
    )?;
    Ok(())
}
