//! What a shop told Frontdesk about a conversation's customer: the orders
//! looked up in it (shown beside it in the console, deleted with it), the
//! identity the shop's site vouched for, and how often the order details
//! given did not match.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Store, StoreError, now_ms};
use crate::orders::Order;

/// A customer the shop's site signed in and vouched for (a signed
/// identity): who the console shows, whose e-mail address the bot need
/// not ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The shop's own id for the customer.
    pub id: String,
    pub email: String,
}

impl Store {
    /// Keeps the shop's latest answer about an order looked up in `session`.
    pub async fn record_order(&self, session: Uuid, order: Order) -> Result<(), StoreError> {
        let body = serde_json::to_string(&order).expect("an order serializes");
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO conversation_orders (session_id, number, body, at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id, number) DO UPDATE SET body = ?3, at_ms = ?4",
                params![session.to_string(), order.number, body, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// The orders looked up in `session`, the latest first.
    pub async fn conversation_orders(&self, session: Uuid) -> Result<Vec<Order>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM conversation_orders WHERE session_id = ?1 ORDER BY at_ms DESC",
            )?;
            let rows = stmt.query_map([session.to_string()], |r| r.get::<_, String>(0))?;
            rows.map(|body| {
                serde_json::from_str(&body?).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
        })
        .await
    }

    /// Records who the customer of `session` is, as the shop's site said.
    pub async fn set_customer(&self, session: Uuid, customer: Customer) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE sessions SET customer_id = ?2, customer_email = ?3 WHERE id = ?1",
                params![session.to_string(), customer.id, customer.email],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the widget's visitor id for `session`; the first one stays.
    pub async fn set_visitor(&self, session: Uuid, visitor: Uuid) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE sessions SET visitor_id = ?2 WHERE id = ?1 AND visitor_id IS NULL",
                params![session.to_string(), visitor.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    /// The customer the shop's site vouched for in `session`, if any.
    pub async fn customer(&self, session: Uuid) -> Result<Option<Customer>, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT customer_id, customer_email FROM sessions
                     WHERE id = ?1 AND customer_id IS NOT NULL",
                    [session.to_string()],
                    |r| {
                        Ok(Customer {
                            id: r.get(0)?,
                            email: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Counts one more order check that did not match in `session`; the
    /// count now.
    pub async fn add_failed_order_check(&self, session: Uuid) -> Result<u32, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "UPDATE sessions SET failed_order_checks = failed_order_checks + 1
                     WHERE id = ?1 RETURNING failed_order_checks",
                    [session.to_string()],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
        .await
    }

    pub async fn failed_order_checks(&self, session: Uuid) -> Result<u32, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT failed_order_checks FROM sessions WHERE id = ?1",
                    [session.to_string()],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
        .await
    }
}
