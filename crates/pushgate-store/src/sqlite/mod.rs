//! The embedded SQLite implementation of [`Store`].
//!
//! SQLite has one writer at a time: every changing operation runs in a `BEGIN IMMEDIATE`
//! transaction, which takes the write lock up front (waiting up to `busy_timeout`), so a claim
//! is atomic across processes sharing one file. The SQL uses `$n` placeholders, `RETURNING`
//! and portable functions where it can, so that a PostgreSQL implementation can reuse most of
//! it; lists travel as one JSON array (`json_each`).

mod announce;
mod c2dm_flow;
mod claims;
mod deliveries;
mod device_import;
mod devices;
mod events;
mod fanout;
mod instances;
mod maintenance;
mod messages;
mod migrate;
mod outcomes;
mod registry;
mod rows;
mod state_counts;
mod stats;
mod targets;
mod token_key;
mod upstream;
mod webhooks;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{
    App, C2dmFlowRegistration, ChannelQueue, ChannelRecord, Completion, Delivery, DeliveryState,
    Device, DeviceFilter, DeviceState, Event, EventKind, Expansion, InsertOutcome, MessageSummary,
    NewDevice, NewMessage, NewWork, Page, PutDevice, QueueStats, Release, StoredMessage, Targets,
    UpstreamRecord, WebhookState,
};
use crate::retention::{PurgeLimits, PurgeReport};
use crate::store::Confirmation;
use crate::stored::purge;
use crate::{Result, Store, StoreSettings};

pub use maintenance::SqliteMaintenance;

/// The statement every write transaction starts with (takes the write lock at once).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A [`Store`] in one SQLite file (or in memory, for tests): the zero-configuration default.
///
/// Every write of one process goes through one [`writer`]: what callers queue while a
/// transaction runs is stored together by the next one, one commit (and one flush) for all of
/// them, and each caller is answered once its commit returned. Writers of one process never
/// compete for SQLite's write lock (whose busy handler retries with sleeps and can starve a
/// writer for as long as `busy_timeout`); other processes sharing the file still meet on it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: std::sync::Arc<writer::Writer>,
    /// Most deliveries of one fan-out stored per transaction ([`StoreSettings::fanout_chunk`]).
    fanout_chunk: u32,
    /// Who follows the work claims queue for other channels ([`Store::watch_work`]).
    announcements: std::sync::Arc<announce::Announcements>,
}

impl SqliteStore {
    /// How many write transactions this handle committed so far: with every write going
    /// through one batching writer, fewer than the writes it answered under concurrent load
    /// (for tests and metrics).
    pub fn commit_count(&self) -> u64 {
        self.writer.commits()
    }

    /// How many of those commits were flushed to disk (`synchronous=FULL`): with durable
    /// commits, every commit holding more than delivery bookkeeping, and at least one every
    /// 200 ms of bookkeeping (for tests and metrics).
    pub fn flush_count(&self) -> u64 {
        self.writer.flushes()
    }

    /// How many writes (jobs of the batching writer) this handle answered so far.
    pub fn write_count(&self) -> u64 {
        self.writer.jobs()
    }

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
            // A ping before each use is a round trip to the connection's thread for every
            // read and every write cycle; a local file cannot drop a connection meanwhile.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let store = SqliteStore {
            pool,
            writer: std::sync::Arc::new(writer::Writer::new(settings.durable_commits, true)),
            fanout_chunk: settings.fanout_chunk.max(1),
            announcements: Default::default(),
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
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let store = SqliteStore {
            pool,
            // Nothing of an in-memory database reaches a disk.
            writer: std::sync::Arc::new(writer::Writer::new(false, false)),
            fanout_chunk: StoreSettings::default().fanout_chunk,
            announcements: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }
}

/// Queues a write: `$body` runs with `$conn` bound to the writer's connection inside the
/// transaction of the next cycle and `$input` bound (by reference) to `$data`, owned input the
/// job keeps so that the cycle can run it again; answers once that transaction committed.
/// `write!(deferred …)` marks delivery bookkeeping whose flush may wait (see
/// [`writer::Flush`]).
macro_rules! write {
    ($self:ident, $data:expr, |$conn:ident, $input:pat_param| $body:expr) => {
        write!(@ writer::Flush::Required, $self, $data, |$conn, $input| $body)
    };
    (deferred $self:ident, $data:expr, |$conn:ident, $input:pat_param| $body:expr) => {
        write!(@ writer::Flush::Deferred, $self, $data, |$conn, $input| $body)
    };
    (@ $flush:expr, $self:ident, $data:expr, |$conn:ident, $input:pat_param| $body:expr) => {
        $self
            .writer
            .write(&$self.pool, $flush, $data, |$conn, $input| {
                Box::pin(async move { $body })
            })
            .await
    };
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

    /// Closes the writer's connection, then the pool, waiting for connections to be returned
    /// (the last one closed checkpoints the WAL).
    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn upsert_app(&self, name: &str, is_default: bool) -> Result<App> {
        write!(self, (name.to_string(), is_default), |c, (name, d)| {
            devices::upsert_app(c, name, *d).await
        })
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
        write!(self, (app.to_string(), channels.to_vec(), now), |c,
                                                                 (
            app,
            channels,
            now,
        )| {
            devices::sync_channels(c, app, channels, *now).await
        })
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
        write!(self, (app.to_string(), device, now), |c,
                                                      (
            app,
            device,
            now,
        )| {
            registry::require_app(&mut *c, app).await?;
            devices::put(c, app, device.clone(), *now).await
        })
    }

    async fn put_devices(
        &self,
        app: &str,
        list: Vec<NewDevice>,
        now: OffsetDateTime,
    ) -> Result<Vec<PutDevice>> {
        write!(self, (app.to_string(), list, now), |c, (app, list, now)| {
            registry::require_app(&mut *c, app).await?;
            if let Some(out) = device_import::put_new(&mut *c, app, list, *now).await? {
                return Ok(out);
            }
            let mut out = Vec::with_capacity(list.len());
            for device in list {
                out.push(devices::put(&mut *c, app, device.clone(), *now).await?);
            }
            Ok(out)
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
        let data = (app.to_string(), device_id.to_string(), now);
        write!(self, data, |c, (app, device_id, now)| {
            devices::delete(c, app, device_id, *now).await
        })
    }

    async fn set_device_state(
        &self,
        app: &str,
        device_id: &str,
        state: DeviceState,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let data = (
            app.to_string(),
            device_id.to_string(),
            state,
            reason.map(str::to_string),
            now,
        );
        write!(self, data, |c, (app, device_id, state, reason, now)| {
            devices::set_state(c, app, device_id, *state, reason.as_deref(), *now).await
        })
    }

    async fn c2dm_flow_register(
        &self,
        app: &str,
        registration: C2dmFlowRegistration,
        now: OffsetDateTime,
    ) -> Result<InsertOutcome> {
        write!(self, (app.to_string(), registration, now), |c,
                                                            (
            app,
            r,
            now,
        )| {
            c2dm_flow::register(c, app, r, *now).await
        })
    }

    async fn c2dm_flow_confirm(
        &self,
        app: &str,
        device_id: &str,
        confirmation_token: &str,
        now: OffsetDateTime,
    ) -> Result<Confirmation> {
        let data = (
            app.to_string(),
            device_id.to_string(),
            confirmation_token.to_string(),
            now,
        );
        write!(self, data, |c, (app, device_id, token, now)| {
            c2dm_flow::confirm(c, app, device_id, token, *now).await
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
        if targets.one_device_by_id() {
            // Concurrent single-device messages are stored together (see `insert_batch`).
            return self
                .writer
                .write_batched(
                    &self.pool,
                    "insert_message",
                    (msg, targets.clone()),
                    |c, inputs| Box::pin(messages::insert_batch(c, inputs)),
                )
                .await;
        }
        let data = (msg, targets.clone(), self.fanout_chunk);
        write!(self, data, |c, (msg, targets, chunk)| {
            messages::insert_message(c, msg, targets, *chunk).await
        })
    }

    async fn expand_audience(
        &self,
        now: OffsetDateTime,
        idle: Option<Duration>,
    ) -> Result<Option<Expansion>> {
        // The message and its audience were flushed with the message: a chunk lost to a power
        // cut is stored again from the same cursor.
        let pick = match idle {
            Some(idle) => fanout::Pick::IdleSince {
                since_ms: rows::ms(now - idle),
            },
            None => fanout::Pick::Oldest,
        };
        write!(deferred self, (pick, self.fanout_chunk, now), |c, (pick, chunk, now)| {
            fanout::expand_next(c, *pick, *chunk, *now).await
        })
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
        let data = (app.to_string(), channel.to_string(), now, limit, lease);
        let (claimed, queued_channels) = write!(deferred self, data, |c, (app, channel, now, limit, lease)| {
            claims::claim_due(c, app, channel, *now, *limit, *lease).await
        })?;
        self.announcements.announce(app, &queued_channels);
        Ok(claimed)
    }

    async fn next_due(&self, app: &str, channel: &str) -> Result<Option<OffsetDateTime>> {
        read!(self, |conn| claims::next_due(&mut conn, app, channel).await)
    }

    /// Work this process's claims queued for other channels (see [`announce`]); what the API
    /// stores, this process wakes itself.
    async fn watch_work(&self) -> Result<Option<tokio::sync::mpsc::Receiver<NewWork>>> {
        Ok(Some(self.announcements.follow()))
    }

    async fn complete(&self, results: Vec<Completion>, now: OffsetDateTime) -> Result<u64> {
        write!(deferred self, (results, now), |c, (results, now)| {
            outcomes::complete(c, results, *now).await
        })
    }

    async fn release(&self, releases: &[Release], now: OffsetDateTime) -> Result<u64> {
        write!(deferred self, (releases.to_vec(), now), |c, (releases, now)| {
            claims::release(c, releases, *now).await
        })
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
        write!(self, (app.to_string(), record, now), |c,
                                                      (
            app,
            record,
            now,
        )| {
            upstream::record(c, app, record, *now).await
        })
    }

    async fn last_event_seq(&self, app: &str) -> Result<i64> {
        read!(self, |conn| stats::last_event_seq(&mut conn, app).await)
    }

    async fn count_events_after(&self, app: &str, seq: i64) -> Result<u64> {
        read!(self, |conn| stats::events_after_count(&mut conn, app, seq)
            .await)
    }

    async fn webhook_init(&self, app: &str, start_seq: i64, now: OffsetDateTime) -> Result<()> {
        write!(self, (app.to_string(), start_seq, now), |c,
                                                         (
            app,
            seq,
            now,
        )| {
            webhooks::init(c, app, *seq, *now).await
        })
    }

    async fn webhook_claim(
        &self,
        app: &str,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Option<WebhookState>> {
        let data = (app.to_string(), owner.to_string(), now, lease);
        write!(self, data, |c, (app, owner, now, lease)| {
            webhooks::claim(c, app, owner, *now, *lease).await
        })
    }

    async fn webhook_done(
        &self,
        app: &str,
        owner: &str,
        delivered_seq: i64,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let data = (app.to_string(), owner.to_string(), delivered_seq, now);
        write!(self, data, |c, (app, owner, seq, now)| {
            webhooks::done(c, app, owner, *seq, *now).await
        })
    }

    async fn webhook_failed(
        &self,
        app: &str,
        owner: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let data = (
            app.to_string(),
            owner.to_string(),
            error.to_string(),
            next_attempt_at,
            now,
        );
        write!(self, data, |c, (app, owner, error, next, now)| {
            webhooks::failed(c, app, owner, error, *next, *now).await
        })
    }

    async fn webhook_release(&self, app: &str, owner: &str) -> Result<()> {
        write!(self, (app.to_string(), owner.to_string()), |c,
                                                            (
            app,
            owner,
        )| {
            webhooks::release(c, app, owner).await
        })
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
        let data = (instance.to_string(), now, now - ttl);
        write!(self, data, |c, (instance, now, stale)| {
            instances::beat(c, instance, *now, *stale).await
        })
    }

    async fn leave(&self, instance: &str) -> Result<()> {
        write!(self, instance.to_string(), |c, instance| {
            instances::leave(c, instance).await
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

    /// Goes through the batching writer like every write: the purge is one job of a cycle,
    /// so it never holds the write lock for longer than one batch of deletes.
    async fn purge(
        &self,
        app: &str,
        limits: &PurgeLimits,
        now: OffsetDateTime,
    ) -> Result<PurgeReport> {
        write!(self, (app.to_string(), limits.clone(), now), |c,
                                                              (
            app,
            limits,
            now,
        )| {
            purge::purge::<sqlx::Sqlite>(c, app, limits, *now).await
        })
    }

    async fn purged_through(&self, app: &str) -> Result<Option<OffsetDateTime>> {
        read!(self, |conn| purge::horizon(&mut *conn, app).await)
    }
}
