//! Webhook cursors: the last event each app's receiver accepted, with a lease so that one
//! sender at a time delivers an app's events, in order.

use std::time::Duration;

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use super::rows::{ms, ms_after};
use crate::Result;
use crate::model::WebhookState;
use crate::stored::decode::webhook as state;

/// The columns [`state`] reads, as a literal for `concat!`.
macro_rules! columns {
    () => {
        "app, delivered_seq, attempts, last_error, last_attempt_at, next_attempt_at"
    };
}

/// Creates the app's cursor at `start_seq` unless it exists.
pub(super) async fn init(
    conn: &mut SqliteConnection,
    app: &str,
    start_seq: i64,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhooks (app, delivered_seq, next_attempt_at) VALUES ($1, $2, $3)
         ON CONFLICT (app) DO NOTHING",
    )
    .bind(app)
    .bind(start_seq)
    .bind(ms(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the app's webhook lease for `owner` when it is due and free (or already theirs).
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    app: &str,
    owner: &str,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Option<WebhookState>> {
    let row = sqlx::query(concat!(
        "UPDATE webhooks SET lease_owner = $1, lease_until = $2
         WHERE app = $3 AND next_attempt_at <= $4
           AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= $4)
         RETURNING ",
        columns!()
    ))
    .bind(owner)
    .bind(ms_after(now, lease))
    .bind(app)
    .bind(ms(now))
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(state).transpose()
}

/// Moves the cursor after a 2xx, if `owner` still holds the lease.
pub(super) async fn done(
    conn: &mut SqliteConnection,
    app: &str,
    owner: &str,
    delivered_seq: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE webhooks SET delivered_seq = MAX(delivered_seq, $1), attempts = 0,
                last_error = NULL, last_attempt_at = $2, next_attempt_at = $2
         WHERE app = $3 AND lease_owner = $4",
    )
    .bind(delivered_seq)
    .bind(ms(now))
    .bind(app)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a failed attempt and when to try again, if `owner` still holds the lease.
pub(super) async fn failed(
    conn: &mut SqliteConnection,
    app: &str,
    owner: &str,
    error: &str,
    next_attempt_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE webhooks SET attempts = attempts + 1, last_error = $1, last_attempt_at = $2,
                next_attempt_at = $3
         WHERE app = $4 AND lease_owner = $5",
    )
    .bind(error)
    .bind(ms(now))
    .bind(ms(next_attempt_at))
    .bind(app)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives the lease back (a graceful stop), so another sender need not wait for it to run out.
pub(super) async fn release(conn: &mut SqliteConnection, app: &str, owner: &str) -> Result<()> {
    sqlx::query(
        "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL
         WHERE app = $1 AND lease_owner = $2",
    )
    .bind(app)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// The app's cursor, if it has a webhook.
pub(super) async fn get(conn: &mut SqliteConnection, app: &str) -> Result<Option<WebhookState>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM webhooks WHERE app = $1"
    ))
    .bind(app)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(state).transpose()
}
