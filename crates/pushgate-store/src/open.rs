//! Choosing the backend a database setting names and opening it, so that the gateway holds
//! an `Arc<dyn Store>` and never names a backend type.

use std::sync::Arc;
use std::time::Duration;

use crate::maintenance::Maintenance;
use crate::sqlite::{SqliteMaintenance, SqliteStore};
use crate::{Result, Store, StoreError};

/// How a store is opened; each backend reads what applies to it.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// How long a writer waits for another one's lock before failing (SQLite's
    /// `busy_timeout`: "database is locked").
    pub busy_timeout: Duration,
    /// Connections in the pool (under SQLite's WAL, readers run in parallel and writers queue
    /// on the lock).
    pub max_connections: u32,
    /// `true`: every commit is flushed to disk (SQLite `synchronous=FULL`), so an accepted
    /// message survives a power cut; `false` (`NORMAL`) survives a crash of the process but may
    /// lose the last commits on power loss.
    pub durable_commits: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(10),
            max_connections: 4,
            durable_commits: true,
        }
    }
}

/// The backend a database setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file path or a `sqlite:` URL.
    Sqlite,
    /// A `postgres://` or `postgresql://` URL.
    Postgres,
}

impl Backend {
    /// Reads the backend off the database setting: PostgreSQL URLs by their scheme, anything
    /// else is a SQLite path or URL (the zero-configuration default).
    pub fn of(database: &str) -> Backend {
        let lower = database.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Opens (creating and migrating when the backend allows) the store `database` names: a path
/// or `sqlite:` URL opens SQLite; a `postgres://` URL is refused with
/// [`StoreError::Unsupported`] until that backend exists.
pub async fn open(database: &str, settings: &StoreSettings) -> Result<Arc<dyn Store>> {
    match Backend::of(database) {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open_with(database, settings).await?)),
        Backend::Postgres => Err(StoreError::Unsupported(
            "PostgreSQL is not supported yet: use a SQLite path or sqlite: URL".into(),
        )),
    }
}

/// Opens the database `database` names for `pushgate db …` commands, without creating or
/// migrating it: a missing SQLite file is an error that names it.
pub async fn open_maintenance(database: &str) -> Result<Box<dyn Maintenance>> {
    match Backend::of(database) {
        Backend::Sqlite => Ok(Box::new(SqliteMaintenance::open(database).await?)),
        Backend::Postgres => Err(StoreError::Unsupported(
            "PostgreSQL maintenance is not supported yet: use pg_dump and pg_amcheck".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_name_postgres_and_everything_else_sqlite() {
        assert_eq!(Backend::of("postgres://u@h/db"), Backend::Postgres);
        assert_eq!(Backend::of("PostgreSQL://h/db"), Backend::Postgres);
        assert_eq!(Backend::of("sqlite://gw.db?mode=rwc"), Backend::Sqlite);
        assert_eq!(Backend::of("/var/lib/pushgate/gw.db"), Backend::Sqlite);
        assert_eq!(Backend::of("postgres.db"), Backend::Sqlite);
    }

    #[tokio::test]
    async fn a_postgres_url_is_refused_saying_so() {
        let err = open("postgres://localhost/pushgate", &StoreSettings::default())
            .await
            .err()
            .expect("PostgreSQL is not there yet");
        assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("not supported yet"), "{err}");
    }

    #[tokio::test]
    async fn a_sqlite_url_opens_a_migrated_store() {
        let dir = std::env::temp_dir().join(format!("pushgate-open-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("gw.db").display());
        let store = open(&url, &StoreSettings::default()).await.unwrap();
        let (applied, latest) = store.schema_version().await.unwrap();
        assert!(latest > 0);
        assert_eq!(applied, latest);
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
