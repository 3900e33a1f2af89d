//! Counts for metrics and readiness: the queries every backend shares
//! ([`crate::stored::stats`]), on a SQLite connection.

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use crate::Result;
use crate::model::{ChannelQueue, DeliveryState, EventKind};
use crate::stored::stats as shared;

/// Deliveries that ever reached each final state, per app and channel (kept counters).
pub(super) async fn delivery_counts(
    conn: &mut SqliteConnection,
) -> Result<Vec<(String, String, DeliveryState, u64)>> {
    shared::delivery_counts(conn).await
}

/// Events ever written, per app and kind (kept counters).
pub(super) async fn event_counts(
    conn: &mut SqliteConnection,
) -> Result<Vec<(String, EventKind, u64)>> {
    shared::event_counts(conn).await
}

/// Pending and due work per app and channel.
pub(super) async fn queue_by_channel(
    conn: &mut SqliteConnection,
    now: OffsetDateTime,
) -> Result<Vec<ChannelQueue>> {
    shared::queue_by_channel(conn, now).await
}

/// The app's last event seq (0 when it has none).
pub(super) async fn last_event_seq(conn: &mut SqliteConnection, app: &str) -> Result<i64> {
    shared::last_event_seq(conn, app).await
}

/// How many of the app's events come after `seq`.
pub(super) async fn events_after_count(
    conn: &mut SqliteConnection,
    app: &str,
    seq: i64,
) -> Result<u64> {
    shared::events_after_count(conn, app, seq).await
}
