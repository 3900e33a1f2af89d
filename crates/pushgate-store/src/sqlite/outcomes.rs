//! Recording provider answers: the delivery's new state and, in the same transaction, what
//! the answer means for the registry (canonical ids, dead tokens) and for the application
//! (events).

use pushgate_proto::outcome::Outcome;
use serde_json::json;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::events;
use super::registry;
use super::rows::ms;
use crate::Result;
use crate::model::{Completion, DeliveryState, EventKind};

/// What the delivery row says about the answered delivery, read back by the update itself.
struct Answered {
    message_id: Uuid,
    app: String,
    device_id: Option<String>,
    token: String,
}

/// Sets the delivery's state if it is still in flight under the claim `c` names; `None` when
/// the answer is stale (the lease ran out and another claim took the delivery).
async fn settle(
    conn: &mut SqliteConnection,
    c: &Completion,
    state: DeliveryState,
    due_at: Option<i64>,
    now: OffsetDateTime,
) -> Result<Option<Answered>> {
    let row = sqlx::query(
        "UPDATE deliveries
         SET state = $1, due_at = COALESCE($2, due_at), lease_until = NULL,
             provider_message_id = $3, error_code = $4, updated_at = $5
         WHERE id = $6 AND state = 'in_flight' AND attempts = $7
         RETURNING message_id, app, device_id, token",
    )
    .bind(state.as_str())
    .bind(due_at)
    .bind(c.outcome.message_id())
    .bind(c.outcome.reason())
    .bind(ms(now))
    .bind(c.delivery_id)
    .bind(c.attempt)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Answered {
            message_id: row.try_get("message_id")?,
            app: row.try_get("app")?,
            device_id: row.try_get("device_id")?,
            token: row.try_get("token")?,
        })
    })
    .transpose()
}

/// Applies a canonical id: rewrites the holder's token (and its waiting work), or retires it
/// when another live device already holds the new token; records a `TokenRotated` event.
async fn rotate(
    conn: &mut SqliteConnection,
    a: &Answered,
    new_token: &str,
    now: OffsetDateTime,
) -> Result<()> {
    if new_token == a.token {
        return Ok(());
    }
    let device = registry::live_holder(&mut *conn, &a.app, &a.token).await?;
    let holder = registry::live_holder(&mut *conn, &a.app, new_token).await?;
    if device.is_none() && holder.is_some() {
        // An earlier answer (another message in flight to the old token) already applied
        // this canonical id: nothing changes, nothing to report again.
        return Ok(());
    }
    let retire_for = match (&device, &holder) {
        (Some(device), Some(holder)) if holder != device => Some(holder.clone()),
        _ => None,
    };
    let data = match &retire_for {
        Some(holder) => {
            json!({"old_token": a.token, "new_token": new_token, "retired": true, "held_by": holder})
        }
        None => json!({"old_token": a.token, "new_token": new_token, "retired": false}),
    };
    // The cause first, then its consequences (events of the work it settles).
    events::append(
        &mut *conn,
        &a.app,
        EventKind::TokenRotated,
        device.as_deref(),
        &data,
        now,
    )
    .await?;
    match (&device, retire_for) {
        (Some(device), Some(holder)) => {
            registry::retire(
                conn,
                &a.app,
                device,
                &format!("canonical id held by {holder}"),
                now,
            )
            .await
        }
        (Some(device), None) => {
            sqlx::query(
                "UPDATE devices SET token = $1, updated_at = $2
                 WHERE app = $3 AND device_id = $4",
            )
            .bind(new_token)
            .bind(ms(now))
            .bind(&a.app)
            .bind(device)
            .execute(&mut *conn)
            .await?;
            registry::follow_token(conn, &a.app, device, new_token, now).await
        }
        (None, _) => Ok(()),
    }
}

/// A dead token: the device's invalidation (if it was live), this delivery's failure, then
/// the waiting work its retirement settles, in that order.
async fn invalidate_then_fail(
    conn: &mut SqliteConnection,
    a: &Answered,
    c: &Completion,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let device = registry::live_holder(&mut *conn, &a.app, &a.token).await?;
    if let Some(device) = &device {
        let data = json!({"token": a.token, "reason": reason});
        events::append(
            &mut *conn,
            &a.app,
            EventKind::DeviceInvalidated,
            Some(device),
            &data,
            now,
        )
        .await?;
    }
    failed_event(&mut *conn, a, c, DeliveryState::TokenDead, reason, now).await?;
    if let Some(device) = &device {
        registry::retire(conn, &a.app, device, reason, now).await?;
    }
    Ok(())
}

/// Records one answer with all its effects; false when it was stale.
async fn apply(conn: &mut SqliteConnection, c: &Completion, now: OffsetDateTime) -> Result<bool> {
    let (state, due_at) = match &c.outcome {
        Outcome::Delivered { .. } | Outcome::Rotated { .. } => (DeliveryState::Sent, None),
        Outcome::TokenDead { .. } => (DeliveryState::TokenDead, None),
        Outcome::MessageRejected { .. } | Outcome::AuthFailed { .. } => {
            (DeliveryState::Failed, None)
        }
        Outcome::RetryLater { .. } | Outcome::Throttled { .. } => {
            let due = c.retry_at.map(ms).unwrap_or_else(|| ms(now));
            let deadline: i64 = sqlx::query_scalar("SELECT deadline FROM deliveries WHERE id = $1")
                .bind(c.delivery_id)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or(i64::MIN);
            if due >= deadline {
                (DeliveryState::Expired, None)
            } else {
                (DeliveryState::RetryWait, Some(due))
            }
        }
    };
    let Some(answered) = settle(&mut *conn, c, state, due_at, now).await? else {
        return Ok(false);
    };
    match &c.outcome {
        Outcome::Rotated { new_token, .. } => rotate(conn, &answered, new_token, now).await?,
        Outcome::TokenDead { reason } => {
            // The invalidation first, then this delivery's failure, then the waiting work
            // the retirement settled (already appended by `retire`, so it comes first:
            // append this one before retiring).
            invalidate_then_fail(conn, &answered, c, reason, now).await?
        }
        Outcome::MessageRejected { reason } | Outcome::AuthFailed { reason } => {
            failed_event(conn, &answered, c, DeliveryState::Failed, reason, now).await?
        }
        Outcome::RetryLater { reason, .. } | Outcome::Throttled { reason, .. }
            if state == DeliveryState::Expired =>
        {
            failed_event(conn, &answered, c, DeliveryState::Expired, reason, now).await?
        }
        _ => {}
    }
    Ok(true)
}

/// A `DeliveryFailed` event for a delivery that ended without reaching the device.
async fn failed_event(
    conn: &mut SqliteConnection,
    a: &Answered,
    c: &Completion,
    state: DeliveryState,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let ended = events::Ended {
        delivery_id: c.delivery_id,
        message_id: a.message_id,
        device_id: a.device_id.clone(),
        token: a.token.clone(),
    };
    events::delivery_failed(
        conn,
        &a.app,
        &[ended],
        state,
        c.outcome.kind().as_str(),
        reason,
        now,
    )
    .await
}

/// Records a batch of answers; stale ones are skipped.
pub(super) async fn complete(
    conn: &mut SqliteConnection,
    results: &[Completion],
    now: OffsetDateTime,
) -> Result<u64> {
    let mut applied = 0;
    for c in results {
        if apply(&mut *conn, c, now).await? {
            applied += 1;
        }
    }
    Ok(applied)
}
