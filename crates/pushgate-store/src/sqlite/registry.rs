//! Registry rules shared by the device API, the C2DM-era flow and provider answers: who holds
//! a token, retiring a device, and what happens to the work waiting for it.

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use super::events;
use super::rows::ms;
use super::token_key::token_key;
use crate::model::DeliveryState;
use crate::rules;
use crate::rules::events::REGISTRY_OUTCOME;
use crate::rules::registry::Retirement;
use crate::{Result, StoreError};

/// `NotFound` unless the app exists.
pub(super) async fn require_app(conn: &mut SqliteConnection, app: &str) -> Result<()> {
    let known: Option<i64> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(app)
        .fetch_optional(conn)
        .await?;
    known.map(|_| ()).ok_or(StoreError::NotFound)
}

/// The live (non-invalid) device of `app` holding `token`, if any.
pub(super) async fn live_holder(
    conn: &mut SqliteConnection,
    app: &str,
    token: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT device_id FROM devices
         WHERE app = $1 AND token_key = $3 AND token = $2 AND state <> 'invalid'",
    )
    .bind(app)
    .bind(token)
    .bind(token_key(token))
    .fetch_optional(conn)
    .await?)
}

/// Settles every delivery still waiting (queued or retry-wait) for a device; in-flight ones
/// finish on their own.
pub(super) async fn settle_waiting(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
    state: DeliveryState,
    error: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    let rows = sqlx::query(
        "UPDATE deliveries SET state = $1, error_code = $2, lease_until = NULL, updated_at = $3
         WHERE app = $4 AND device_id = $5 AND state IN ('queued', 'retry_wait')
         RETURNING id, message_id, device_id, token",
    )
    .bind(state.as_str())
    .bind(error)
    .bind(ms(now))
    .bind(app)
    .bind(device_id)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let ended = events::delivery_ref(row)?;
        let event = rules::events::delivery_failed(&ended, state, REGISTRY_OUTCOME, error);
        events::append(&mut *conn, app, &event, now).await?;
    }
    Ok(rows.len() as u64)
}

/// Marks a device invalid with a reason; the work waiting for it will never be sent
/// ([`rules::registry::RETIRED_WORK`]).
pub(super) async fn retire(
    conn: &mut SqliteConnection,
    app: &str,
    retirement: &Retirement,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE devices SET state = 'invalid', invalid_reason = $1, updated_at = $2
         WHERE app = $3 AND device_id = $4",
    )
    .bind(&retirement.reason)
    .bind(ms(now))
    .bind(app)
    .bind(&retirement.device_id)
    .execute(&mut *conn)
    .await?;
    let (state, error) = rules::registry::RETIRED_WORK;
    settle_waiting(conn, app, &retirement.device_id, state, error, now).await?;
    Ok(())
}

/// Retires whichever other live device holds `token`, so that `device_id` can take it;
/// returns the retired device.
pub(super) async fn take_over(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let holder = live_holder(&mut *conn, app, token).await?;
    match rules::registry::take_over(device_id, holder.as_deref()) {
        Some(retirement) => {
            retire(conn, app, &retirement, now).await?;
            Ok(Some(retirement.device_id))
        }
        None => Ok(None),
    }
}

/// Points the work waiting for a device at its new token.
pub(super) async fn follow_token(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
    new_token: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET token = $1, updated_at = $2
         WHERE app = $3 AND device_id = $4 AND state IN ('queued', 'retry_wait')
           AND token <> $1",
    )
    .bind(new_token)
    .bind(ms(now))
    .bind(app)
    .bind(device_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which label table [`replace_labels`] writes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Labels {
    /// `device_tags`.
    Tags,
    /// `device_topics`.
    Topics,
}

/// Replaces a device's rows in a label table with `labels` (`existed`: there may be old rows
/// to remove first).
pub(super) async fn replace_labels(
    conn: &mut SqliteConnection,
    which: Labels,
    app: &str,
    device_id: &str,
    labels: &[String],
    existed: bool,
) -> Result<()> {
    let (delete, insert) = match which {
        Labels::Tags => (
            "DELETE FROM device_tags WHERE app = $1 AND device_id = $2",
            "INSERT INTO device_tags (app, device_id, tag) VALUES ($1, $2, $3)",
        ),
        Labels::Topics => (
            "DELETE FROM device_topics WHERE app = $1 AND device_id = $2",
            "INSERT INTO device_topics (app, device_id, topic) VALUES ($1, $2, $3)",
        ),
    };
    if existed {
        sqlx::query(delete)
            .bind(app)
            .bind(device_id)
            .execute(&mut *conn)
            .await?;
    }
    for label in labels {
        sqlx::query(insert)
            .bind(app)
            .bind(device_id)
            .bind(label)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
