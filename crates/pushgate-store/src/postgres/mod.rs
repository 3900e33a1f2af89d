//! The PostgreSQL implementation of [`Store`], for several gateway instances sharing one
//! database.
//!
//! Every changing operation runs in one `READ COMMITTED` transaction. What SQLite gets from its
//! single writer, this backend gets from row locks: claims take rows with
//! `FOR UPDATE SKIP LOCKED` (concurrent claimers, of any instance, get disjoint work), answers
//! are settled set-based (`UPDATE … FROM unnest(…)`), fan-outs and label lists are single
//! `INSERT … SELECT` statements, and writers of one app's events take turns so that event
//! cursors never skip one ([`events`]). A transaction that loses a deadlock or a race on a
//! unique key is run again from the start. Stored work is announced with `NOTIFY`
//! ([`Store::watch_work`]). The rules themselves (what an answer does, expiry, registry
//! decisions, event JSON) are the shared [`crate::rules`]; stored values and row decoding are
//! the shared [`crate::stored`].

mod c2dm_flow;
mod claims;
mod deliveries;
mod devices;
mod events;
mod fanout;
mod maintenance;
mod messages;
mod migrate;
mod notify;
mod outcomes;
mod registry;
mod stats;
mod targets;
mod upstream;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::gather::Gather;
use crate::model::{
    App, C2dmFlowRegistration, ChannelQueue, ChannelRecord, Completion, Delivery, DeliveryState,
    Device, DeviceFilter, DeviceState, Event, EventKind, Expansion, InsertOutcome, MessageSummary,
    NewDevice, NewMessage, NewWork, Page, PutDevice, QueueStats, Release, StoredMessage, Targets,
    UpstreamRecord, WebhookState,
};
use crate::retention::{PurgeLimits, PurgeReport};
use crate::store::Confirmation;
use crate::stored::purge;

use crate::{Result, Store, StoreError, StoreSettings};
pub use maintenance::PostgresMaintenance;

/// How often a transaction that lost a deadlock or a unique-key race is run again.
const TX_ATTEMPTS: u32 = 4;

/// A [`Store`] in a PostgreSQL database (or one schema of it: the URL's
/// `options[search_path]=…`), shared by any number of gateway instances.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// How the pool connects, for the announcement listener's own connection.
    options: PgConnectOptions,
    /// Announces committed work to the idle workers of every instance.
    announcer: notify::Announcer,
    /// Most deliveries of one fan-out stored per transaction ([`StoreSettings::fanout_chunk`]).
    fanout_chunk: u32,
    /// Concurrent messages to one device each, stored together ([`messages::insert_batch`]).
    singles: Arc<Gather<(NewMessage, Targets), InsertOutcome>>,
}

/// How many transactions of gathered single-device messages run at once: while one commits,
/// the next gathers (the pool keeps connections for claims, answers and reads).
const SINGLES_TURNS: usize = 4;

/// Most single-device messages one transaction stores.
const SINGLES_MAX: usize = 512;

impl PostgresStore {
    /// Connects with default settings and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &StoreSettings::default()).await
    }

    /// Connects with the given pool settings and brings the schema up to date (under the
    /// migration lock, so instances starting together migrate once).
    pub async fn open_with(url: &str, settings: &StoreSettings) -> Result<Self> {
        let store = Self::connect_with(url, settings).await?;
        store.run_migrations().await?;
        Ok(store)
    }

    /// Connects without migrating (for `pushgate db migrate`, and to check a schema as found).
    pub async fn connect_with(url: &str, settings: &StoreSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.pool_max_connections.max(1))
            .acquire_timeout(settings.pool_acquire_timeout)
            .connect_with(options.clone())
            .await?;
        let announcer = notify::Announcer::start(pool.clone());
        Ok(PostgresStore {
            pool,
            options,
            announcer,
            fanout_chunk: settings.fanout_chunk.max(1),
            singles: Arc::new(Gather::new(SINGLES_TURNS, SINGLES_MAX)),
        })
    }

    /// Applies the migrations not yet applied; returns how many this call applied (0 when the
    /// schema was current, or another instance migrated it meanwhile).
    pub async fn run_migrations(&self) -> Result<u32> {
        migrate::run(&self.pool).await
    }
}

/// True when the error is worth running the whole transaction again for: a deadlock, a
/// serialization failure, or a unique key taken by a concurrent transaction (a genuine
/// conflict fails again the same way).
fn retriable(err: &StoreError) -> bool {
    match err {
        StoreError::Conflict(_) => true,
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// Runs `$body` with `$tx` bound to a new transaction and commits it; runs it again (up to
/// [`TX_ATTEMPTS`] times) when it lost a race ([`retriable`]). `$body` may run more than once.
macro_rules! write_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let result: Result<_> = async {
                let mut $tx = $self.pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match result {
                Err(e) if attempt < TX_ATTEMPTS && retriable(&e) => attempt += 1,
                other => break other,
            }
        }
    }};
}

/// Runs `$body` with `$conn` bound to a pooled connection (reads).
macro_rules! read {
    ($self:ident, |$conn:ident| $body:expr) => {{
        let mut $conn = $self.pool.acquire().await?;
        $body
    }};
}

impl PostgresStore {
    /// Stores one message in a transaction of its own and announces its work.
    async fn insert_alone(&self, msg: &NewMessage, targets: &Targets) -> Result<InsertOutcome> {
        let chunk = self.fanout_chunk;
        let inserted = write_tx!(self, |tx| messages::insert_message(
            &mut tx, msg, targets, chunk
        )
        .await?)?;
        self.announcer.announce(&msg.app, &inserted.queued_channels);
        Ok(inserted)
    }

    /// Stores gathered single-device messages in one transaction; if it fails, each in a
    /// transaction of its own, so that a message refused or an outage is answered to its own
    /// caller.
    async fn insert_singles(
        &self,
        batch: Vec<(NewMessage, Targets)>,
    ) -> Vec<Result<InsertOutcome>> {
        if batch.len() > 1 {
            match write_tx!(self, |tx| messages::insert_batch(&mut tx, &batch).await?) {
                Ok(outcomes) => {
                    for ((msg, _), inserted) in batch.iter().zip(&outcomes) {
                        self.announcer.announce(&msg.app, &inserted.queued_channels);
                    }
                    return outcomes.into_iter().map(Ok).collect();
                }
                Err(e) => tracing::debug!(
                    error = %e,
                    messages = batch.len(),
                    "a batch of messages failed; storing each alone"
                ),
            }
        }
        // As many side by side as there are turns, so that the pool keeps connections for
        // claims, answers and reads: one refused message costs the others one transaction
        // more each, not a wait for all of them one after another.
        futures_util::stream::iter(batch)
            .map(|(msg, targets)| {
                let store = self.clone();
                async move { store.insert_alone(&msg, &targets).await }
            })
            .buffered(SINGLES_TURNS)
            .collect()
            .await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        self.run_migrations().await.map(|_| ())
    }

    /// Closes the pool, waiting for connections to be returned.
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
            devices::put(&mut tx, app, &device, now).await?
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
            devices::put_many(&mut tx, app, &list, now).await?
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
        let inserted = write_tx!(self, |tx| c2dm_flow::register(
            &mut tx,
            app,
            &registration,
            now
        )
        .await?)?;
        self.announcer.announce(app, &inserted.queued_channels);
        Ok(inserted)
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
        if targets.one_device_by_id() {
            let store = self.clone();
            return self
                .singles
                .submit((msg, targets.clone()), move |batch| {
                    let store = store.clone();
                    async move { store.insert_singles(batch).await }
                })
                .await;
        }
        self.insert_alone(&msg, targets).await
    }

    async fn expand_audience(
        &self,
        now: OffsetDateTime,
        idle: Option<Duration>,
    ) -> Result<Option<Expansion>> {
        let chunk = self.fanout_chunk;
        let pick = match idle {
            Some(idle) => fanout::Pick::IdleSince {
                since_ms: crate::stored::ms(now - idle),
            },
            None => fanout::Pick::Oldest,
        };
        let Some(expanded) = write_tx!(self, |tx| fanout::expand_next(&mut tx, pick, chunk, now)
            .await?)?
        else {
            return Ok(None);
        };
        let app = &expanded.expansion.app;
        self.announcer.announce(app, expanded.queued_channels);
        Ok(Some(expanded.expansion))
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
        let (claimed, queued_channels) = write_tx!(self, |tx| {
            claims::claim_due(&mut tx, app, channel, now, limit, lease).await?
        })?;
        self.announcer.announce(app, queued_channels);
        Ok(claimed)
    }

    async fn next_due(&self, app: &str, channel: &str) -> Result<Option<OffsetDateTime>> {
        read!(self, |conn| claims::next_due(&mut conn, app, channel).await)
    }

    async fn watch_work(&self) -> Result<Option<mpsc::Receiver<NewWork>>> {
        notify::listen(&self.options).await.map(Some)
    }

    async fn complete(&self, results: Vec<Completion>, now: OffsetDateTime) -> Result<u64> {
        write_tx!(self, |tx| outcomes::complete(&mut tx, &results, now)
            .await?)
    }

    async fn release(&self, releases: &[Release], now: OffsetDateTime) -> Result<u64> {
        let back = write_tx!(self, |tx| claims::release(&mut tx, releases, now).await?)?;
        let released = back.len() as u64;
        self.announcer.announce_pairs(back);
        Ok(released)
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

    async fn purge(
        &self,
        app: &str,
        limits: &PurgeLimits,
        now: OffsetDateTime,
    ) -> Result<PurgeReport> {
        write_tx!(self, |tx| purge::purge::<sqlx::Postgres>(
            &mut tx, app, limits, now
        )
        .await?)
    }

    async fn purged_through(&self, app: &str) -> Result<Option<OffsetDateTime>> {
        read!(self, |conn| purge::horizon(&mut *conn, app).await)
    }
}
