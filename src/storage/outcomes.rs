//! How each conversation ended, for the insights: derived from what is
//! stored (who joined, how it was closed, the bot's last reply, when the
//! customer last wrote), so the rules can change without a migration.

use serde::{Deserialize, Serialize};

/// How a conversation ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationOutcome {
    /// No person joined: the customer said they were done after an answer,
    /// or nobody was asked for, the bot's last reply answered and the
    /// customer left without rating it 1 or 2.
    ResolvedByBot,
    /// A person closed it as resolved.
    ResolvedWithPerson,
    /// Closed as unresolved, or it went quiet after the bot could not help,
    /// or a person joined and never closed it, or it was rated 1 or 2.
    Unresolved,
    /// The customer waited for a person who never joined, and left.
    Abandoned,
    /// The customer wrote again after it was closed.
    Reopened,
    /// Still going: someone wrote within the abandonment window.
    Open,
}

impl ConversationOutcome {
    pub const ALL: [ConversationOutcome; 6] = [
        ConversationOutcome::ResolvedByBot,
        ConversationOutcome::ResolvedWithPerson,
        ConversationOutcome::Unresolved,
        ConversationOutcome::Abandoned,
        ConversationOutcome::Reopened,
        ConversationOutcome::Open,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationOutcome::ResolvedByBot => "resolved_by_bot",
            ConversationOutcome::ResolvedWithPerson => "resolved_with_person",
            ConversationOutcome::Unresolved => "unresolved",
            ConversationOutcome::Abandoned => "abandoned",
            ConversationOutcome::Reopened => "reopened",
            ConversationOutcome::Open => "open",
        }
    }

    /// Whether the conversation is over and was resolved.
    pub fn is_resolved(self) -> bool {
        matches!(
            self,
            ConversationOutcome::ResolvedByBot | ConversationOutcome::ResolvedWithPerson
        )
    }
}

/// When a conversation counts as over: now, and how long it may be quiet.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    pub now_ms: i64,
    pub abandoned_after_ms: i64,
}

impl Judging {
    /// Judged now, a conversation quiet for `abandoned_after_mins` being over.
    pub fn now(abandoned_after_mins: u32) -> Judging {
        Judging {
            now_ms: super::now_ms(),
            abandoned_after_ms: i64::from(abandoned_after_mins) * 60_000,
        }
    }
}

/// What the outcome is judged from, per conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeFacts {
    pub person_joined: bool,
    /// While the conversation is closed: `resolved` or `unresolved` (by a
    /// person), or `solved` (the customer ended it after an answer).
    pub closed_as: Option<String>,
    /// The customer wrote after it was closed.
    pub reopened: bool,
    pub flagged: bool,
    /// A person has it now.
    pub with_agent: bool,
    /// The kind of the bot's last reply (`extractive`, `no_answer`, …).
    pub last_bot_kind: Option<String>,
    pub rating: Option<i64>,
    pub last_message_ms: i64,
}

/// Bot replies after which a quiet customer was not helped.
const NOT_HELPED: &[&str] = &["no_answer", "declined", "busy", "clarify", "handoff"];

/// The outcome of one conversation.
pub fn outcome_of(facts: &OutcomeFacts, judging: Judging) -> ConversationOutcome {
    use ConversationOutcome::*;
    if facts.reopened {
        return Reopened;
    }
    match facts.closed_as.as_deref() {
        Some("solved") if !facts.person_joined => return ResolvedByBot,
        Some("resolved" | "solved") => return ResolvedWithPerson,
        Some(_) => return Unresolved,
        None => {}
    }
    if judging.now_ms - facts.last_message_ms < judging.abandoned_after_ms {
        return Open;
    }
    // Quiet for long enough: the conversation is over.
    if facts.person_joined || facts.with_agent {
        return Unresolved;
    }
    if facts.flagged {
        return Abandoned;
    }
    let unhappy = facts.rating.is_some_and(|r| r <= 2);
    let helped = facts
        .last_bot_kind
        .as_deref()
        .is_some_and(|k| !NOT_HELPED.contains(&k));
    if helped && !unhappy {
        ResolvedByBot
    } else {
        Unresolved
    }
}

/// The SQL columns of `OutcomeFacts` for a session aliased `s`, in order.
pub const FACT_COLUMNS: &str = "EXISTS (SELECT 1 FROM messages e WHERE e.session_id = s.id
        AND e.role = 'event' AND e.kind = 'agent_joined'),
    CASE WHEN s.status = 'closed' AND s.agent IS NULL THEN 'solved'
         WHEN s.status = 'closed' THEN s.outcome END,
    EXISTS (SELECT 1 FROM messages e JOIN messages c ON c.session_id = e.session_id
        WHERE e.session_id = s.id AND e.role = 'event' AND e.kind = 'closed'
          AND c.role = 'customer' AND c.seq > e.seq),
    s.flag_reason IS NOT NULL,
    s.status = 'agent',
    (SELECT b.kind FROM messages b WHERE b.session_id = s.id AND b.role = 'bot'
        ORDER BY b.seq DESC LIMIT 1),
    s.rating,
    COALESCE(s.last_at_ms, s.created_at_ms)";

/// Reads `FACT_COLUMNS` starting at column `at`.
pub fn read_facts(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<OutcomeFacts> {
    Ok(OutcomeFacts {
        person_joined: row.get(at)?,
        closed_as: row.get(at + 1)?,
        reopened: row.get(at + 2)?,
        flagged: row.get(at + 3)?,
        with_agent: row.get(at + 4)?,
        last_bot_kind: row.get(at + 5)?,
        rating: row.get(at + 6)?,
        last_message_ms: row.get(at + 7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationOutcome::*;

    const MINUTE: i64 = 60_000;
    const JUDGING: Judging = Judging {
        now_ms: 100 * MINUTE,
        abandoned_after_ms: 30 * MINUTE,
    };

    fn quiet(facts: OutcomeFacts) -> OutcomeFacts {
        OutcomeFacts {
            last_message_ms: 10 * MINUTE,
            ..facts
        }
    }

    fn answered() -> OutcomeFacts {
        quiet(OutcomeFacts {
            last_bot_kind: Some("extractive".into()),
            ..OutcomeFacts::default()
        })
    }

    #[test]
    fn each_way_a_conversation_ends() {
        assert_eq!(outcome_of(&answered(), JUDGING), ResolvedByBot);
        let recent = OutcomeFacts {
            last_message_ms: 90 * MINUTE,
            ..answered()
        };
        assert_eq!(outcome_of(&recent, JUDGING), Open);
        let not_found = OutcomeFacts {
            last_bot_kind: Some("no_answer".into()),
            ..answered()
        };
        assert_eq!(outcome_of(&not_found, JUDGING), Unresolved);
        let rated_badly = OutcomeFacts {
            rating: Some(1),
            ..answered()
        };
        assert_eq!(outcome_of(&rated_badly, JUDGING), Unresolved);
        let waited = OutcomeFacts {
            flagged: true,
            last_bot_kind: Some("handoff".into()),
            ..answered()
        };
        assert_eq!(outcome_of(&waited, JUDGING), Abandoned);
        let joined_never_closed = OutcomeFacts {
            person_joined: true,
            ..waited.clone()
        };
        assert_eq!(outcome_of(&joined_never_closed, JUDGING), Unresolved);
        let closed = OutcomeFacts {
            person_joined: true,
            closed_as: Some("resolved".into()),
            // Closing is final whatever the time.
            last_message_ms: 99 * MINUTE,
            ..waited.clone()
        };
        assert_eq!(outcome_of(&closed, JUDGING), ResolvedWithPerson);
        let closed_unresolved = OutcomeFacts {
            closed_as: Some("unresolved".into()),
            ..closed.clone()
        };
        assert_eq!(outcome_of(&closed_unresolved, JUDGING), Unresolved);
        let said_bye = OutcomeFacts {
            closed_as: Some("solved".into()),
            last_message_ms: 99 * MINUTE,
            ..answered()
        };
        assert_eq!(outcome_of(&said_bye, JUDGING), ResolvedByBot);
        let reopened = OutcomeFacts {
            reopened: true,
            closed_as: None,
            ..closed
        };
        assert_eq!(outcome_of(&reopened, JUDGING), Reopened);
    }
}
