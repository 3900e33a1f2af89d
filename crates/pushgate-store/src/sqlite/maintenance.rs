//! [`Maintenance`] of a SQLite file: `VACUUM INTO` for consistent copies while the gateway
//! writes (it reads one snapshot under WAL and never blocks writers), `PRAGMA integrity_check`
//! and `foreign_key_check`, and sizes from the `dbstat` table.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use uuid::Uuid;

use super::migrate;
use super::rows::{count, from_ms};
use crate::maintenance::{
    BackupReport, CheckReport, DatabaseStats, Maintenance, TIME_COLUMNS, TableStats,
};
use crate::{Result, StoreError};

/// The integrity check, stopping after 100 problems.
const INTEGRITY_CHECK: &str = "PRAGMA integrity_check(100)";

/// Maintenance of an existing SQLite database (never created, never migrated here).
#[derive(Debug)]
pub struct SqliteMaintenance {
    pool: SqlitePool,
    file: PathBuf,
}

impl SqliteMaintenance {
    /// Opens the database at a path or `sqlite:` URL; a missing file is an error that names
    /// it.
    pub async fn open(path_or_url: &str) -> Result<Self> {
        let options = if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url)?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        let file = options.get_filename().to_path_buf();
        if !file.exists() {
            return Err(StoreError::InvalidInput(format!(
                "no SQLite database at {}",
                file.display()
            )));
        }
        let options = options
            .create_if_missing(false)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self { pool, file })
    }
}

/// The applied schema version of the database `pool` reads (0 when it has none).
async fn applied_version(pool: &SqlitePool) -> Result<i64> {
    let has_table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    )
    .fetch_optional(pool)
    .await?;
    if has_table.is_none() {
        return Ok(0);
    }
    migrate::current(pool).await
}

/// `PRAGMA integrity_check` and `foreign_key_check`, as readable lines.
async fn problems(pool: &SqlitePool) -> Result<Vec<String>> {
    let mut out: Vec<String> = sqlx::query_scalar(INTEGRITY_CHECK)
        .fetch_all(pool)
        .await?
        .into_iter()
        .filter(|line: &String| line != "ok")
        .collect();
    let orphans = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(pool)
        .await?;
    for row in orphans {
        let table: String = row.try_get(0)?;
        let rowid: Option<i64> = row.try_get(1)?;
        let parent: String = row.try_get(2)?;
        out.push(format!(
            "{table} row {} points at a missing {parent} row",
            rowid.map_or_else(|| "?".to_string(), |r| r.to_string())
        ));
    }
    Ok(out)
}

/// Opens a finished copy read-only and checks it.
async fn check_copy(path: &Path) -> Result<i64> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let found = problems(&pool).await;
    let version = applied_version(&pool).await;
    pool.close().await;
    let found = found?;
    if let Some(first) = found.first() {
        return Err(StoreError::Corrupt(format!(
            "the copy fails its integrity check: {first}"
        )));
    }
    version
}

/// Flushes a file, and the directory entry of a file, to disk.
fn sync_file_and_dir(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> StoreError {
    StoreError::InvalidInput(format!("{what} {}: {err}", path.display()))
}

/// The temporary name a copy is written under, next to its target so that the final link
/// stays on one file system.
fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    target.with_file_name(format!(".{name}.partial-{}", Uuid::now_v7()))
}

/// An identifier read from `sqlite_master`, quoted for SQL text (names cannot be bound).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[async_trait]
impl Maintenance for SqliteMaintenance {
    async fn backup(&self, target: &Path) -> Result<BackupReport> {
        if target.exists() {
            return Err(StoreError::InvalidInput(format!(
                "{} exists: a backup never overwrites a file",
                target.display()
            )));
        }
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(StoreError::InvalidInput(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let partial = partial_path(target);
        let written = async {
            sqlx::query("VACUUM INTO $1")
                .bind(partial.to_string_lossy().into_owned())
                .execute(&self.pool)
                .await?;
            let version = check_copy(&partial).await?;
            sync_file_and_dir(&partial).map_err(|e| io_error("cannot flush", &partial, e))?;
            // A hard link never replaces a file that appeared meanwhile; rename would.
            std::fs::hard_link(&partial, target)
                .map_err(|e| io_error("cannot create", target, e))?;
            sync_file_and_dir(target).map_err(|e| io_error("cannot flush", target, e))?;
            let bytes = std::fs::metadata(target)
                .map_err(|e| io_error("cannot read", target, e))?
                .len();
            Ok(BackupReport {
                bytes,
                schema_version: version,
            })
        }
        .await;
        let _ = std::fs::remove_file(&partial);
        written
    }

    async fn check(&self) -> Result<CheckReport> {
        // A damaged file can fail the very queries that look for damage: that is a finding,
        // not a failure of the check.
        let mut found = Vec::new();
        let applied_version = applied_version(&self.pool).await.unwrap_or_else(|e| {
            found.push(format!("cannot read the schema version: {e}"));
            0
        });
        match problems(&self.pool).await {
            Ok(list) => found.extend(list),
            Err(e) => found.push(format!("integrity check failed: {e}")),
        }
        Ok(CheckReport {
            applied_version,
            latest_version: migrate::LATEST,
            problems: found,
        })
    }

    async fn stats(&self) -> Result<DatabaseStats> {
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&self.pool)
            .await?;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.pool)
            .await?;
        let free_pages: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&self.pool)
            .await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        // dbstat is compiled into the bundled SQLite; without it, sizes are left out.
        let sizes: Vec<(String, i64)> = sqlx::query_as(
            "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s \
             JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {}",
                quoted(&name)
            )))
            .fetch_one(&self.pool)
            .await?;
            let mut oldest = None;
            if let Some((_, column)) = TIME_COLUMNS.iter().find(|(t, _)| *t == name) {
                let has_column: Option<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1) WHERE name = $2")
                        .bind(&name)
                        .bind(column)
                        .fetch_optional(&self.pool)
                        .await?;
                if has_column.is_some() {
                    let min: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT MIN({}) FROM {}",
                        quoted(column),
                        quoted(&name)
                    )))
                    .fetch_one(&self.pool)
                    .await?;
                    oldest = min.map(from_ms).transpose()?;
                }
            }
            let bytes = sizes
                .iter()
                .find(|(t, _)| *t == name)
                .map(|(_, b)| count(*b));
            tables.push(TableStats {
                bytes: bytes.or_else(|| (!sizes.is_empty()).then_some(0)),
                name,
                rows: count(rows),
                oldest,
            });
        }
        let wal = PathBuf::from(format!("{}-wal", self.file.display()));
        Ok(DatabaseStats {
            bytes: count(pages.saturating_mul(page_size)),
            wal_bytes: std::fs::metadata(&wal).ok().map(|m| m.len()),
            free_bytes: Some(count(free_pages.saturating_mul(page_size))),
            tables,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
