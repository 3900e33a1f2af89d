//! Reads that are the same statement on every backend, run on the caller's connection: a
//! message's deliveries (counts and pages) and the event log by cursor.

use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use uuid::Uuid;

use super::decode::{self, RowRead};
use super::{count, delivery_columns, page};
use crate::model::{Delivery, Event, EventKind, MessageSummary, Page};
use crate::{Result, StoreError};

/// Counts of a message's deliveries by state; `NotFound` for an unknown message.
pub(crate) async fn message_summary<'c, DB, E>(exec: E, message_id: Uuid) -> Result<MessageSummary>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
{
    // One row per state, or one row with no state for a message without deliveries; no row
    // at all for an unknown message.
    let rows = sqlx::query::<DB>(
        "SELECT d.state AS state, COUNT(d.id) AS n
         FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id
         WHERE m.id = $1 GROUP BY d.state",
    )
    .bind(message_id)
    .fetch_all(exec)
    .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    let mut summary = MessageSummary::new();
    for row in &rows {
        if let Some(state) = row.opt_text("state")? {
            summary.insert(state.parse()?, count(row.int("n")?));
        }
    }
    Ok(summary)
}

/// A page of a message's deliveries in id order.
pub(crate) async fn list_deliveries<'c, DB, E>(
    exec: E,
    message_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Delivery, i64>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    // Delivery ids start at 1: no cursor reads from the first.
    let rows = sqlx::query::<DB>(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE message_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(message_id)
    .bind(cursor.unwrap_or(0))
    .bind(i64::from(limit) + 1)
    .fetch_all(exec)
    .await?;
    let items = rows
        .iter()
        .map(decode::delivery)
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |d| d.id))
}

/// The app's events after `cursor`, in `seq` order, at most `limit`, optionally one kind.
pub(crate) async fn events_after<'c, DB, E>(
    exec: E,
    app: &str,
    cursor: i64,
    limit: u32,
    kind: Option<EventKind>,
) -> Result<Vec<Event>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    // No kind is named by the empty string, so it stands for "every kind".
    let rows = sqlx::query::<DB>(
        "SELECT seq, app, kind, device_id, data, created_at FROM events
         WHERE app = $1 AND seq > $2 AND ($3 = '' OR kind = $3)
         ORDER BY seq LIMIT $4",
    )
    .bind(app.to_string())
    .bind(cursor)
    .bind(kind.map_or("", EventKind::as_str).to_string())
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await?;
    rows.iter().map(decode::event).collect()
}
