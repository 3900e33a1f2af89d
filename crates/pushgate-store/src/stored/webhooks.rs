//! Webhook cursors: the last event each app's receiver accepted, with a lease so that one
//! sender at a time (of every process or instance) delivers an app's events, in order. The
//! same statements on every backend, each run on the caller's connection.

use std::time::Duration;

use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use time::OffsetDateTime;

use super::decode::{self, RowRead};
use super::{ms, ms_after};
use crate::Result;
use crate::model::WebhookState;

/// The columns [`decode::webhook`] reads, as a literal for `concat!`.
macro_rules! columns {
    () => {
        "app, delivered_seq, attempts, last_error, last_attempt_at, next_attempt_at"
    };
}

/// Creates the app's cursor at `start_seq` unless it exists.
pub(crate) async fn init<'c, DB, E>(
    exec: E,
    app: &str,
    start_seq: i64,
    now: OffsetDateTime,
) -> Result<()>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "INSERT INTO webhooks (app, delivered_seq, next_attempt_at) VALUES ($1, $2, $3)
         ON CONFLICT (app) DO NOTHING",
    )
    .bind(app.to_string())
    .bind(start_seq)
    .bind(ms(now))
    .execute(exec)
    .await?;
    Ok(())
}

/// Takes the app's webhook lease for `owner` when it is due and free (or already theirs).
pub(crate) async fn claim<'c, DB, E>(
    exec: E,
    app: &str,
    owner: &str,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Option<WebhookState>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let row = sqlx::query::<DB>(concat!(
        "UPDATE webhooks SET lease_owner = $1, lease_until = $2
         WHERE app = $3 AND next_attempt_at <= $4
           AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= $4)
         RETURNING ",
        columns!()
    ))
    .bind(owner.to_string())
    .bind(ms_after(now, lease))
    .bind(app.to_string())
    .bind(ms(now))
    .fetch_optional(exec)
    .await?;
    row.as_ref().map(decode::webhook).transpose()
}

/// Moves the cursor (never back) after a 2xx, if `owner` still holds the lease.
pub(crate) async fn done<'c, DB, E>(
    exec: E,
    app: &str,
    owner: &str,
    delivered_seq: i64,
    now: OffsetDateTime,
) -> Result<bool>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let updated = sqlx::query::<DB>(
        "UPDATE webhooks
         SET delivered_seq = CASE WHEN delivered_seq > $1 THEN delivered_seq ELSE $1 END,
             attempts = 0, last_error = NULL, last_attempt_at = $2, next_attempt_at = $2
         WHERE app = $3 AND lease_owner = $4
         RETURNING app",
    )
    .bind(delivered_seq)
    .bind(ms(now))
    .bind(app.to_string())
    .bind(owner.to_string())
    .fetch_optional(exec)
    .await?;
    Ok(updated.is_some())
}

/// Records a failed attempt and when to try again, if `owner` still holds the lease.
pub(crate) async fn failed<'c, DB, E>(
    exec: E,
    app: &str,
    owner: &str,
    error: &str,
    next_attempt_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let updated = sqlx::query::<DB>(
        "UPDATE webhooks SET attempts = attempts + 1, last_error = $1, last_attempt_at = $2,
                next_attempt_at = $3
         WHERE app = $4 AND lease_owner = $5
         RETURNING app",
    )
    .bind(error.to_string())
    .bind(ms(now))
    .bind(ms(next_attempt_at))
    .bind(app.to_string())
    .bind(owner.to_string())
    .fetch_optional(exec)
    .await?;
    Ok(updated.is_some())
}

/// Gives the lease back (a graceful stop), so another sender need not wait for it to run out.
pub(crate) async fn release<'c, DB, E>(exec: E, app: &str, owner: &str) -> Result<()>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL
         WHERE app = $1 AND lease_owner = $2",
    )
    .bind(app.to_string())
    .bind(owner.to_string())
    .execute(exec)
    .await?;
    Ok(())
}

/// The app's cursor, if it has a webhook.
pub(crate) async fn get<'c, DB, E>(exec: E, app: &str) -> Result<Option<WebhookState>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let row = sqlx::query::<DB>(concat!(
        "SELECT ",
        columns!(),
        " FROM webhooks WHERE app = $1"
    ))
    .bind(app.to_string())
    .fetch_optional(exec)
    .await?;
    row.as_ref().map(decode::webhook).transpose()
}
