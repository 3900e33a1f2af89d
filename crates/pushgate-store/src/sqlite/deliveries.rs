//! A message's deliveries as the API shows them: counts by state from the counters SQLite
//! keeps per message, pages with the statement every backend shares
//! ([`crate::stored::reads`]).

use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::Result;
use crate::model::{Delivery, MessageSummary, Page};
use crate::stored::{count, reads};

/// Counts of a message's deliveries by state, as kept in `message_state_counts` while they
/// change (a handful of rows however many deliveries the message has).
pub(super) async fn message_summary(
    conn: &mut SqliteConnection,
    message_id: Uuid,
) -> Result<MessageSummary> {
    let known: Option<Uuid> = sqlx::query_scalar("SELECT id FROM messages WHERE id = $1")
        .bind(message_id)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_none() {
        return Err(crate::StoreError::NotFound);
    }
    let rows =
        sqlx::query("SELECT state, n FROM message_state_counts WHERE message_id = $1 AND n > 0")
            .bind(message_id)
            .fetch_all(conn)
            .await?;
    let mut summary = MessageSummary::new();
    for row in &rows {
        let state: String = row.try_get("state")?;
        summary.insert(state.parse()?, count(row.try_get("n")?));
    }
    Ok(summary)
}

/// A page of a message's deliveries in id order (a range on `(message_id, id)`).
pub(super) async fn list_deliveries(
    conn: &mut SqliteConnection,
    message_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Delivery, i64>> {
    reads::list_deliveries(conn, message_id, cursor, limit).await
}
