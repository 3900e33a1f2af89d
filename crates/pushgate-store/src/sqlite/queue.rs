//! Messages and deliveries: insertion, claiming with a lease, completion with its effects.

use std::time::Duration;

use pushgate_proto::outcome::Outcome;
use serde_json::json;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::events;
use super::rows::{self, delivery_columns, ms, ms_after};
use crate::model::{
    Completion, Delivery, DeliveryState, EventKind, InsertOutcome, MessageSummary, NewDelivery,
    NewMessage, Page,
};
use crate::{Result, StoreError};

/// Where "due and not leased" work is, in SQL: queued or retry-wait and due, or a lease run out.
macro_rules! due_condition {
    () => {
        "((state IN ('queued', 'retry_wait') AND due_at <= $1)
          OR (state = 'in_flight' AND lease_until <= $1))"
    };
}

/// Stores a message and its deliveries, or finds the earlier message with the same key.
pub(super) async fn insert_message(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    deliveries: &[NewDelivery],
) -> Result<InsertOutcome> {
    let app_known: Option<i64> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(&msg.app)
        .fetch_optional(&mut *conn)
        .await?;
    if app_known.is_none() {
        return Err(StoreError::NotFound);
    }
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO messages (id, app, payload, channel, ttl_secs, idempotency_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (app, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(msg.id)
    .bind(&msg.app)
    .bind(msg.payload.to_string())
    .bind(&msg.channel)
    .bind(msg.ttl_secs)
    .bind(&msg.idempotency_key)
    .bind(ms(msg.created_at))
    .fetch_optional(&mut *conn)
    .await?;

    let Some(message_id) = inserted else {
        let first: Uuid =
            sqlx::query_scalar("SELECT id FROM messages WHERE app = $1 AND idempotency_key = $2")
                .bind(&msg.app)
                .bind(&msg.idempotency_key)
                .fetch_one(&mut *conn)
                .await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE message_id = $1")
                .bind(first)
                .fetch_one(&mut *conn)
                .await?;
        return Ok(InsertOutcome {
            message_id: first,
            deliveries: u64::try_from(count).unwrap_or(0),
            duplicate: true,
        });
    };

    let created = ms(msg.created_at);
    let deadline = created.saturating_add(msg.ttl_secs.saturating_mul(1000));
    for d in deliveries {
        sqlx::query(
            "INSERT INTO deliveries (message_id, app, device_id, token, channel, state, attempts,
                                     due_at, deadline, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $6)",
        )
        .bind(message_id)
        .bind(&msg.app)
        .bind(&d.device_id)
        .bind(&d.token)
        .bind(&d.channel)
        .bind(created)
        .bind(deadline)
        .execute(&mut *conn)
        .await?;
    }
    Ok(InsertOutcome {
        message_id,
        deliveries: deliveries.len() as u64,
        duplicate: false,
    })
}

/// Settles due work that cannot be sent, then leases up to `limit` due deliveries.
pub(super) async fn claim_due(
    conn: &mut SqliteConnection,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> Result<Vec<Delivery>> {
    let now_ms = ms(now);
    sqlx::query(concat!(
        "UPDATE deliveries SET state = 'expired', lease_until = NULL, updated_at = $1
         WHERE deadline <= $1 AND ",
        due_condition!()
    ))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    for (device_state, delivery_state, error) in [
        ("invalid", "token_dead", "device_invalid"),
        ("disabled", "failed", "device_disabled"),
    ] {
        sqlx::query(concat!(
            "UPDATE deliveries SET state = $2, error_code = $3, lease_until = NULL, updated_at = $1
             WHERE device_id IS NOT NULL AND ",
            due_condition!(),
            " AND EXISTS (SELECT 1 FROM devices d WHERE d.app = deliveries.app
                           AND d.device_id = deliveries.device_id AND d.state = $4)"
        ))
        .bind(now_ms)
        .bind(delivery_state)
        .bind(error)
        .bind(device_state)
        .execute(&mut *conn)
        .await?;
    }
    let rows = sqlx::query(concat!(
        "UPDATE deliveries
         SET state = 'in_flight', lease_until = $2, attempts = attempts + 1, updated_at = $1
         WHERE id IN (SELECT id FROM deliveries WHERE ",
        due_condition!(),
        " ORDER BY due_at, id LIMIT $3)
         RETURNING ",
        delivery_columns!()
    ))
    .bind(now_ms)
    .bind(ms_after(now, lease))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = rows
        .iter()
        .map(rows::delivery)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|d| (d.due_at, d.id));
    Ok(claimed)
}

/// Sets a delivery's final or waiting state after an answer.
async fn settle(
    conn: &mut SqliteConnection,
    id: i64,
    state: DeliveryState,
    due_at: Option<i64>,
    provider_message_id: Option<&str>,
    error_code: Option<&str>,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries
         SET state = $1, due_at = COALESCE($2, due_at), lease_until = NULL,
             provider_message_id = $3, error_code = $4, updated_at = $5
         WHERE id = $6",
    )
    .bind(state.as_str())
    .bind(due_at)
    .bind(provider_message_id)
    .bind(error_code)
    .bind(ms(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The live device of `app` holding `token`, if any.
async fn live_holder(
    conn: &mut SqliteConnection,
    app: &str,
    token: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT device_id FROM devices WHERE app = $1 AND token = $2 AND state <> 'invalid'",
    )
    .bind(app)
    .bind(token)
    .fetch_optional(conn)
    .await?)
}

/// Marks a device invalid with a reason.
async fn invalidate(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE devices SET state = 'invalid', invalid_reason = $1, updated_at = $2
         WHERE app = $3 AND device_id = $4",
    )
    .bind(reason)
    .bind(ms(now))
    .bind(app)
    .bind(device_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies a canonical id: rewrites the device's token, or retires the device when another
/// live device already holds the new token; records a `TokenRotated` event either way.
async fn rotate(
    conn: &mut SqliteConnection,
    d: &Delivery,
    new_token: &str,
    now: OffsetDateTime,
) -> Result<()> {
    if new_token == d.token {
        return Ok(());
    }
    let device = live_holder(&mut *conn, &d.app, &d.token).await?;
    let holder = live_holder(&mut *conn, &d.app, new_token).await?;
    match (device, holder) {
        (Some(device), Some(holder)) if holder != device => {
            invalidate(
                &mut *conn,
                &d.app,
                &device,
                &format!("canonical id held by {holder}"),
                now,
            )
            .await?;
            let data = json!({"old_token": d.token, "new_token": new_token, "retired": true, "held_by": holder});
            events::append(
                conn,
                &d.app,
                EventKind::TokenRotated,
                Some(&device),
                &data,
                now,
            )
            .await
        }
        (device, _) => {
            if let Some(device) = &device {
                sqlx::query(
                    "UPDATE devices SET token = $1, confirmed = TRUE, updated_at = $2
                     WHERE app = $3 AND device_id = $4",
                )
                .bind(new_token)
                .bind(ms(now))
                .bind(&d.app)
                .bind(device)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE deliveries SET token = $1, updated_at = $2
                     WHERE app = $3 AND token = $4 AND state IN ('queued', 'retry_wait')",
                )
                .bind(new_token)
                .bind(ms(now))
                .bind(&d.app)
                .bind(&d.token)
                .execute(&mut *conn)
                .await?;
            }
            let data = json!({"old_token": d.token, "new_token": new_token, "retired": false});
            events::append(
                conn,
                &d.app,
                EventKind::TokenRotated,
                device.as_deref(),
                &data,
                now,
            )
            .await
        }
    }
}

/// Records one answer for an in-flight delivery with all its effects.
async fn apply(
    conn: &mut SqliteConnection,
    d: &Delivery,
    c: &Completion,
    now: OffsetDateTime,
) -> Result<()> {
    match &c.outcome {
        Outcome::Delivered { message_id } | Outcome::Rotated { message_id, .. } => {
            settle(
                &mut *conn,
                d.id,
                DeliveryState::Sent,
                None,
                Some(message_id),
                None,
                now,
            )
            .await?;
            if let Outcome::Rotated { new_token, .. } = &c.outcome {
                rotate(conn, d, new_token, now).await
            } else {
                sqlx::query(
                    "UPDATE devices SET confirmed = TRUE, updated_at = $1
                     WHERE app = $2 AND token = $3 AND state <> 'invalid' AND NOT confirmed",
                )
                .bind(ms(now))
                .bind(&d.app)
                .bind(&d.token)
                .execute(conn)
                .await?;
                Ok(())
            }
        }
        Outcome::TokenDead { reason } => {
            settle(
                &mut *conn,
                d.id,
                DeliveryState::TokenDead,
                None,
                None,
                Some(reason),
                now,
            )
            .await?;
            let device = live_holder(&mut *conn, &d.app, &d.token).await?;
            if let Some(device) = &device {
                invalidate(&mut *conn, &d.app, device, reason, now).await?;
            }
            if device.is_some() || d.device_id.is_none() {
                let data = json!({"token": d.token, "reason": reason});
                events::append(
                    conn,
                    &d.app,
                    EventKind::DeviceInvalidated,
                    device.as_deref(),
                    &data,
                    now,
                )
                .await?;
            }
            Ok(())
        }
        Outcome::RetryLater { reason, .. } | Outcome::Throttled { reason, .. } => {
            let due = c.retry_at.map(ms).unwrap_or_else(|| ms(now));
            let state = if due >= ms(d.deadline) {
                DeliveryState::Expired
            } else {
                DeliveryState::RetryWait
            };
            settle(conn, d.id, state, Some(due), None, Some(reason), now).await
        }
        Outcome::MessageRejected { reason } | Outcome::AuthFailed { reason } => {
            settle(
                &mut *conn,
                d.id,
                DeliveryState::Failed,
                None,
                None,
                Some(reason),
                now,
            )
            .await?;
            let data = json!({
                "message_id": d.message_id,
                "delivery_id": d.id,
                "token": d.token,
                "outcome": c.outcome.kind().as_str(),
                "reason": reason,
            });
            events::append(
                conn,
                &d.app,
                EventKind::DeliveryFailed,
                d.device_id.as_deref(),
                &data,
                now,
            )
            .await
        }
    }
}

/// Records a batch of answers; answers for deliveries not in flight are skipped.
pub(super) async fn complete(
    conn: &mut SqliteConnection,
    results: &[Completion],
    now: OffsetDateTime,
) -> Result<u64> {
    let mut applied = 0;
    for c in results {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE id = $1 AND state = 'in_flight'"
        ))
        .bind(c.delivery_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { continue };
        let d = rows::delivery(&row)?;
        apply(&mut *conn, &d, c, now).await?;
        applied += 1;
    }
    Ok(applied)
}

/// Puts in-flight deliveries back in the queue, undoing the claim's attempt.
pub(super) async fn release(
    conn: &mut SqliteConnection,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<u64> {
    let mut released = 0;
    for id in ids {
        let done = sqlx::query(
            "UPDATE deliveries
             SET state = 'queued', lease_until = NULL, updated_at = $1,
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
             WHERE id = $2 AND state = 'in_flight'",
        )
        .bind(ms(now))
        .bind(id)
        .execute(&mut *conn)
        .await?;
        released += done.rows_affected();
    }
    Ok(released)
}

/// Counts of a message's deliveries by state.
pub(super) async fn message_summary(
    conn: &mut SqliteConnection,
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
        let n: i64 = row.try_get("n")?;
        summary.insert(state.parse()?, u64::try_from(n).unwrap_or(0));
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
        " FROM deliveries WHERE message_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(message_id)
    .bind(cursor)
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
