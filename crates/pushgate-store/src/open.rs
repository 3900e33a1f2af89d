//! Choosing the backend a database setting names and opening it, so that the gateway holds
//! an `Arc<dyn Store>` and never names a backend type.

use std::sync::Arc;
use std::time::Duration;

use crate::maintenance::Maintenance;
use crate::postgres::{PostgresMaintenance, PostgresStore};
use crate::sqlite::{SqliteMaintenance, SqliteStore};
use crate::{Result, Store};

/// How a store is opened; each backend reads what applies to it.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// How long a writer waits for another one's lock before failing (SQLite's
    /// `busy_timeout`: "database is locked").
    pub busy_timeout: Duration,
    /// Connections in the SQLite pool of readers (under SQLite's WAL they run in parallel);
    /// the writer keeps one more connection of its own.
    pub max_connections: u32,
    /// `true`: every commit is flushed to disk (SQLite `synchronous=FULL`), so an accepted
    /// message survives a power cut; `false` (`NORMAL`) survives a crash of the process but may
    /// lose the last commits on power loss.
    pub durable_commits: bool,
    /// Most connections one instance opens to PostgreSQL (each instance has its own pool:
    /// keep `instances × pool_max_connections` under the server's `max_connections`).
    pub pool_max_connections: u32,
    /// How long an operation waits for a free PostgreSQL connection (or for a new one to be
    /// established) before it fails.
    pub pool_acquire_timeout: Duration,
    /// Most deliveries of one fan-out stored in one transaction: a message reaching more
    /// devices is answered once the first chunk is stored, and the rest follow in chunks of
    /// this size ([`Store::expand_audience`]), so that no write waits for a whole fan-out.
    pub fanout_chunk: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(10),
            max_connections: 4,
            durable_commits: true,
            pool_max_connections: 16,
            pool_acquire_timeout: Duration::from_secs(10),
            fanout_chunk: crate::stored::fanout::DEFAULT_CHUNK,
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

/// Opens the store `database` names and brings its schema up to date: a path or `sqlite:`
/// URL opens (creating if missing) a SQLite file; a `postgres://` or `postgresql://` URL
/// connects to PostgreSQL and migrates under its migration lock.
pub async fn open(database: &str, settings: &StoreSettings) -> Result<Arc<dyn Store>> {
    match Backend::of(database) {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open_with(database, settings).await?)),
        Backend::Postgres => Ok(Arc::new(
            PostgresStore::open_with(database.trim_start(), settings).await?,
        )),
    }
}

/// Opens the database `database` names for `pushgate db …` commands, without creating or
/// migrating it: a missing SQLite file is an error that names it.
/// (PostgreSQL: `backup` is refused in favour of `pg_dump`.)
pub async fn open_maintenance(database: &str) -> Result<Box<dyn Maintenance>> {
    match Backend::of(database) {
        Backend::Sqlite => Ok(Box::new(SqliteMaintenance::open(database).await?)),
        Backend::Postgres => Ok(Box::new(PostgresMaintenance::open(database).await?)),
    }
}

/// The database setting as it may be shown (logs, errors, status pages): a URL's password
/// is replaced by `***`; a file path is shown as is.
pub fn redacted(database: &str) -> String {
    let Some((scheme, rest)) = database.split_once("://") else {
        return database.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => database.to_string(),
    }
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before; `None` for SQLite, which migrates while it opens.
    pub from: Option<i64>,
    /// The schema version after (the latest this build knows).
    pub to: i64,
}

/// Brings the schema of the store `database` names up to date and closes it again: what
/// `pushgate db migrate` runs, so that migrations can be applied before any instance starts.
pub async fn migrate(database: &str, settings: &StoreSettings) -> Result<Migrated> {
    let (store, from): (Arc<dyn Store>, Option<i64>) = match Backend::of(database) {
        Backend::Sqlite => (
            Arc::new(SqliteStore::open_with(database, settings).await?),
            None,
        ),
        Backend::Postgres => {
            let pg = PostgresStore::connect_with(database.trim_start(), settings).await?;
            let (from, _) = pg.schema_version().await?;
            pg.run_migrations().await?;
            (Arc::new(pg), Some(from))
        }
    };
    let (to, _) = store.schema_version().await?;
    store.close().await;
    Ok(Migrated { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    #[test]
    fn postgres_urls_name_postgres_and_everything_else_sqlite() {
        assert_eq!(Backend::of("postgres://u@h/db"), Backend::Postgres);
        assert_eq!(Backend::of("PostgreSQL://h/db"), Backend::Postgres);
        assert_eq!(Backend::of("sqlite://gw.db?mode=rwc"), Backend::Sqlite);
        assert_eq!(Backend::of("/var/lib/pushgate/gw.db"), Backend::Sqlite);
        assert_eq!(Backend::of("postgres.db"), Backend::Sqlite);
    }

    #[test]
    fn passwords_never_reach_what_is_shown() {
        assert_eq!(
            redacted("postgres://pg:s3cret@db.internal:5432/push?sslmode=require"),
            "postgres://pg:***@db.internal:5432/push?sslmode=require"
        );
        assert_eq!(redacted("postgresql://u:p@h"), "postgresql://u:***@h");
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redacted("/var/lib/pushgate/gw.db"),
            "/var/lib/pushgate/gw.db"
        );
        assert_eq!(
            redacted("sqlite:///var/lib/gw.db?mode=rwc"),
            "sqlite:///var/lib/gw.db?mode=rwc"
        );
    }

    #[tokio::test]
    async fn a_postgres_url_connects_to_postgres() {
        // Nothing listens on port 1: the error is PostgreSQL's connection failure, so the URL
        // was taken for PostgreSQL (not for a SQLite file named "postgres:...").
        let settings = StoreSettings {
            pool_acquire_timeout: Duration::from_secs(2),
            ..StoreSettings::default()
        };
        let err = open("postgres://pushgate@127.0.0.1:1/pushgate", &settings)
            .await
            .err()
            .expect("nothing listens on port 1");
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(!std::path::Path::new("postgres:").exists());
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
