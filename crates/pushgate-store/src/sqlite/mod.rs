//! The embedded SQLite implementation of [`Store`].
//!
//! SQLite has one writer at a time: every changing operation runs in a `BEGIN IMMEDIATE`
//! transaction, which takes the write lock up front (waiting up to `busy_timeout`), so a claim
//! is atomic across processes sharing one file. The SQL uses `$n` placeholders, `RETURNING`
//! and portable functions only, so that a PostgreSQL implementation can reuse most of it.

mod devices;
mod events;
mod migrate;
mod queue;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{
    App, Completion, Delivery, Device, DeviceFilter, DeviceState, Event, EventKind, InsertOutcome,
    MessageSummary, NewDelivery, NewDevice, NewMessage, Page, PutDevice,
};
use crate::{Result, Store};

/// How long a writer waits for another one before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per file store: readers run in parallel under WAL, writers queue on the lock.
const MAX_CONNECTIONS: u32 = 4;

/// The statement every write transaction starts with (takes the write lock at once).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A [`Store`] in one SQLite file (or in memory, for tests): the zero-configuration default.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a path or `sqlite:` URL, in WAL mode with a
    /// busy timeout and foreign keys on, and brings its schema up to date.
    pub async fn open(path_or_url: &str) -> Result<Self> {
        let options = if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url)?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens a private in-memory database on a single connection (an in-memory SQLite database
    /// exists per connection), migrated; for tests.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Closes the pool, waiting for connections to be returned (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        migrate::run(&self.pool).await
    }

    async fn upsert_app(&self, name: &str, is_default: bool) -> Result<App> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let app = devices::upsert_app(&mut tx, name, is_default).await?;
        tx.commit().await?;
        Ok(app)
    }

    async fn put_device(
        &self,
        app: &str,
        device: NewDevice,
        now: OffsetDateTime,
    ) -> Result<PutDevice> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let put = devices::put(&mut tx, app, device, now).await?;
        tx.commit().await?;
        Ok(put)
    }

    async fn get_device(&self, app: &str, device_id: &str) -> Result<Option<Device>> {
        let mut conn = self.pool.acquire().await?;
        devices::get(&mut conn, app, device_id).await
    }

    async fn list_devices(
        &self,
        app: &str,
        filter: &DeviceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Device, String>> {
        let mut conn = self.pool.acquire().await?;
        devices::list(&mut conn, app, filter, cursor, limit).await
    }

    async fn delete_device(&self, app: &str, device_id: &str) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        devices::delete(&mut tx, app, device_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_device_state(
        &self,
        app: &str,
        device_id: &str,
        state: DeviceState,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        devices::set_state(&mut tx, app, device_id, state, reason, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_message(
        &self,
        msg: NewMessage,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let outcome = queue::insert_message(&mut tx, &msg, &deliveries).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Delivery>> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let claimed = queue::claim_due(&mut tx, now, limit, lease).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn complete(&self, results: Vec<Completion>, now: OffsetDateTime) -> Result<u64> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let applied = queue::complete(&mut tx, &results, now).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn release(&self, delivery_ids: &[i64], now: OffsetDateTime) -> Result<u64> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let released = queue::release(&mut tx, delivery_ids, now).await?;
        tx.commit().await?;
        Ok(released)
    }

    async fn message_summary(&self, message_id: Uuid) -> Result<MessageSummary> {
        let mut conn = self.pool.acquire().await?;
        queue::message_summary(&mut conn, message_id).await
    }

    async fn list_deliveries(
        &self,
        message_id: Uuid,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery, i64>> {
        let mut conn = self.pool.acquire().await?;
        queue::list_deliveries(&mut conn, message_id, cursor, limit).await
    }

    async fn events_after(
        &self,
        app: &str,
        cursor: i64,
        limit: u32,
        kind: Option<EventKind>,
    ) -> Result<Vec<Event>> {
        let mut conn = self.pool.acquire().await?;
        events::after(&mut conn, app, cursor, limit, kind).await
    }
}
