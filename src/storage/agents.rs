//! Agent accounts (argon2 password hashes) and their sign-in sessions
//! (only a token's SHA-256 is stored, so a copy of the database signs
//! nobody in).

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, now_ms};

pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Creates the account or replaces its password. Returns true if it is new.
    pub fn upsert_agent_blocking(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let existed = conn
            .query_row("SELECT 1 FROM agents WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        conn.execute(
            "INSERT INTO agents (name, password_hash, created_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
            params![name, password_hash, now_ms()],
        )?;
        // A new password signs out every browser that knew the old one.
        conn.execute("DELETE FROM agent_sessions WHERE agent = ?1", [name])?;
        Ok(!existed)
    }

    /// Every agent's name, with how many sign-ins are open.
    pub fn agents_blocking(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT a.name, (SELECT COUNT(*) FROM agent_sessions s
                             WHERE s.agent = a.name AND s.expires_at_ms > ?1)
             FROM agents a ORDER BY a.name",
        )?;
        let rows = stmt.query_map([now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes an account; its sign-ins go with it (`ON DELETE CASCADE`).
    /// Returns false if there was none.
    pub fn remove_agent_blocking(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .execute("DELETE FROM agents WHERE name = ?1", [name])?
            > 0)
    }

    pub async fn agent_password_hash(&self, name: String) -> Result<Option<String>, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT password_hash FROM agents WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    pub async fn agent_count(&self) -> Result<i64, StoreError> {
        self.run(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM agents", [], |r| r.get(0))?))
            .await
    }

    pub async fn start_agent_session(
        &self,
        token: &str,
        agent: String,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let digest = token_digest(token);
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM agent_sessions WHERE expires_at_ms < ?1",
                [now_ms()],
            )?;
            conn.execute(
                "INSERT INTO agent_sessions (token_sha256, agent, expires_at_ms) VALUES (?1, ?2, ?3)",
                params![digest, agent, expires_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// The agent a sign-in token belongs to, if it is valid and unexpired.
    pub async fn agent_of_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let digest = token_digest(token);
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT agent FROM agent_sessions WHERE token_sha256 = ?1 AND expires_at_ms > ?2",
                    params![digest, now_ms()],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    pub async fn end_agent_session(&self, token: &str) -> Result<(), StoreError> {
        let digest = token_digest(token);
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM agent_sessions WHERE token_sha256 = ?1",
                [digest],
            )?;
            Ok(())
        })
        .await
    }
}
