//! A tiny migration runner: numbered SQL scripts embedded in the binary, applied in order, each
//! in its own write transaction and recorded in `schema_migrations`.

use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::BEGIN_WRITE;
use super::rows::ms;
use super::token_key;
use crate::{Result, StoreError};

/// The SQLite schema history: (version, name, script). Append only; never edit a shipped one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (
        2,
        "events_webhooks",
        include_str!("migrations/0002_events_webhooks.sql"),
    ),
    (
        3,
        "instances",
        include_str!("migrations/0003_instances.sql"),
    ),
    (
        4,
        "write_path",
        include_str!("migrations/0004_write_path.sql"),
    ),
    (5, "counters", include_str!("migrations/0005_counters.sql")),
    (
        6,
        "retention",
        include_str!("migrations/0006_retention.sql"),
    ),
    (
        7,
        "counted_in_sets",
        include_str!("migrations/0007_counted_in_sets.sql"),
    ),
    (
        8,
        "token_key",
        include_str!("migrations/0008_token_key.sql"),
    ),
    (
        9,
        "fanout_chunks",
        include_str!("migrations/0009_fanout_chunks.sql"),
    ),
    (
        10,
        "fanout_progress",
        include_str!("migrations/0010_fanout_progress.sql"),
    ),
];

/// The version the schema has once every migration ran.
pub(super) const LATEST: i64 = 10;

/// What a migration needs done in Rust after its script, in the same transaction: data that
/// SQL alone cannot compute, and what must wait for that data.
async fn after_script(version: i64, conn: &mut SqliteConnection) -> Result<()> {
    if version == 8 {
        token_key::fill_missing(&mut *conn).await?;
        sqlx::raw_sql(include_str!("migrations/0008_token_key_index.sql"))
            .execute(conn)
            .await
            .map_err(|source| StoreError::Migration {
                version,
                name: "token_key_index",
                source,
            })?;
    }
    Ok(())
}

/// The highest migration applied to this database (0 for a new one).
pub(super) async fn current(pool: &SqlitePool) -> Result<i64> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Applies every migration not yet recorded; safe to run from several processes at once.
pub(super) async fn run(pool: &SqlitePool) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    for &(version, name, script) in MIGRATIONS {
        let mut tx = pool.begin_with(BEGIN_WRITE).await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(script)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration {
                version,
                name,
                source,
            })?;
        after_script(version, &mut tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(ms(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
