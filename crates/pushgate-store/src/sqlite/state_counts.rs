//! Keeping the per-state counts (`message_state_counts`, `delivery_counts`) for the changes
//! of state into and out of `in_flight`: claims, provider answers, releases and the expiry
//! of leased work, the changes every delivery makes twice. Row triggers count every other
//! change (migration 0007); a row trigger costs these statements several microseconds per
//! delivery, where one set-based statement per table counts a whole claim or answer batch.

use std::collections::HashMap;

use serde_json::json;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::Result;
use crate::model::DeliveryState;

/// One delivery's change of state, for the counts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Move<'a> {
    pub message: Uuid,
    pub app: &'a str,
    pub channel: &'a str,
    pub from: DeliveryState,
    pub to: DeliveryState,
}

impl crate::model::Delivery {
    /// This delivery's change from its present state to `to`, for [`record`].
    pub(super) fn moved_to(&self, to: DeliveryState) -> Move<'_> {
        Move {
            message: self.message_id,
            app: &self.app,
            channel: &self.channel,
            from: self.state,
            to,
        }
    }
}

/// Counts `moves` (those that change nothing are ignored) in two statements at most.
pub(super) async fn record(conn: &mut SqliteConnection, moves: &[Move<'_>]) -> Result<()> {
    let mut by_message: HashMap<(Uuid, DeliveryState), i64> = HashMap::new();
    let mut settled: HashMap<(&str, &str, DeliveryState), i64> = HashMap::new();
    for m in moves.iter().filter(|m| m.from != m.to) {
        *by_message.entry((m.message, m.from)).or_default() -= 1;
        *by_message.entry((m.message, m.to)).or_default() += 1;
        if m.to.is_final() {
            *settled.entry((m.app, m.channel, m.to)).or_default() += 1;
        }
    }
    by_message.retain(|_, n| *n != 0);
    if !by_message.is_empty() {
        let rows: Vec<_> = by_message
            .iter()
            .map(|((message, state), n)| json!([message.simple().to_string(), state.as_str(), n]))
            .collect();
        // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint.
        sqlx::query(
            "INSERT INTO message_state_counts (message_id, state, n)
             SELECT unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2 FROM json_each($1) j
             WHERE true
             ON CONFLICT (message_id, state) DO UPDATE SET n = n + excluded.n",
        )
        .bind(serde_json::Value::from(rows).to_string())
        .execute(&mut *conn)
        .await?;
    }
    if !settled.is_empty() {
        let rows: Vec<_> = settled
            .iter()
            .map(|((app, channel, state), n)| json!([app, channel, state.as_str(), n]))
            .collect();
        sqlx::query(
            "INSERT INTO delivery_counts (app, channel, state, n)
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3
             FROM json_each($1) j
             WHERE true
             ON CONFLICT (app, channel, state) DO UPDATE SET n = n + excluded.n",
        )
        .bind(serde_json::Value::from(rows).to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
