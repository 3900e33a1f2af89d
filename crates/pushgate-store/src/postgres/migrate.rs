//! The PostgreSQL migration runner: numbered SQL scripts embedded in the binary, applied in
//! order in one transaction under an advisory lock, so that instances starting together
//! migrate once (the others wait, then find every version recorded).

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::stored::ms;
use crate::{Result, StoreError};

/// The PostgreSQL schema history: (version, name, script). Append only; never edit a shipped
/// one. Versions match SQLite's, so `schema_version` means the same on both.
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
    (4, "counters", include_str!("migrations/0004_counters.sql")),
    (
        5,
        "retention",
        include_str!("migrations/0005_retention.sql"),
    ),
    (
        6,
        "fanout_chunks",
        include_str!("migrations/0006_fanout_chunks.sql"),
    ),
    (
        7,
        "fanout_progress",
        include_str!("migrations/0007_fanout_progress.sql"),
    ),
    (
        8,
        "delivery_token_index",
        include_str!("migrations/0008_delivery_token_index.sql"),
    ),
];

/// The version the schema has once every migration ran.
pub(super) const LATEST: i64 = 8;

/// First key of the migration lock (`pg_advisory_xact_lock(key, hashtext(schema))`): the lock
/// is per schema, so databases holding several pushgate schemas migrate them independently.
const LOCK_NAMESPACE: i32 = 0x7067_6d67; // "pgmg"

/// The highest migration applied (0 for a new schema).
pub(super) async fn current(pool: &PgPool) -> Result<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(0);
    }
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Applies every migration not yet recorded, under the schema's migration lock; returns how
/// many it applied (0 when another instance was first).
pub(super) async fn run(pool: &PgPool) -> Result<u32> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
        .bind(LOCK_NAMESPACE)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let mut applied = 0;
    for &(version, name, script) in MIGRATIONS {
        if done.contains(&version) {
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
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(ms(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}
