//! Counts for metrics and readiness, read straight from the tables so that they always agree
//! with what is stored.

use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use crate::Result;
use crate::model::{ChannelQueue, DeliveryState, EventKind, QueueStats};
use crate::stored::{count, from_ms, ms};

/// Deliveries per app, channel and state.
pub(super) async fn delivery_counts(
    conn: &mut PgConnection,
) -> Result<Vec<(String, String, DeliveryState, u64)>> {
    let rows = sqlx::query(
        "SELECT app, channel, state, COUNT(*) AS n FROM deliveries GROUP BY app, channel, state",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            Ok((
                r.try_get("app")?,
                r.try_get("channel")?,
                state.parse()?,
                count(r.try_get("n")?),
            ))
        })
        .collect()
}

/// Events per app and kind.
pub(super) async fn event_counts(conn: &mut PgConnection) -> Result<Vec<(String, EventKind, u64)>> {
    let rows = sqlx::query("SELECT app, kind, COUNT(*) AS n FROM events GROUP BY app, kind")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok((r.try_get("app")?, kind.parse()?, count(r.try_get("n")?)))
        })
        .collect()
}

/// Pending and due work per app and channel.
pub(super) async fn queue_by_channel(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> Result<Vec<ChannelQueue>> {
    let rows = sqlx::query(
        "SELECT app, channel, COUNT(*) AS pending,
                COALESCE(SUM(CASE WHEN due_at <= $1 THEN 1 ELSE 0 END), 0)::bigint AS due,
                MIN(CASE WHEN due_at <= $1 THEN due_at END) AS oldest
         FROM deliveries WHERE state IN ('queued', 'retry_wait', 'in_flight')
         GROUP BY app, channel",
    )
    .bind(ms(now))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let oldest: Option<i64> = r.try_get("oldest")?;
            Ok(ChannelQueue {
                app: r.try_get("app")?,
                channel: r.try_get("channel")?,
                stats: QueueStats {
                    pending: count(r.try_get("pending")?),
                    due: count(r.try_get("due")?),
                    oldest_due: oldest.map(from_ms).transpose()?,
                },
            })
        })
        .collect()
}

/// The app's last event seq (0 when it has none).
pub(super) async fn last_event_seq(conn: &mut PgConnection, app: &str) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE app = $1")
        .bind(app)
        .fetch_one(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// How many of the app's events come after `seq`.
pub(super) async fn events_after_count(
    conn: &mut PgConnection,
    app: &str,
    seq: i64,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE app = $1 AND seq > $2")
        .bind(app)
        .bind(seq)
        .fetch_one(conn)
        .await?;
    Ok(count(n))
}
