//! Operator tools on a database, kept apart from [`Store`](crate::Store) (what the gateway
//! uses to serve) because they run from `pushgate db …` next to a live gateway: a consistent
//! copy while it serves, an integrity check, and table sizes with their oldest rows.

use std::path::Path;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::Result;

/// Tables that record when their rows were written, and the column that says it (every
/// backend's `stats` reports their oldest row).
pub(crate) const TIME_COLUMNS: &[(&str, &str)] = &[
    ("messages", "created_at"),
    ("deliveries", "updated_at"),
    ("events", "created_at"),
    ("devices", "created_at"),
    ("pending_registrations", "created_at"),
    ("instances", "started_at"),
];

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// The schema version the copy holds.
    pub schema_version: i64,
}

/// What a check found: the schema versions and every problem, in the database's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The highest migration applied to the database (0 for an empty one).
    pub applied_version: i64,
    /// The version this build of pushgate expects.
    pub latest_version: i64,
    /// Integrity problems; empty when the database is sound.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// True when the schema is current and nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty() && self.applied_version == self.latest_version
    }
}

/// One table's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// The table's name.
    pub name: String,
    /// Its rows.
    pub rows: u64,
    /// Bytes on disk of the table and its indexes, when the backend can tell.
    pub bytes: Option<u64>,
    /// The time of its oldest row, for tables that record one.
    pub oldest: Option<OffsetDateTime>,
}

/// The whole database's size and its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStats {
    /// Bytes of the database (SQLite: the main file, without its write-ahead log).
    pub bytes: u64,
    /// Bytes of the write-ahead log not yet checkpointed, when there is one.
    pub wal_bytes: Option<u64>,
    /// Bytes inside the database that are free for reuse.
    pub free_bytes: Option<u64>,
    /// Every table, by name.
    pub tables: Vec<TableStats>,
}

/// Maintenance of one database; opened by [`open_maintenance`](crate::open_maintenance),
/// which never creates or migrates a database.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Writes a consistent copy of the database to `target` while other processes keep
    /// writing to it. Refuses a `target` that exists; a copy that fails leaves nothing at
    /// `target`.
    async fn backup(&self, target: &Path) -> Result<BackupReport>;

    /// Checks the schema version and the database's integrity.
    async fn check(&self) -> Result<CheckReport>;

    /// Table sizes and their oldest rows.
    async fn stats(&self) -> Result<DatabaseStats>;

    /// Closes the connections.
    async fn close(&self);
}
