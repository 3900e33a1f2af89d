//! The app-facing event log: written in the same transaction as its cause, read by cursor.

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use super::rows::ms;
use crate::Result;
use crate::model::{Event, EventKind};
use crate::rules::events::NewEvent;
pub(super) use crate::stored::decode::delivery_ref;

/// Appends one event (inside the caller's transaction).
pub(super) async fn append(
    conn: &mut SqliteConnection,
    app: &str,
    event: &NewEvent,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (app, kind, device_id, data, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(app)
    .bind(event.kind.as_str())
    .bind(&event.device_id)
    .bind(event.data.to_string())
    .bind(ms(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// The app's events after `cursor`, in `seq` order.
pub(super) async fn after(
    conn: &mut SqliteConnection,
    app: &str,
    cursor: i64,
    limit: u32,
    kind: Option<EventKind>,
) -> Result<Vec<Event>> {
    crate::stored::reads::events_after(conn, app, cursor, limit, kind).await
}
