//! [`Maintenance`] of a PostgreSQL schema: the schema version, indexes left invalid by a
//! failed build, and table sizes with their oldest rows. Backups are PostgreSQL's own job
//! (`pg_dump`, or the server's base backups and WAL archiving).

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool};

use super::migrate;
use crate::maintenance::{
    BackupReport, CheckReport, DatabaseStats, Maintenance, TIME_COLUMNS, TableStats,
};
use crate::stored::{count, from_ms};
use crate::{Result, StoreError};

/// Maintenance of the schema a PostgreSQL URL names (never created or migrated here).
#[derive(Debug)]
pub struct PostgresMaintenance {
    pool: PgPool,
}

impl PostgresMaintenance {
    /// Connects with one connection.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url.trim_start())?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

/// An identifier read from the catalog, quoted for SQL text (names cannot be bound).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[async_trait]
impl Maintenance for PostgresMaintenance {
    async fn backup(&self, _target: &Path) -> Result<BackupReport> {
        Err(StoreError::Unsupported(
            "pushgate db backup copies SQLite databases; for PostgreSQL use pg_dump (a \
             consistent snapshot while the gateway runs) or the server's base backups"
                .into(),
        ))
    }

    async fn check(&self) -> Result<CheckReport> {
        let mut problems = Vec::new();
        let applied_version = migrate::current(&self.pool).await.unwrap_or_else(|e| {
            problems.push(format!("cannot read the schema version: {e}"));
            0
        });
        let invalid: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready) \
             ORDER BY c.relname",
        )
        .fetch_all(&self.pool)
        .await?;
        problems.extend(
            invalid
                .into_iter()
                .map(|name| format!("index {name} is invalid: rebuild it with REINDEX")),
        );
        Ok(CheckReport {
            applied_version,
            latest_version: migrate::LATEST,
            problems,
        })
    }

    async fn stats(&self) -> Result<DatabaseStats> {
        let tables: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
             ORDER BY c.relname",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(tables.len());
        for (name, bytes) in tables {
            let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {}",
                quoted(&name)
            )))
            .fetch_one(&self.pool)
            .await?;
            let mut oldest = None;
            if let Some((_, column)) = TIME_COLUMNS.iter().find(|(t, _)| *t == name) {
                let min: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT MIN({}) FROM {}",
                    quoted(column),
                    quoted(&name)
                )))
                .fetch_one(&self.pool)
                .await?;
                oldest = min.map(from_ms).transpose()?;
            }
            out.push(TableStats {
                name,
                rows: count(rows),
                bytes: Some(count(bytes)),
                oldest,
            });
        }
        Ok(DatabaseStats {
            bytes: out.iter().filter_map(|t| t.bytes).sum(),
            wal_bytes: None,
            free_bytes: None,
            tables: out,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
