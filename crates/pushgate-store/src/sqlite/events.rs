//! The app-facing event log: written in the same transaction as its cause, read by cursor.

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use super::rows::{self, ms};
use crate::Result;
use crate::model::{Event, EventKind};

/// Appends one event (inside the caller's transaction).
pub(super) async fn append(
    conn: &mut SqliteConnection,
    app: &str,
    kind: EventKind,
    device_id: Option<&str>,
    data: &serde_json::Value,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (app, kind, device_id, data, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(app)
    .bind(kind.as_str())
    .bind(device_id)
    .bind(data.to_string())
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
    let rows = sqlx::query(
        "SELECT seq, app, kind, device_id, data, created_at FROM events
         WHERE app = $1 AND seq > $2 AND ($3 IS NULL OR kind = $3)
         ORDER BY seq LIMIT $4",
    )
    .bind(app)
    .bind(cursor)
    .bind(kind.map(EventKind::as_str))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter().map(rows::event).collect()
}

/// A delivery that ended without reaching its device, as events report it.
#[derive(Debug, Clone)]
pub(super) struct Ended {
    /// The delivery.
    pub delivery_id: i64,
    /// Its message.
    pub message_id: uuid::Uuid,
    /// Its device, if registered.
    pub device_id: Option<String>,
    /// The token it was for.
    pub token: String,
}

impl Ended {
    /// Reads `id, message_id, device_id, token` from a row.
    pub(super) fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Self> {
        use sqlx::Row;
        Ok(Self {
            delivery_id: row.try_get("id")?,
            message_id: row.try_get("message_id")?,
            device_id: row.try_get("device_id")?,
            token: row.try_get("token")?,
        })
    }
}

/// Appends one `DeliveryFailed` event per ended delivery: every final failure of work that
/// was queued is reported, whatever ended it (an answer, the TTL, a registry change).
pub(super) async fn delivery_failed(
    conn: &mut SqliteConnection,
    app: &str,
    ended: &[Ended],
    state: crate::model::DeliveryState,
    outcome: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    for e in ended {
        let data = serde_json::json!({
            "message_id": e.message_id,
            "delivery_id": e.delivery_id,
            "token": e.token,
            "state": state.as_str(),
            "outcome": outcome,
            "reason": reason,
        });
        append(
            &mut *conn,
            app,
            EventKind::DeliveryFailed,
            e.device_id.as_deref(),
            &data,
            now,
        )
        .await?;
    }
    Ok(())
}
