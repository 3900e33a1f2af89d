//! Retention's deletes, the same statements on every backend: each deletes at most a batch of
//! one table's rows, chosen through an index (never by scanning history), so that one call is
//! a short transaction. Deletes never touch counters: totals kept for metrics are not history.

use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use time::OffsetDateTime;

use super::decode::RowRead;
use super::{from_ms, ms};
use crate::Result;
use crate::retention::{PurgeLimits, PurgeReport};

/// How many rows a statement changed, read from every backend's result type.
pub(crate) trait Affected {
    /// The rows changed.
    fn affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The delivery states that still wait for a worker: a message with one of them is unfinished.
macro_rules! active_states {
    () => {
        "('queued', 'retry_wait', 'in_flight')"
    };
}

/// Up to `$3` deliveries of the app's (`$1`) oldest finished messages accepted before `$2`.
pub(crate) const DELETE_DELIVERIES: &str = concat!(
    "DELETE FROM deliveries WHERE id IN (
       SELECT d.id FROM deliveries d WHERE d.message_id IN (
         SELECT m.id FROM messages m
         WHERE m.app = $1 AND m.created_at < $2 AND m.expansion IS NULL
           AND NOT EXISTS (SELECT 1 FROM deliveries a
                           WHERE a.message_id = m.id AND a.state IN ",
    active_states!(),
    ")
         ORDER BY m.created_at LIMIT $3)
       LIMIT $3)"
);

/// Up to `$3` of the app's (`$1`) messages accepted before `$2` with no delivery left.
pub(crate) const DELETE_MESSAGES: &str = "DELETE FROM messages WHERE id IN (
       SELECT m.id FROM messages m
       WHERE m.app = $1 AND m.created_at < $2 AND m.expansion IS NULL
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)
       ORDER BY m.created_at LIMIT $3)
     RETURNING created_at";

/// Of the app's (`$1`) first `$3` events up to its webhook's cursor (or `$2`), those written
/// before `$4`.
pub(crate) const DELETE_EVENTS: &str = "DELETE FROM events WHERE seq IN (
       SELECT seq FROM events
       WHERE app = $1
         AND seq <= COALESCE((SELECT delivered_seq FROM webhooks WHERE app = $1), $2)
       ORDER BY seq LIMIT $3)
     AND created_at < $4";

/// Up to `$3` of the app's (`$1`) devices invalid since before `$2`. The outer condition
/// repeats the inner one: a device registered again while the delete waited for its row
/// (PostgreSQL re-reads a row changed meanwhile against the outer condition only) is kept.
pub(crate) const DELETE_INVALID_DEVICES: &str = "DELETE FROM devices WHERE (app, device_id) IN (
       SELECT app, device_id FROM devices
       WHERE app = $1 AND state = 'invalid' AND updated_at < $2
       ORDER BY updated_at LIMIT $3)
     AND state = 'invalid' AND updated_at < $2";

/// Deletes up to `batch` deliveries of the app's oldest finished messages accepted before
/// `cutoff` (the messages themselves go once they have none left, [`messages`]).
pub(crate) async fn deliveries<'c, DB, E>(
    exec: E,
    app: &str,
    cutoff: i64,
    batch: u32,
) -> Result<u64>
where
    DB: Database,
    DB::QueryResult: Affected,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    delete_older(exec, DELETE_DELIVERIES, app, cutoff, batch).await
}

/// Runs one of the deletes that take (`$1` app, `$2` cutoff, `$3` batch); returns how many
/// rows it deleted.
async fn delete_older<'c, DB, E>(
    exec: E,
    sql: &'static str,
    app: &str,
    cutoff: i64,
    batch: u32,
) -> Result<u64>
where
    DB: Database,
    DB::QueryResult: Affected,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let done = sqlx::query::<DB>(sql)
        .bind(app.to_string())
        .bind(cutoff)
        .bind(i64::from(batch))
        .execute(exec)
        .await?;
    Ok(done.affected())
}

/// Deletes up to `batch` of the app's messages accepted before `cutoff` that have no delivery
/// left (finished ones whose deliveries [`deliveries`] deleted, or that reached nobody);
/// returns how many, and the newest acceptance time among them.
pub(crate) async fn messages<'c, DB, E>(
    exec: E,
    app: &str,
    cutoff: i64,
    batch: u32,
) -> Result<(u64, Option<OffsetDateTime>)>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let rows = sqlx::query::<DB>(DELETE_MESSAGES)
        .bind(app.to_string())
        .bind(cutoff)
        .bind(i64::from(batch))
        .fetch_all(exec)
        .await?;
    let mut newest: Option<i64> = None;
    for row in &rows {
        let at = row.int("created_at")?;
        newest = Some(newest.map_or(at, |n| n.max(at)));
    }
    Ok((rows.len() as u64, newest.map(from_ms).transpose()?))
}

/// Moves the app's horizon of deleted messages forward to `through` (never back).
pub(crate) async fn record_horizon<'c, DB, E>(
    exec: E,
    app: &str,
    through: OffsetDateTime,
) -> Result<()>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "INSERT INTO retention_horizons (app, messages_through) VALUES ($1, $2)
         ON CONFLICT (app) DO UPDATE SET messages_through =
           CASE WHEN retention_horizons.messages_through > excluded.messages_through
                THEN retention_horizons.messages_through ELSE excluded.messages_through END",
    )
    .bind(app.to_string())
    .bind(ms(through))
    .execute(exec)
    .await?;
    Ok(())
}

/// The newest acceptance time of a message of the app that retention deleted, if any.
pub(crate) async fn horizon<'c, DB, E>(exec: E, app: &str) -> Result<Option<OffsetDateTime>>
where
    DB: Database,
    DB::Row: RowRead,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let row = sqlx::query::<DB>("SELECT messages_through FROM retention_horizons WHERE app = $1")
        .bind(app.to_string())
        .fetch_optional(exec)
        .await?;
    row.map(|r| r.int("messages_through").and_then(from_ms))
        .transpose()
}

/// Deletes up to `batch` of the app's events written before `cutoff`, among its oldest events
/// that its webhook (if it has one) delivered. The batch is taken in `seq` order first, then
/// filtered by age, so a call reads at most `batch` index entries; events are written in
/// time order, so the oldest by `seq` are the oldest by time.
pub(crate) async fn events<'c, DB, E>(exec: E, app: &str, cutoff: i64, batch: u32) -> Result<u64>
where
    DB: Database,
    DB::QueryResult: Affected,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let done = sqlx::query::<DB>(DELETE_EVENTS)
        .bind(app.to_string())
        .bind(i64::MAX)
        .bind(i64::from(batch))
        .bind(cutoff)
        .execute(exec)
        .await?;
    Ok(done.affected())
}

/// Deletes up to `batch` of the app's devices invalid (and unchanged) since before `cutoff`;
/// their tags, topics and pending registration go with them.
pub(crate) async fn invalid_devices<'c, DB, E>(
    exec: E,
    app: &str,
    cutoff: i64,
    batch: u32,
) -> Result<u64>
where
    DB: Database,
    DB::QueryResult: Affected,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    delete_older(exec, DELETE_INVALID_DEVICES, app, cutoff, batch).await
}

/// `now - limit` as stored, saturating.
fn cutoff(now: OffsetDateTime, limit: std::time::Duration) -> i64 {
    ms(now).saturating_sub(i64::try_from(limit.as_millis()).unwrap_or(i64::MAX))
}

/// One purge on the caller's connection (inside the caller's transaction): each kind of row
/// with a limit, at most `limits.batch` rows per table.
pub(crate) async fn purge<DB>(
    conn: &mut DB::Connection,
    app: &str,
    limits: &PurgeLimits,
    now: OffsetDateTime,
) -> Result<PurgeReport>
where
    DB: Database,
    DB::Row: RowRead,
    DB::QueryResult: Affected,
    DB::Arguments: IntoArguments<DB>,
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let mut report = PurgeReport::default();
    let batch = limits.batch.max(1);
    if let Some(limit) = limits.messages {
        let before = cutoff(now, limit);
        report.deliveries = deliveries(&mut *conn, app, before, batch).await?;
        let (n, newest) = messages(&mut *conn, app, before, batch).await?;
        report.messages = n;
        report.purged_through = newest;
        if let Some(through) = newest {
            record_horizon(&mut *conn, app, through).await?;
        }
    }
    if let Some(limit) = limits.events {
        report.events = events(&mut *conn, app, cutoff(now, limit), batch).await?;
    }
    if let Some(limit) = limits.invalid_devices {
        report.devices = invalid_devices(&mut *conn, app, cutoff(now, limit), batch).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store};
    use sqlx::Row;

    /// Each delete, how many integer parameters follow the app name, and the indexes its
    /// plan must search (the ones retention's migration added among them).
    const STATEMENTS: [(&str, usize, &[&str]); 4] = [
        (
            DELETE_DELIVERIES,
            2,
            &["messages_app_created", "deliveries_message"],
        ),
        (DELETE_MESSAGES, 2, &["messages_app_created"]),
        (DELETE_EVENTS, 3, &["events_app_seq"]),
        (DELETE_INVALID_DEVICES, 2, &["devices_invalid_since"]),
    ];

    /// The query plan SQLite chooses for `sql`, one line per step.
    async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
        sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect()
    }

    #[tokio::test]
    async fn every_delete_finds_its_rows_through_an_index_on_sqlite() {
        let dir =
            std::env::temp_dir().join(format!("pushgate-purge-plan-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plan.db");
        let store = SqliteStore::open(&path.to_string_lossy()).await.unwrap();
        store.close().await;
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        for (sql, _, indexes) in STATEMENTS {
            let steps = plan(&pool, sql).await;
            let scans: Vec<&String> = steps
                .iter()
                .filter(|s| s.starts_with("SCAN ") && !s.contains("LIST SUBQUERY"))
                .collect();
            assert!(scans.is_empty(), "{sql}\nscans history: {steps:#?}");
            for index in indexes {
                assert!(
                    steps.iter().any(|s| s.contains(index)),
                    "{sql}\ndoes not search {index}: {steps:#?}"
                );
            }
        }
        pool.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn every_delete_finds_its_rows_through_an_index_on_postgres() {
        use sqlx::Connection;
        let Some(schema) = pushgate_testkit::postgres::fresh_schema().await else {
            return; // no server here, and that is allowed
        };
        crate::PostgresStore::open(schema.url())
            .await
            .unwrap()
            .close()
            .await;
        let mut conn = sqlx::PgConnection::connect(schema.url()).await.unwrap();
        // Empty tables make a sequential scan the cheapest plan; without it, a statement
        // that has no index to use still scans, and that is what this looks for.
        sqlx::raw_sql("SET enable_seqscan = off")
            .execute(&mut conn)
            .await
            .unwrap();
        for (sql, ints, indexes) in STATEMENTS {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"))).bind("app");
            for _ in 0..ints {
                q = q.bind(1_i64);
            }
            let steps: Vec<String> = q
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            let scans: Vec<&String> = steps.iter().filter(|s| s.contains("Seq Scan")).collect();
            assert!(scans.is_empty(), "{sql}\nscans history: {steps:#?}");
            for index in indexes {
                assert!(
                    steps.iter().any(|s| s.contains(index)),
                    "{sql}\ndoes not search {index}: {steps:#?}"
                );
            }
        }
        conn.close().await.unwrap();
    }
}
