//! Websocket protocol v1: JSON text frames with a `type` field.
//! `docs/protocol.md` documents every frame; keep the two in step.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::knowledge::Citation;
use crate::storage::conversations::{ConversationEvent, Status};
use crate::storage::{ReplyKind, Role, StoredMessage};
use crate::understanding::intent::Intent;
use crate::understanding::sentiment::Sentiment;

/// Longest accepted client message id.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Stable error codes; clients may switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// The frame is JSON but not an object with a string `type`, or its fields are wrong.
    InvalidFrame,
    /// `type` names no client frame.
    UnknownType,
    /// A message's text is empty or only whitespace.
    EmptyMessage,
    /// A message's text is longer than the configured limit.
    MessageTooLong,
    /// `session_id` is not a UUID.
    InvalidSessionId,
    /// `visitor_id` is not a UUID.
    InvalidVisitorId,
    /// `hello` after the connection already joined a session.
    SessionAlreadyStarted,
    /// A `rating` before the connection has a conversation to rate.
    NoConversation,
    /// Binary frames are not part of the protocol.
    UnsupportedFrame,
    /// Too many messages from this address, or too many unanswered in this
    /// session: the message was not stored; send it again later.
    RateLimited,
    /// The `hello`'s customer identity is not signed with the shop's
    /// secret: the chat goes on without it, as an anonymous visitor.
    IdentityRefused,
    /// Something failed on the server; the message was not lost if it was acknowledged.
    Internal,
}

/// A frame from the widget, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Hello {
        session_id: Option<Uuid>,
        last_seq: i64,
        /// Who the shop's site says the customer is, signed.
        identity: Option<super::identity::Identity>,
        /// The widget's random id for this browser: an anonymous
        /// customer's conversations are gathered by it.
        visitor_id: Option<Uuid>,
    },
    Message {
        id: String,
        text: String,
    },
    /// The customer's rating of the conversation, 1 to 5.
    Rating {
        score: u8,
        comment: Option<String>,
    },
    Ping,
}

/// A refused frame: what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    /// The client id of the refused message, when it could be read.
    pub id: Option<String>,
}

impl FrameError {
    fn new(code: ErrorCode, message: impl Into<String>) -> FrameError {
        FrameError {
            code,
            message: message.into(),
            id: None,
        }
    }
}

/// Accepts string or integer ids, since widgets use both.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawFrame {
    Hello {
        session_id: Option<String>,
        last_seq: Option<i64>,
        #[serde(default)]
        identity: Option<super::identity::Identity>,
        #[serde(default)]
        visitor_id: Option<String>,
    },
    Message {
        id: RawId,
        text: String,
    },
    Rating {
        score: i64,
        #[serde(default)]
        comment: Option<String>,
    },
    Ping,
}

const KNOWN_TYPES: &[&str] = &["hello", "message", "rating", "ping"];

/// Parses and validates one text frame.
pub fn parse_client_frame(text: &str, max_message_bytes: usize) -> Result<ClientFrame, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        FrameError::new(
            ErrorCode::InvalidJson,
            format!("frame is not valid JSON: {e}"),
        )
    })?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            FrameError::new(
                ErrorCode::InvalidFrame,
                "frame must be a JSON object with a string `type`",
            )
        })?;
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        return Err(FrameError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown frame type {kind:?}; expected one of {}",
                KNOWN_TYPES.join(", ")
            ),
        ));
    }
    let id_hint = match value.get("id") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let raw: RawFrame = serde_json::from_value(value).map_err(|e| FrameError {
        code: ErrorCode::InvalidFrame,
        message: format!("invalid {kind} frame: {e}"),
        id: id_hint.clone(),
    })?;
    match raw {
        RawFrame::Hello {
            session_id,
            last_seq,
            identity,
            visitor_id,
        } => {
            let uuid = |field: &str, code: ErrorCode, value: Option<String>| {
                value
                    .map(|s| {
                        Uuid::parse_str(&s).map_err(|_| {
                            FrameError::new(code, format!("{field} {s:?} is not a UUID"))
                        })
                    })
                    .transpose()
            };
            Ok(ClientFrame::Hello {
                session_id: uuid("session_id", ErrorCode::InvalidSessionId, session_id)?,
                last_seq: last_seq.unwrap_or(0).max(0),
                identity,
                visitor_id: uuid("visitor_id", ErrorCode::InvalidVisitorId, visitor_id)?,
            })
        }
        RawFrame::Message { id, text } => {
            let id = match id {
                RawId::Text(s) => s,
                RawId::Number(n) => n.to_string(),
            };
            let with_id = |code, message: String| FrameError {
                code,
                message,
                id: Some(id.clone()),
            };
            if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN {
                return Err(with_id(
                    ErrorCode::InvalidFrame,
                    format!("message id must be 1 to {MAX_CLIENT_ID_LEN} characters"),
                ));
            }
            if let Err((code, message)) = check_message_text(&text, max_message_bytes) {
                return Err(with_id(code, message));
            }
            Ok(ClientFrame::Message {
                id,
                text: text.trim().to_string(),
            })
        }
        RawFrame::Rating { score, comment } => {
            let score = u8::try_from(score)
                .ok()
                .filter(|s| (1..=5).contains(s))
                .ok_or_else(|| {
                    FrameError::new(ErrorCode::InvalidFrame, "a rating's score is 1 to 5")
                })?;
            let comment = comment
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty());
            if let Some(c) = &comment
                && c.len() > max_message_bytes
            {
                return Err(FrameError::new(
                    ErrorCode::MessageTooLong,
                    format!(
                        "comment is {} bytes; the limit is {max_message_bytes}",
                        c.len()
                    ),
                ));
            }
            Ok(ClientFrame::Rating { score, comment })
        }
        RawFrame::Ping => Ok(ClientFrame::Ping),
    }
}

/// A message's text must not be blank nor over `max_bytes`: the rule for
/// customers' messages and agents' alike.
pub fn check_message_text(text: &str, max_bytes: usize) -> Result<(), (ErrorCode, String)> {
    if text.trim().is_empty() {
        return Err((ErrorCode::EmptyMessage, "message text is empty".into()));
    }
    if text.len() > max_bytes {
        return Err((
            ErrorCode::MessageTooLong,
            format!("message is {} bytes; the limit is {max_bytes}", text.len()),
        ));
    }
    Ok(())
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        session_id: Uuid,
        resumed: bool,
        /// Highest seq stored for the session.
        last_seq: i64,
        /// Who answers now: `bot`, `agent` (a person) or `closed`.
        handled_by: Status,
        /// The person answering, when `handled_by` is `agent`.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// What the widget shows before the first message, and the
        /// questions it suggests (the shop's `replies.yaml`).
        greeting: String,
        suggestions: Vec<String>,
    },
    History(HistoryEntry),
    Ack {
        id: String,
        seq: i64,
        duplicate: bool,
    },
    Token {
        reply_id: Uuid,
        text: String,
    },
    Reply {
        reply_id: Uuid,
        /// Client id of the message this answers.
        reply_to: Option<String>,
        seq: i64,
        text: String,
        citations: Vec<Citation>,
        grounded: bool,
        kind: ReplyKind,
        /// Buttons for the reply's offer (a person, which of two articles);
        /// each sends its label as a message.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        quick_replies: Vec<String>,
        /// What the answered message was understood as.
        #[serde(skip_serializing_if = "Option::is_none")]
        intent: Option<Intent>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sentiment: Option<Sentiment>,
    },
    /// A streaming reply that was stopped (a person took over); drop its draft.
    ReplyCancelled {
        reply_id: Uuid,
    },
    /// A message from a person of the shop.
    AgentMessage {
        seq: i64,
        agent: String,
        text: String,
        at: i64,
    },
    /// A person joined, handed back to the bot, or closed the conversation.
    Event {
        seq: i64,
        event: ConversationEvent,
        agent: String,
        text: String,
        at: i64,
    },
    /// A person is typing; not stored.
    Typing {
        agent: String,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Pong,
}

/// A stored message replayed to a (re)connecting client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub seq: i64,
    pub role: Role,
    pub text: String,
    /// Customer message: its client id. Bot reply: the client id it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<Citation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grounded: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReplyKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    /// A customer message's kind and the products and aspects it raises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demand: Option<crate::understanding::demand::Demand>,
    /// The person who wrote an agent message or caused an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<ConversationEvent>,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

impl From<&StoredMessage> for HistoryEntry {
    fn from(m: &StoredMessage) -> HistoryEntry {
        HistoryEntry {
            seq: m.seq,
            role: m.role,
            text: m.text.clone(),
            id: m.client_id.clone(),
            reply_id: m.reply.as_ref().map(|r| r.reply_id),
            citations: m.reply.as_ref().map(|r| r.citations.clone()),
            grounded: m.reply.as_ref().map(|r| r.grounded),
            kind: m.reply.as_ref().map(|r| r.kind),
            quick_replies: m
                .reply
                .as_ref()
                .map(|r| r.quick_replies.clone())
                .unwrap_or_default(),
            intent: m.understood.as_ref().map(|u| u.intent.clone()),
            sentiment: m.understood.as_ref().map(|u| u.sentiment.clone()),
            demand: m
                .understood
                .as_ref()
                .filter(|u| u.demand.kind.is_some())
                .map(|u| u.demand.clone()),
            agent: m.author.clone(),
            event: m.event,
            at: m.created_at_ms,
        }
    }
}

impl ServerFrame {
    pub fn error(e: FrameError) -> ServerFrame {
        ServerFrame::Error {
            code: e.code,
            message: e.message,
            id: e.id,
        }
    }

    pub fn reply(m: &StoredMessage) -> Option<ServerFrame> {
        let r = m.reply.as_ref()?;
        Some(ServerFrame::Reply {
            reply_id: r.reply_id,
            reply_to: m.client_id.clone(),
            seq: m.seq,
            text: r.text.clone(),
            citations: r.citations.clone(),
            grounded: r.grounded,
            kind: r.kind,
            quick_replies: r.quick_replies.clone(),
            intent: m.understood.as_ref().map(|u| u.intent.clone()),
            sentiment: m.understood.as_ref().map(|u| u.sentiment.clone()),
        })
    }

    /// The live frame of a stored agent message or event.
    pub fn from_person(m: &StoredMessage) -> Option<ServerFrame> {
        let agent = m.author.clone()?;
        Some(match (m.role, m.event) {
            (Role::Agent, _) => ServerFrame::AgentMessage {
                seq: m.seq,
                agent,
                text: m.text.clone(),
                at: m.created_at_ms,
            },
            (Role::Event, Some(event)) => ServerFrame::Event {
                seq: m.seq,
                event,
                agent,
                text: m.text.clone(),
                at: m.created_at_ms,
            },
            _ => return None,
        })
    }

    /// The stored message's seq, for frames that carry one.
    pub fn seq(&self) -> Option<i64> {
        match self {
            ServerFrame::Reply { seq, .. }
            | ServerFrame::AgentMessage { seq, .. }
            | ServerFrame::Event { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(text: &str) -> ErrorCode {
        parse_client_frame(text, 4096).unwrap_err().code
    }

    #[test]
    fn each_bad_frame_has_its_code() {
        assert_eq!(code("{not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidFrame);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"message","id":"a"}"#),
            ErrorCode::InvalidFrame
        );
        assert_eq!(
            code(r#"{"type":"message","id":"a","text":"  "}"#),
            ErrorCode::EmptyMessage
        );
        assert_eq!(
            code(r#"{"type":"hello","session_id":"nope"}"#),
            ErrorCode::InvalidSessionId
        );
        assert_eq!(
            code(r#"{"type":"hello","visitor_id":"me, honestly"}"#),
            ErrorCode::InvalidVisitorId
        );
        let long = format!(
            r#"{{"type":"message","id":"a","text":"{}"}}"#,
            "x".repeat(5000)
        );
        assert_eq!(code(&long), ErrorCode::MessageTooLong);
    }

    #[test]
    fn good_frames_parse() {
        assert_eq!(
            parse_client_frame(r#"{"type":"message","id":7,"text":" hi "}"#, 10).unwrap(),
            ClientFrame::Message {
                id: "7".into(),
                text: "hi".into()
            }
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"hello"}"#, 10).unwrap(),
            ClientFrame::Hello {
                session_id: None,
                last_seq: 0,
                identity: None,
                visitor_id: None,
            }
        );
        let visitor = Uuid::new_v4();
        assert_eq!(
            parse_client_frame(
                &format!(r#"{{"type":"hello","visitor_id":"{visitor}"}}"#),
                10
            )
            .unwrap(),
            ClientFrame::Hello {
                session_id: None,
                last_seq: 0,
                identity: None,
                visitor_id: Some(visitor),
            }
        );
        // An identity is parsed whole or the frame is refused.
        let with_identity =
            r#"{"type":"hello","identity":{"customer_id":"c","email":"e@x.nl","signature":"ab"}}"#;
        assert!(matches!(
            parse_client_frame(with_identity, 10),
            Ok(ClientFrame::Hello {
                identity: Some(_),
                ..
            })
        ));
        let unknown_field = r#"{"type":"hello","identity":{"customer_id":"c","email":"e","signature":"ab","admin":true}}"#;
        assert_eq!(
            parse_client_frame(unknown_field, 10).unwrap_err().code,
            ErrorCode::InvalidFrame
        );
    }

    #[test]
    fn error_frame_payload() {
        let frame = ServerFrame::error(FrameError {
            code: ErrorCode::MessageTooLong,
            message: "too long".into(),
            id: Some("m1".into()),
        });
        insta::assert_json_snapshot!(frame, @r#"
        {
          "type": "error",
          "code": "message_too_long",
          "message": "too long",
          "id": "m1"
        }
        "#);
    }

    #[test]
    fn reply_frame_payload() {
        use crate::storage::BotReply;
        use crate::understanding::Understood;
        use crate::understanding::intent::IntentScore;
        use crate::understanding::sentiment::SentimentLabel;
        use crate::understanding::signals::Signal;
        let stored = StoredMessage {
            seq: 2,
            role: Role::Bot,
            text: "I've asked someone from our team to join.".into(),
            client_id: Some("m1".into()),
            reply: Some(BotReply {
                reply_id: Uuid::nil(),
                text: "I've asked someone from our team to join.".into(),
                citations: Vec::new(),
                grounded: false,
                kind: ReplyKind::Handoff,
                offer: None,
                quick_replies: Vec::new(),
            }),
            understood: Some(Understood {
                intent: Intent {
                    name: "contact_human_agent".into(),
                    confidence: 0.5,
                    alternatives: vec![IntentScore {
                        name: "contact_human_agent".into(),
                        confidence: 0.5,
                    }],
                },
                sentiment: Sentiment {
                    label: SentimentLabel::Negative,
                    score: -0.75,
                    signals: vec![Signal::HumanRequest, Signal::RepeatedFailure],
                },
                demand: Default::default(),
                embedding: Vec::new(),
            }),
            author: None,
            event: None,
            created_at_ms: 0,
        };
        insta::assert_json_snapshot!(ServerFrame::reply(&stored).unwrap(), @r#"
        {
          "type": "reply",
          "reply_id": "00000000-0000-0000-0000-000000000000",
          "reply_to": "m1",
          "seq": 2,
          "text": "I've asked someone from our team to join.",
          "citations": [],
          "grounded": false,
          "kind": "handoff",
          "intent": {
            "name": "contact_human_agent",
            "confidence": 0.5,
            "alternatives": [
              {
                "name": "contact_human_agent",
                "confidence": 0.5
              }
            ]
          },
          "sentiment": {
            "label": "negative",
            "score": -0.75,
            "signals": [
              "human_request",
              "repeated_failure"
            ]
          }
        }
        "#);
    }

    #[test]
    fn a_person_joining_is_an_event_frame() {
        let stored = StoredMessage {
            seq: 5,
            role: Role::Event,
            text: "Sam from our team joined the chat".into(),
            client_id: None,
            reply: None,
            understood: None,
            author: Some("Sam".into()),
            event: Some(ConversationEvent::AgentJoined),
            created_at_ms: 7,
        };
        insta::assert_json_snapshot!(ServerFrame::from_person(&stored).unwrap(), @r#"
        {
          "type": "event",
          "seq": 5,
          "event": "agent_joined",
          "agent": "Sam",
          "text": "Sam from our team joined the chat",
          "at": 7
        }
        "#);
        assert_eq!(ServerFrame::from_person(&stored).unwrap().seq(), Some(5));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(s in ".{0,200}") {
            let _ = parse_client_frame(&s, 64);
        }

        #[test]
        fn accepted_messages_respect_the_limit(text in ".{0,100}", limit in 1usize..64) {
            let frame = serde_json::json!({"type": "message", "id": "x", "text": text}).to_string();
            if let Ok(ClientFrame::Message { text, .. }) = parse_client_frame(&frame, limit) {
                prop_assert!(!text.is_empty() && text.len() <= limit);
            }
        }
    }
}
