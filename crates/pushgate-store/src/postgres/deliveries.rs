//! A message's deliveries as the API shows them: counts by state and pages in id order.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::model::{Delivery, MessageSummary, Page};
use crate::stored::{count, decode, delivery_columns, page};
use crate::{Result, StoreError};

/// Counts of a message's deliveries by state.
pub(super) async fn message_summary(
    conn: &mut PgConnection,
    message_id: Uuid,
) -> Result<MessageSummary> {
    let known: Option<Uuid> = sqlx::query_scalar("SELECT id FROM messages WHERE id = $1")
        .bind(message_id)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_none() {
        return Err(StoreError::NotFound);
    }
    let rows = sqlx::query(
        "SELECT state, COUNT(*) AS n FROM deliveries WHERE message_id = $1 GROUP BY state",
    )
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
    conn: &mut PgConnection,
    message_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Delivery, i64>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE message_id = $1 AND ($2::bigint IS NULL OR id > $2)
          ORDER BY id LIMIT $3"
    ))
    .bind(message_id)
    .bind(cursor)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(decode::delivery)
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |d| d.id))
}
