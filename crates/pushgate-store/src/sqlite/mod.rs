//! The embedded SQLite implementation of [`Store`].
//!
//! SQLite has one writer at a time: every changing operation runs in a `BEGIN IMMEDIATE`
//! transaction, which takes the write lock up front (waiting up to `busy_timeout`), so a claim
//! is atomic across processes sharing one file. The SQL uses `$n` placeholders, `RETURNING`
//! and portable functions where it can, so that a PostgreSQL implementation can reuse most of
//! it; lists travel as one JSON array (`json_each`).

mod c2dm_flow;
mod claims;
mod deliveries;
mod devices;
mod events;
mod group_commit;
mod maintenance;
mod messages;
mod migrate;
mod outcomes;
mod registry;
mod rows;
mod stats;
mod targets;
mod upstream;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{
    App, C2dmFlowRegistration, ChannelQueue, ChannelRecord, Completion, Delivery, DeliveryState,
    Device, DeviceFilter, DeviceState, Event, EventKind, InsertOutcome, MessageSummary, NewDevice,
    NewMessage, Page, PutDevice, QueueStats, Release, StoredMessage, Targets, UpstreamRecord,
    WebhookState,
};
use crate::store::Confirmation;
use crate::{Result, Store, StoreSettings};

pub use maintenance::SqliteMaintenance;

/// The statement every write transaction starts with (takes the write lock at once).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A [`Store`] in one SQLite file (or in memory, for tests): the zero-configuration default.
///
/// Writers of one process take turns on an async mutex before they ask SQLite for its write
/// lock: SQLite's own busy handler retries with sleeps and can starve a writer for as long as
/// `busy_timeout` under load, while the mutex serves them in order. Other processes sharing
/// the file still meet on SQLite's lock.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    group_commit: std::sync::Arc<group_commit::GroupCommit>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a path or `sqlite:` URL with default
    /// settings, and brings its schema up to date.
    pub async fn open(path_or_url: &str) -> Result<Self> {
        Self::open_with(path_or_url, &StoreSettings::default()).await
    }

    /// Opens the database in WAL mode with foreign keys on and the given settings, and brings
    /// its schema up to date.
    pub async fn open_with(path_or_url: &str, settings: &StoreSettings) -> Result<Self> {
        let options = if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url)?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        let synchronous = if settings.durable_commits {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(settings.busy_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .connect_with(options)
            .await?;
        let store = SqliteStore {
            pool,
            writer: Default::default(),
            group_commit: Default::default(),
        };
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
        let store = SqliteStore {
            pool,
            writer: Default::default(),
            group_commit: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }
}

/// Runs `$body` with `$tx` bound to a new write transaction (this process's writers in
/// turn) and commits it.
macro_rules! write_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let _turn = $self.writer.lock().await;
        let mut $tx = $self.pool.begin_with(BEGIN_WRITE).await?;
        let out = $body;
        $tx.commit().await?;
        Ok(out)
    }};
}

/// Runs `$body` with `$conn` bound to a pooled connection (reads).
macro_rules! read {
    ($self:ident, |$conn:ident| $body:expr) => {{
        let mut $conn = $self.pool.acquire().await?;
        $body
    }};
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        migrate::run(&self.pool).await
    }

    /// Closes the pool, waiting for connections to be returned (checkpoints the WAL).
    async fn close(&self) {
        self.pool.close().await;
    }

    async fn upsert_app(&self, name: &str, is_default: bool) -> Result<App> {
        write_tx!(self, |tx| devices::upsert_app(&mut tx, name, is_default)
            .await?)
    }

    async fn apps(&self) -> Result<Vec<App>> {
        read!(self, |conn| devices::apps(&mut conn).await)
    }

    async fn sync_channels(
        &self,
        app: &str,
        channels: &[ChannelRecord],
        now: OffsetDateTime,
    ) -> Result<()> {
        write_tx!(self, |tx| devices::sync_channels(
            &mut tx, app, channels, now
        )
        .await?)
    }

    async fn list_channels(&self, app: &str) -> Result<Vec<ChannelRecord>> {
        read!(self, |conn| devices::list_channels(&mut conn, app).await)
    }

    async fn put_device(
        &self,
        app: &str,
        device: NewDevice,
        now: OffsetDateTime,
    ) -> Result<PutDevice> {
        write_tx!(self, |tx| {
            registry::require_app(&mut tx, app).await?;
            devices::put(&mut tx, app, device, now).await?
        })
    }

    async fn put_devices(
        &self,
        app: &str,
        list: Vec<NewDevice>,
        now: OffsetDateTime,
    ) -> Result<Vec<PutDevice>> {
        write_tx!(self, |tx| {
            registry::require_app(&mut tx, app).await?;
            let mut out = Vec::with_capacity(list.len());
            for device in list {
                out.push(devices::put(&mut tx, app, device, now).await?);
            }
            out
        })
    }

    async fn get_device(&self, app: &str, device_id: &str) -> Result<Option<Device>> {
        read!(self, |conn| devices::get(&mut conn, app, device_id).await)
    }

    async fn list_devices(
        &self,
        app: &str,
        filter: &DeviceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Device, String>> {
        read!(self, |conn| devices::list(
            &mut conn, app, filter, cursor, limit
        )
        .await)
    }

    async fn delete_device(&self, app: &str, device_id: &str, now: OffsetDateTime) -> Result<()> {
        write_tx!(self, |tx| devices::delete(&mut tx, app, device_id, now)
            .await?)
    }

    async fn set_device_state(
        &self,
        app: &str,
        device_id: &str,
        state: DeviceState,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()> {
        write_tx!(self, |tx| {
            devices::set_state(&mut tx, app, device_id, state, reason, now).await?
        })
    }

    async fn c2dm_flow_register(
        &self,
        app: &str,
        registration: C2dmFlowRegistration,
        now: OffsetDateTime,
    ) -> Result<InsertOutcome> {
        write_tx!(self, |tx| c2dm_flow::register(
            &mut tx,
            app,
            &registration,
            now
        )
        .await?)
    }

    async fn c2dm_flow_confirm(
        &self,
        app: &str,
        device_id: &str,
        confirmation_token: &str,
        now: OffsetDateTime,
    ) -> Result<Confirmation> {
        write_tx!(self, |tx| {
            c2dm_flow::confirm(&mut tx, app, device_id, confirmation_token, now).await?
        })
    }

    async fn reached_channels(
        &self,
        app: &str,
        targets: &Targets,
        channel_override: Option<&str>,
        default_channel: &str,
    ) -> Result<Vec<String>> {
        read!(self, |conn| {
            targets::reached_channels(&mut conn, app, targets, channel_override, default_channel)
                .await
        })
    }

    async fn insert_message(&self, msg: NewMessage, targets: &Targets) -> Result<InsertOutcome> {
        let answer = self.group_commit.enqueue(msg, targets.clone());
        let _turn = self.writer.lock().await;
        // A writer before us may have stored this message with its own group.
        let answer = match group_commit::ready(answer) {
            Ok(done) => return done,
            Err(waiting) => waiting,
        };
        let jobs = self.group_commit.take();
        group_commit::run(&self.pool, jobs).await;
        group_commit::ready(answer)
            .unwrap_or_else(|_| Err(crate::StoreError::Corrupt("insert not run".into())))
    }

    async fn get_message(&self, message_id: Uuid) -> Result<Option<StoredMessage>> {
        read!(self, |conn| messages::get_message(&mut conn, message_id)
            .await)
    }

    async fn get_messages(&self, message_ids: &[Uuid]) -> Result<Vec<StoredMessage>> {
        read!(self, |conn| messages::get_messages(&mut conn, message_ids)
            .await)
    }

    async fn claim_due(
        &self,
        app: &str,
        channel: &str,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Delivery>> {
        write_tx!(self, |tx| {
            claims::claim_due(&mut tx, app, channel, now, limit, lease).await?
        })
    }

    async fn next_due(&self, app: &str, channel: &str) -> Result<Option<OffsetDateTime>> {
        read!(self, |conn| claims::next_due(&mut conn, app, channel).await)
    }

    async fn complete(&self, results: Vec<Completion>, now: OffsetDateTime) -> Result<u64> {
        write_tx!(self, |tx| outcomes::complete(&mut tx, &results, now)
            .await?)
    }

    async fn release(&self, releases: &[Release], now: OffsetDateTime) -> Result<u64> {
        write_tx!(self, |tx| claims::release(&mut tx, releases, now).await?)
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats> {
        read!(self, |conn| claims::queue_stats(&mut conn, now).await)
    }

    async fn message_summary(&self, message_id: Uuid) -> Result<MessageSummary> {
        read!(self, |conn| deliveries::message_summary(
            &mut conn, message_id
        )
        .await)
    }

    async fn list_deliveries(
        &self,
        message_id: Uuid,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery, i64>> {
        read!(self, |conn| {
            deliveries::list_deliveries(&mut conn, message_id, cursor, limit).await
        })
    }

    async fn record_upstream(
        &self,
        app: &str,
        record: UpstreamRecord,
        now: OffsetDateTime,
    ) -> Result<Option<Event>> {
        write_tx!(self, |tx| upstream::record(&mut tx, app, &record, now)
            .await?)
    }

    async fn last_event_seq(&self, app: &str) -> Result<i64> {
        read!(self, |conn| stats::last_event_seq(&mut conn, app).await)
    }

    async fn count_events_after(&self, app: &str, seq: i64) -> Result<u64> {
        read!(self, |conn| stats::events_after_count(&mut conn, app, seq)
            .await)
    }

    async fn webhook_init(&self, app: &str, start_seq: i64, now: OffsetDateTime) -> Result<()> {
        write_tx!(self, |tx| webhooks::init(&mut tx, app, start_seq, now)
            .await?)
    }

    async fn webhook_claim(
        &self,
        app: &str,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Option<WebhookState>> {
        write_tx!(self, |tx| webhooks::claim(&mut tx, app, owner, now, lease)
            .await?)
    }

    async fn webhook_done(
        &self,
        app: &str,
        owner: &str,
        delivered_seq: i64,
        now: OffsetDateTime,
    ) -> Result<bool> {
        write_tx!(self, |tx| webhooks::done(
            &mut tx,
            app,
            owner,
            delivered_seq,
            now
        )
        .await?)
    }

    async fn webhook_failed(
        &self,
        app: &str,
        owner: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        write_tx!(self, |tx| {
            webhooks::failed(&mut tx, app, owner, error, next_attempt_at, now).await?
        })
    }

    async fn webhook_release(&self, app: &str, owner: &str) -> Result<()> {
        write_tx!(self, |tx| webhooks::release(&mut tx, app, owner).await?)
    }

    async fn webhook_state(&self, app: &str) -> Result<Option<WebhookState>> {
        read!(self, |conn| webhooks::get(&mut conn, app).await)
    }

    async fn delivery_counts(&self) -> Result<Vec<(String, String, DeliveryState, u64)>> {
        read!(self, |conn| stats::delivery_counts(&mut conn).await)
    }

    async fn event_counts(&self) -> Result<Vec<(String, EventKind, u64)>> {
        read!(self, |conn| stats::event_counts(&mut conn).await)
    }

    async fn queue_by_channel(&self, now: OffsetDateTime) -> Result<Vec<ChannelQueue>> {
        read!(self, |conn| stats::queue_by_channel(&mut conn, now).await)
    }

    async fn heartbeat(&self, instance: &str, now: OffsetDateTime, ttl: Duration) -> Result<u32> {
        let stale = now - ttl;
        write_tx!(self, |tx| {
            sqlx::query(crate::instances::BEAT)
                .bind(instance)
                .bind(crate::stored::ms(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query(crate::instances::FORGET_STALE)
                .bind(crate::stored::ms(stale))
                .execute(&mut *tx)
                .await?;
            let alive: i64 = sqlx::query_scalar(crate::instances::COUNT)
                .fetch_one(&mut *tx)
                .await?;
            u32::try_from(alive).unwrap_or(u32::MAX).max(1)
        })
    }

    async fn leave(&self, instance: &str) -> Result<()> {
        write_tx!(self, |tx| {
            sqlx::query(crate::instances::LEAVE)
                .bind(instance)
                .execute(&mut *tx)
                .await?;
        })
    }

    async fn schema_version(&self) -> Result<(i64, i64)> {
        Ok((migrate::current(&self.pool).await?, migrate::LATEST))
    }

    async fn events_after(
        &self,
        app: &str,
        cursor: i64,
        limit: u32,
        kind: Option<EventKind>,
    ) -> Result<Vec<Event>> {
        read!(self, |conn| events::after(
            &mut conn, app, cursor, limit, kind
        )
        .await)
    }
}
