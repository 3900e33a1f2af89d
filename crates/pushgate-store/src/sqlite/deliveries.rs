//! A message's deliveries as the API shows them: counts by state and pages in id order.

use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::rows::{self, count, delivery_columns};
use crate::Result;
use crate::model::{Delivery, MessageSummary, Page};

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

/// A page of a message's deliveries in id order.
pub(super) async fn list_deliveries(
    conn: &mut SqliteConnection,
    message_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Delivery, i64>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE message_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(message_id)
    // A plain range on (message_id, id): every page starts where the cursor is, the first
    // one included (delivery ids start at 1); `$2 IS NULL OR id > $2` scanned from the first.
    .bind(cursor.unwrap_or(0))
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?;
    let mut items = rows
        .iter()
        .map(rows::delivery)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
