//! Staff accounts (argon2 password hashes, a role) and their sign-in
//! sessions (only a token's SHA-256 is stored, so a copy of the database
//! signs nobody in).

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, now_ms};

/// What a staff account may do: an agent works in the console; an admin
/// also edits the knowledge base and answers customers' data requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: agent or admin")),
        }
    }
}

fn role_of(stored: String) -> Role {
    // The schema's CHECK allows only the two.
    stored.parse().unwrap_or(Role::Agent)
}

/// One account, as `frontdesk agent list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// Open, unexpired sign-ins.
    pub signed_in: i64,
}

/// Whose a valid sign-in token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub name: String,
    pub role: Role,
}

pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Creates the account or replaces its password, and sets its role when
    /// one is given (a new account without one is an agent). Returns true
    /// if it is new.
    pub fn upsert_agent_blocking(
        &self,
        name: &str,
        password_hash: &str,
        role: Option<Role>,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let existed = conn
            .query_row("SELECT 1 FROM agents WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        conn.execute(
            "INSERT INTO agents (name, password_hash, created_at_ms, role)
             VALUES (?1, ?2, ?3, COALESCE(?4, 'agent'))
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                 role = COALESCE(?4, role)",
            params![name, password_hash, now_ms(), role.map(Role::as_str)],
        )?;
        // A new password signs out every browser that knew the old one.
        conn.execute("DELETE FROM agent_sessions WHERE agent = ?1", [name])?;
        Ok(!existed)
    }

    /// Every account, with how many sign-ins are open.
    pub fn agents_blocking(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT a.name, a.role, (SELECT COUNT(*) FROM agent_sessions s
                             WHERE s.agent = a.name AND s.expires_at_ms > ?1)
             FROM agents a ORDER BY a.name",
        )?;
        let rows = stmt.query_map([now_ms()], |r| {
            Ok(Account {
                name: r.get(0)?,
                role: role_of(r.get(1)?),
                signed_in: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Changes an account's role; its open sign-ins end, so nobody keeps
    /// rights they no longer have. Returns false if there is no such account.
    pub fn set_role_blocking(&self, name: &str, role: Role) -> Result<bool, StoreError> {
        let conn = self.lock();
        let changed = conn.execute(
            "UPDATE agents SET role = ?2 WHERE name = ?1",
            params![name, role.as_str()],
        )? > 0;
        conn.execute("DELETE FROM agent_sessions WHERE agent = ?1", [name])?;
        Ok(changed)
    }

    /// How many admin accounts exist: without one (and without a token) the
    /// admin API is off.
    pub async fn admin_count(&self) -> Result<i64, StoreError> {
        self.run(|conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM agents WHERE role = 'admin'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Removes an account; its sign-ins go with it (`ON DELETE CASCADE`).
    /// Returns false if there was none.
    pub fn remove_agent_blocking(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .execute("DELETE FROM agents WHERE name = ?1", [name])?
            > 0)
    }

    /// An account's password hash and role, to check a sign-in.
    pub async fn agent_credentials(
        &self,
        name: String,
    ) -> Result<Option<(String, Role)>, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT password_hash, role FROM agents WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, role_of(r.get(1)?))),
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

    /// The account a sign-in token belongs to, if it is valid and unexpired.
    pub async fn staff_of_token(&self, token: &str) -> Result<Option<Staff>, StoreError> {
        let digest = token_digest(token);
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT s.agent, a.role FROM agent_sessions s JOIN agents a ON a.name = s.agent
                     WHERE s.token_sha256 = ?1 AND s.expires_at_ms > ?2",
                    params![digest, now_ms()],
                    |r| {
                        Ok(Staff {
                            name: r.get(0)?,
                            role: role_of(r.get(1)?),
                        })
                    },
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
