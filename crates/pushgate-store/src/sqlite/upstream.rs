//! Upstream messages and receipts from CCS: recorded as events exactly once per stanza, with
//! the device (and, for receipts, the delivery) they concern.

use serde_json::Value;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use super::registry;
use super::rows::{self, ms};
use crate::Result;
use crate::model::{Event, UpstreamRecord};

/// Stores the event unless one with the same dedup key exists; `None` for a repeat.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    app: &str,
    rec: &UpstreamRecord,
    now: OffsetDateTime,
) -> Result<Option<Event>> {
    registry::require_app(&mut *conn, app).await?;
    let device = match &rec.from_token {
        Some(token) => registry::live_holder(&mut *conn, app, token).await?,
        None => None,
    };
    let mut data = rec.data.clone();
    if let (Some(original), Some(token), Value::Object(map)) =
        (&rec.original_message_id, &rec.from_token, &mut data)
    {
        let row = sqlx::query(
            "SELECT id, message_id FROM deliveries
             WHERE provider_message_id = $3 AND app = $1 AND token = $2",
        )
        .bind(app)
        .bind(token)
        .bind(original)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                let message: uuid::Uuid = row.try_get("message_id")?;
                map.insert("delivery_id".into(), Value::from(id));
                map.insert("message".into(), Value::String(message.to_string()));
            }
            None if rec.require_link => return Err(crate::StoreError::NotFound),
            None => {}
        }
    }
    let row = sqlx::query(
        "INSERT INTO events (app, kind, device_id, data, created_at, dedup_key)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (app, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
         RETURNING seq, app, kind, device_id, data, created_at",
    )
    .bind(app)
    .bind(rec.kind.as_str())
    .bind(&device)
    .bind(data.to_string())
    .bind(ms(now))
    .bind(&rec.dedup_key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rows::event).transpose()
}
