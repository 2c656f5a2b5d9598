//! The demo shop's orders: what the bundled demo serves behind the shop
//! contract. The order itself is kept as the contract's JSON.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// One demo order and what proves who placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrderRow {
    pub number: String,
    pub email: String,
    pub postcode: String,
    /// The order as the contract's JSON.
    pub body: String,
}

impl Store {
    /// Stores the demo orders that are not stored yet; returns how many.
    pub fn seed_demo_orders_blocking(&self, rows: &[DemoOrderRow]) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut added = 0;
        for r in rows {
            added += tx.execute(
                "INSERT OR IGNORE INTO demo_orders (number, email, postcode, body) VALUES (?1, ?2, ?3, ?4)",
                params![r.number, r.email, r.postcode, r.body],
            )?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Replaces a demo order's JSON; false when there is no such order.
    pub async fn update_demo_order(
        &self,
        number: String,
        body: String,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            Ok(conn.execute(
                "UPDATE demo_orders SET body = ?2 WHERE number = ?1",
                params![number, body],
            )? > 0)
        })
        .await
    }

    pub async fn demo_order(&self, number: String) -> Result<Option<DemoOrderRow>, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT number, email, postcode, body FROM demo_orders WHERE number = ?1",
                    [number],
                    |r| {
                        Ok(DemoOrderRow {
                            number: r.get(0)?,
                            email: r.get(1)?,
                            postcode: r.get(2)?,
                            body: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Quantities of each SKU of an order already returned.
    pub async fn demo_returned(&self, number: String) -> Result<Vec<(String, u32)>, StoreError> {
        self.run(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT items FROM demo_returns WHERE order_number = ?1")?;
            let rows = stmt.query_map([number], |r| r.get::<_, String>(0))?;
            let mut returned = Vec::new();
            for items in rows {
                let items: Vec<(String, u32)> = serde_json::from_str(&items?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                returned.extend(items);
            }
            Ok(returned)
        })
        .await
    }

    /// Records a demo return; its id (`RT-<order digits>-<n>`).
    pub async fn add_demo_return(
        &self,
        number: String,
        items: Vec<(String, u32)>,
    ) -> Result<String, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM demo_returns WHERE order_number = ?1",
                [&number],
                |r| r.get(0),
            )?;
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            let id = format!("RT-{digits}-{}", n + 1);
            tx.execute(
                "INSERT INTO demo_returns (id, order_number, items, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    id,
                    number,
                    serde_json::to_string(&items).expect("items serialize"),
                    super::now_ms()
                ],
            )?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }
}
