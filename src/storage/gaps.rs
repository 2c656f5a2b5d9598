//! Questions the bot could not answer well, kept so staff see what to
//! write next.

use rusqlite::params;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Store, StoreError, now_ms};

/// Why a question counts as a gap in the knowledge base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// Nothing in the knowledge base was relevant.
    NoAnswer,
    /// Declined as outside the shop's business.
    Declined,
    /// Answered, but from a passage that only just passed the bar.
    LowScore,
    /// The customer gave up and asked for a person after this question.
    HandedOff,
}

impl GapReason {
    fn as_str(self) -> &'static str {
        match self {
            GapReason::NoAnswer => "no_answer",
            GapReason::Declined => "declined",
            GapReason::LowScore => "low_score",
            GapReason::HandedOff => "handed_off",
        }
    }

    fn parse(s: &str) -> Result<GapReason, StoreError> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| StoreError::Corrupt(format!("unknown gap reason {s:?}")))
    }
}

/// One recorded question.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub session_id: Uuid,
    pub question: String,
    pub reason: GapReason,
    /// The best passage's similarity, when there was one.
    pub score: Option<f32>,
    pub embedding: Option<Vec<f32>>,
    pub at_ms: i64,
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

impl Store {
    /// Keeps a gap of a conversation that still exists (one erased or
    /// retired since the reply keeps nothing of it). Returns whether it did.
    pub async fn record_gap(
        &self,
        session_id: Uuid,
        question: String,
        reason: GapReason,
        score: Option<f32>,
        embedding: Option<Vec<f32>>,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let kept = conn.execute(
                "INSERT INTO gaps (session_id, question, reason, score, embedding, at_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)",
                params![
                    session_id.to_string(),
                    question,
                    reason.as_str(),
                    score,
                    embedding.as_deref().map(to_blob),
                    now_ms()
                ],
            )?;
            Ok(kept == 1)
        })
        .await
    }

    /// The latest `limit` gaps, newest first.
    pub async fn recent_gaps(&self, limit: usize) -> Result<Vec<Gap>, StoreError> {
        self.gaps_since(i64::MIN, limit).await
    }

    /// The latest `limit` gaps recorded at or after `from_ms`, newest first.
    pub async fn gaps_since(&self, from_ms: i64, limit: usize) -> Result<Vec<Gap>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT session_id, question, reason, score, embedding, at_ms FROM gaps
                 WHERE at_ms >= ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![from_ms, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            rows.map(|row| {
                let (session, question, reason, score, embedding, at_ms) = row?;
                Ok(Gap {
                    session_id: Uuid::parse_str(&session)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    question,
                    reason: GapReason::parse(&reason)?,
                    score: score.map(|s| s as f32),
                    embedding: embedding.as_deref().map(from_blob),
                    at_ms,
                })
            })
            .collect()
        })
        .await
    }
}
