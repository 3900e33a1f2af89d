//! Counts for metrics and readiness at a cost that does not grow with history: the same SQL
//! and decoding on every backend, run on the caller's connection.
//!
//! Totals (deliveries that reached each final state, events written per kind) are counters
//! the database keeps as the writes happen (triggers of the `counters` migration) and never
//! decrements, so deleting old rows leaves them unchanged; the queue's depth and due age are
//! read through the partial index on active deliveries (`deliveries_due`), which holds only
//! queued, waiting and in-flight rows however many finished ones are stored.

use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use time::OffsetDateTime;

use super::decode::RowRead;
use super::{count, from_ms, ms};
use crate::Result;
use crate::model::{ChannelQueue, DeliveryState, EventKind, QueueStats};

/// Deliveries that ever reached each final state, per app and channel (the kept counters;
/// PostgreSQL splits each in slots, added up here).
pub(crate) async fn delivery_counts<'c, DB, E>(
    exec: E,
) -> Result<Vec<(String, String, DeliveryState, u64)>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
{
    let rows = sqlx::query::<DB>(
        "SELECT app, channel, state, CAST(SUM(n) AS BIGINT) AS n FROM delivery_counts
         GROUP BY app, channel, state",
    )
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.text("app")?,
                r.text("channel")?,
                r.text("state")?.parse()?,
                count(r.int("n")?),
            ))
        })
        .collect()
}

/// Events ever written per app and kind (the kept counters).
pub(crate) async fn event_counts<'c, DB, E>(exec: E) -> Result<Vec<(String, EventKind, u64)>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
{
    let rows = sqlx::query::<DB>("SELECT app, kind, n FROM event_counts")
        .fetch_all(exec)
        .await?;
    rows.iter()
        .map(|r| Ok((r.text("app")?, r.text("kind")?.parse()?, count(r.int("n")?))))
        .collect()
}

/// Pending and due work per app and channel, from the partial index on active deliveries:
/// one index search per app (every delivery belongs to a stored app; the `CROSS JOIN` makes
/// SQLite walk the few apps first), so finished deliveries are never read.
pub(crate) async fn queue_by_channel<'c, DB, E>(
    exec: E,
    now: OffsetDateTime,
) -> Result<Vec<ChannelQueue>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let rows = sqlx::query::<DB>(
        "SELECT deliveries.app AS app, deliveries.channel AS channel, COUNT(*) AS pending,
                CAST(COALESCE(SUM(CASE WHEN deliveries.due_at <= $1 THEN 1 ELSE 0 END), 0)
                     AS BIGINT) AS due,
                MIN(CASE WHEN deliveries.due_at <= $1 THEN deliveries.due_at END) AS oldest
         FROM apps CROSS JOIN deliveries
         WHERE deliveries.app = apps.name
           AND deliveries.state IN ('queued', 'retry_wait', 'in_flight')
         GROUP BY deliveries.app, deliveries.channel",
    )
    .bind(ms(now))
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ChannelQueue {
                app: r.text("app")?,
                channel: r.text("channel")?,
                stats: QueueStats {
                    pending: count(r.int("pending")?),
                    due: count(r.int("due")?),
                    oldest_due: r.opt_int("oldest")?.map(from_ms).transpose()?,
                },
            })
        })
        .collect()
}

/// The app's last event seq (0 when it has none).
pub(crate) async fn last_event_seq<'c, DB, E>(exec: E, app: &str) -> Result<i64>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let row = sqlx::query::<DB>("SELECT MAX(seq) AS seq FROM events WHERE app = $1")
        .bind(app.to_string())
        .fetch_one(exec)
        .await?;
    Ok(row.opt_int("seq")?.unwrap_or(0))
}

/// How many of the app's events come after `seq`.
pub(crate) async fn events_after_count<'c, DB, E>(exec: E, app: &str, seq: i64) -> Result<u64>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let row = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM events WHERE app = $1 AND seq > $2")
        .bind(app.to_string())
        .bind(seq)
        .fetch_one(exec)
        .await?;
    Ok(count(row.int("n")?))
}
