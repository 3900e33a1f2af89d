//! Webhook cursors: the statements every backend shares ([`crate::stored::webhooks`]), on a
//! SQLite connection.

use std::time::Duration;

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use crate::Result;
use crate::model::WebhookState;
use crate::stored::webhooks as shared;

/// Creates the app's cursor at `start_seq` unless it exists.
pub(super) async fn init(
    conn: &mut SqliteConnection,
    app: &str,
    start_seq: i64,
    now: OffsetDateTime,
) -> Result<()> {
    shared::init(conn, app, start_seq, now).await
}

/// Takes the app's webhook lease for `owner` when it is due and free (or already theirs).
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    app: &str,
    owner: &str,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Option<WebhookState>> {
    shared::claim(conn, app, owner, now, lease).await
}

/// Moves the cursor after a 2xx, if `owner` still holds the lease.
pub(super) async fn done(
    conn: &mut SqliteConnection,
    app: &str,
    owner: &str,
    delivered_seq: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    shared::done(conn, app, owner, delivered_seq, now).await
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
    shared::failed(conn, app, owner, error, next_attempt_at, now).await
}

/// Gives the lease back (a graceful stop).
pub(super) async fn release(conn: &mut SqliteConnection, app: &str, owner: &str) -> Result<()> {
    shared::release(conn, app, owner).await
}

/// The app's cursor, if it has a webhook.
pub(super) async fn get(conn: &mut SqliteConnection, app: &str) -> Result<Option<WebhookState>> {
    shared::get(conn, app).await
}
