//! The app-facing event log: written in the same transaction as its cause, read by cursor.
//!
//! Readers page by `seq`, so an event must never become visible after one with a higher `seq`
//! of the same app (a reader past it would skip it for good). Sequence values are handed out
//! at insert but become visible at commit, so writers of one app's events take turns: each
//! takes the app's event lock (a transaction-level advisory lock) before its first event and
//! keeps it until its commit.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Result;
use crate::model::{Event, EventKind};
use crate::rules::events::NewEvent;
use crate::stored::ms;

/// First key of the per-app event lock (`pg_advisory_xact_lock(key, hashtext(app))`).
const EVENT_LOCK: i32 = 0x7067_6576; // "pgev"

/// Waits for the app's event lock (held until the transaction ends; taking it again is free).
pub(super) async fn lock_app(conn: &mut PgConnection, app: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(EVENT_LOCK)
        .bind(app)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends one event (inside the caller's transaction).
pub(super) async fn append(
    conn: &mut PgConnection,
    app: &str,
    event: &NewEvent,
    now: OffsetDateTime,
) -> Result<()> {
    lock_app(&mut *conn, app).await?;
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
    conn: &mut PgConnection,
    app: &str,
    cursor: i64,
    limit: u32,
    kind: Option<EventKind>,
) -> Result<Vec<Event>> {
    crate::stored::reads::events_after(conn, app, cursor, limit, kind).await
}
