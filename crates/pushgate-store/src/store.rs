//! The storage interface the gateway is written against.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::model::{
    App, C2dmFlowRegistration, ChannelQueue, ChannelRecord, Completion, Delivery, DeliveryState,
    Device, DeviceFilter, DeviceState, Event, EventKind, Expansion, InsertOutcome, MessageSummary,
    NewDevice, NewMessage, NewWork, Page, PutDevice, QueueStats, Release, StoredMessage, Targets,
    UpstreamRecord, WebhookState,
};
use crate::retention::{PurgeLimits, PurgeReport};

/// What [`Store::c2dm_flow_confirm`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The token matched: the pending registration id is now the device's token.
    Confirmed,
    /// The device has a pending registration, but not with this token.
    WrongToken,
    /// The device is unknown or has nothing waiting for confirmation.
    NothingPending,
}

/// Durable state of the gateway, behind one object-safe trait so that the gateway can hold an
/// `Arc<dyn Store>` and run on SQLite or PostgreSQL alike.
///
/// Every method that changes more than one row does so in one transaction; "now" is always
/// passed in so that tests control time.
#[async_trait]
pub trait Store: Send + Sync {
    /// Brings the schema up to date; idempotent (implementations also run it when opened).
    async fn migrate(&self) -> Result<()>;

    /// Closes the store for good, waiting for its connections to be returned (a graceful
    /// stop: SQLite checkpoints its WAL). Calls made afterwards fail.
    async fn close(&self);

    /// Creates the app or updates its default flag; making one app default clears the others.
    async fn upsert_app(&self, name: &str, is_default: bool) -> Result<App>;

    /// Every app, by name.
    async fn apps(&self) -> Result<Vec<App>>;

    /// Replaces the app's recorded channels with `channels` (as configured at start).
    async fn sync_channels(
        &self,
        app: &str,
        channels: &[ChannelRecord],
        now: OffsetDateTime,
    ) -> Result<()>;

    /// The app's recorded channels, by name.
    async fn list_channels(&self, app: &str) -> Result<Vec<ChannelRecord>>;

    /// Registers or updates a device through the API (confirmed at once). Tokens are unique
    /// among an app's non-invalid devices: a token already held by another device is taken
    /// over, and that device is retired (`Invalid`, reason `token taken over by <id>`) with
    /// its waiting deliveries. Re-registering an invalid device makes it active again. Work
    /// still waiting for the device follows a changed token.
    async fn put_device(
        &self,
        app: &str,
        device: NewDevice,
        now: OffsetDateTime,
    ) -> Result<PutDevice>;

    /// [`put_device`](Self::put_device) for many devices in one transaction, in order.
    async fn put_devices(
        &self,
        app: &str,
        devices: Vec<NewDevice>,
        now: OffsetDateTime,
    ) -> Result<Vec<PutDevice>>;

    /// One device, if registered.
    async fn get_device(&self, app: &str, device_id: &str) -> Result<Option<Device>>;

    /// The app's devices in device-id order, after `cursor` (a device id), at most `limit`.
    async fn list_devices(
        &self,
        app: &str,
        filter: &DeviceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Device, String>>;

    /// Removes a device, its tags and topics; its waiting deliveries fail (`device_deleted`).
    async fn delete_device(&self, app: &str, device_id: &str, now: OffsetDateTime) -> Result<()>;

    /// Sets a device's state; `reason` is kept for `Invalid`. Leaving `Active` settles the
    /// device's waiting deliveries (`device_disabled` / `device_invalid`). Reactivating a
    /// device whose token another device now holds is a `Conflict`.
    async fn set_device_state(
        &self,
        app: &str,
        device_id: &str,
        state: DeviceState,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// The C2DM-era `registration` call: in one transaction, creates the device unconfirmed
    /// (or keeps an existing one's current token), records the registration id as pending
    /// with its confirmation token (replacing an earlier pending one), and stores the
    /// confirmation message with one delivery to the registration id.
    async fn c2dm_flow_register(
        &self,
        app: &str,
        registration: C2dmFlowRegistration,
        now: OffsetDateTime,
    ) -> Result<InsertOutcome>;

    /// The C2DM-era `confirmation` call: when `confirmation_token` matches the device's
    /// pending registration, that registration id becomes its token (taking it over from any
    /// other device) and the device is confirmed.
    async fn c2dm_flow_confirm(
        &self,
        app: &str,
        device_id: &str,
        confirmation_token: &str,
        now: OffsetDateTime,
    ) -> Result<Confirmation>;

    /// The channels the deliveries of a message with these targets would use, so that the
    /// payload can be checked against each protocol before anything is stored. The API reads
    /// them for an audience (whose later chunks are stored after the answer); for named
    /// devices it lists the channels in [`NewMessage::channels`] instead.
    async fn reached_channels(
        &self,
        app: &str,
        targets: &Targets,
        channel_override: Option<&str>,
        default_channel: &str,
    ) -> Result<Vec<String>>;

    /// Expands `targets` to deliveries and stores them with the message in one transaction
    /// (due at `created_at`, deadline `created_at + ttl_secs`). A repeated idempotency key
    /// stores nothing and returns the first message's id and counts.
    ///
    /// An audience beyond named devices (all, users, tags, topic, condition; no raw tokens)
    /// larger than the store's fan-out chunk is stored in chunks, in device-id order: the
    /// first with the message, the rest by the claims of its channels (see
    /// [`claim_due`](Self::claim_due)) or by [`expand_audience`](Self::expand_audience), and
    /// the outcome says `expanding`.
    ///
    /// A message whose [`NewMessage::channels`] is set stores nothing and fails with
    /// [`StoreError::UnlistedChannel`](crate::StoreError::UnlistedChannel) when it would queue a delivery on another channel. The
    /// outcome names the channels it queued deliveries on (`queued_channels`), to wake.
    async fn insert_message(&self, msg: NewMessage, targets: &Targets) -> Result<InsertOutcome>;

    /// Stores the next chunk of the oldest message still expanding (see
    /// [`insert_message`](Self::insert_message)) in one transaction, as queued deliveries of
    /// the devices the audience reaches now; `None` when no message is expanding. With
    /// `idle`, only a message none of whose chunks was stored in the `idle` before `now` (one
    /// whose channels are not storing it as they claim). Safe to call from several instances
    /// at once: each chunk is stored once.
    async fn expand_audience(
        &self,
        now: OffsetDateTime,
        idle: Option<Duration>,
    ) -> Result<Option<Expansion>>;

    /// One message, if stored.
    async fn get_message(&self, message_id: Uuid) -> Result<Option<StoredMessage>>;

    /// Several messages at once (those not stored are missing from the answer): what a worker
    /// reads once per claim for the payloads it does not have yet.
    async fn get_messages(&self, message_ids: &[Uuid]) -> Result<Vec<StoredMessage>>;

    /// Atomically hands up to `limit` due deliveries of one app's channel to the caller,
    /// oldest due first: queued or retry-wait ones with `due_at <= now`, and in-flight ones
    /// whose lease ran out. They become in flight until `now + lease`, with one more attempt.
    /// Due work past its deadline is settled as `Expired` in the same transaction instead.
    /// When fewer than `limit` are due, the claim also stores the next chunk (up to the rest
    /// of the limit) of the app's oldest message still expanding: its deliveries on this
    /// channel are handed out in flight, as if claimed, the others queued; so those are
    /// inserted in flight, not stored and then claimed. A chunk that cannot be stored is
    /// left out (logged), and the due work is still handed out.
    async fn claim_due(
        &self,
        app: &str,
        channel: &str,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Delivery>>;

    /// When the next delivery of this app's channel becomes due, if any is pending.
    async fn next_due(&self, app: &str, channel: &str) -> Result<Option<OffsetDateTime>>;

    /// Announcements of new work stored or released by any instance sharing the database (a
    /// message with queued deliveries, deliveries released by a stopping worker), so that idle
    /// workers wake at once instead of at their next poll. `None` when the backend has no such
    /// feed. SQLite's feed holds only what this process's claims queued for other channels
    /// (the next chunk of a mixed-channel fan-out): what the API stores, the process wakes
    /// itself. An announcement only wakes: workers must still poll, since one may be lost (a
    /// listener reconnecting, a full backlog).
    async fn watch_work(&self) -> Result<Option<tokio::sync::mpsc::Receiver<NewWork>>> {
        Ok(None)
    }

    /// Records provider answers and their effects (delivery state, registry changes, events)
    /// in one transaction. Answers for deliveries no longer in flight under the same claim
    /// are ignored; returns how many were applied.
    async fn complete(&self, results: Vec<Completion>, now: OffsetDateTime) -> Result<u64>;

    /// Puts claimed but unsent deliveries back in the queue (graceful shutdown), undoing the
    /// attempt the claim counted. Returns how many were released.
    async fn release(&self, releases: &[Release], now: OffsetDateTime) -> Result<u64>;

    /// Counts of pending and due deliveries over every app.
    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats>;

    /// Counts of a message's deliveries by state; `NotFound` for an unknown message.
    async fn message_summary(&self, message_id: Uuid) -> Result<MessageSummary>;

    /// A message's deliveries in id order, after `cursor` (a delivery id), at most `limit`.
    async fn list_deliveries(
        &self,
        message_id: Uuid,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery, i64>>;

    /// Records an upstream message or receipt as an event, once per `dedup_key`; `None` when
    /// the same stanza was recorded before (CCS redelivers until acked).
    async fn record_upstream(
        &self,
        app: &str,
        record: UpstreamRecord,
        now: OffsetDateTime,
    ) -> Result<Option<Event>>;

    /// The app's last event seq (0 when it has none).
    async fn last_event_seq(&self, app: &str) -> Result<i64>;

    /// How many of the app's events come after `seq`.
    async fn count_events_after(&self, app: &str, seq: i64) -> Result<u64>;

    /// Creates the app's webhook cursor at `start_seq` unless it exists.
    async fn webhook_init(&self, app: &str, start_seq: i64, now: OffsetDateTime) -> Result<()>;

    /// Takes the app's webhook lease for `owner` when an attempt is due and nobody else holds
    /// it; returns the cursor.
    async fn webhook_claim(
        &self,
        app: &str,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Option<WebhookState>>;

    /// Records that the receiver accepted every event up to `delivered_seq`; false when
    /// `owner` lost the lease meanwhile.
    async fn webhook_done(
        &self,
        app: &str,
        owner: &str,
        delivered_seq: i64,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Records a failed attempt and when to try again; false when `owner` lost the lease.
    async fn webhook_failed(
        &self,
        app: &str,
        owner: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Gives `owner`'s webhook lease back (a graceful stop).
    async fn webhook_release(&self, app: &str, owner: &str) -> Result<()>;

    /// The app's webhook cursor, if it has one.
    async fn webhook_state(&self, app: &str) -> Result<Option<WebhookState>>;

    /// Deliveries that ever reached each final state (sent, failed, token dead, expired), per
    /// app and channel: totals kept by the database as deliveries settle, never lowered when
    /// old rows are deleted (for metrics counters, at a cost independent of history).
    async fn delivery_counts(&self) -> Result<Vec<(String, String, DeliveryState, u64)>>;

    /// Events ever written, per app and kind: totals kept as events are written, never
    /// lowered when old events are deleted (for metrics counters).
    async fn event_counts(&self) -> Result<Vec<(String, EventKind, u64)>>;

    /// Pending and due work per app and channel, read through the index of active deliveries
    /// (its cost follows the queue, not the history).
    async fn queue_by_channel(&self, now: OffsetDateTime) -> Result<Vec<ChannelQueue>>;

    /// Records that gateway instance `instance` is alive at `now`, forgets instances not seen
    /// for `ttl`, and returns how many are alive (this one included): the divisor of
    /// cluster-wide budgets such as a provider's per-project rate.
    async fn heartbeat(&self, instance: &str, now: OffsetDateTime, ttl: Duration) -> Result<u32>;

    /// Forgets `instance` at once (a graceful stop), so that the others' shares grow.
    async fn leave(&self, instance: &str) -> Result<()>;

    /// (applied, latest) migration versions: ready when they are equal.
    async fn schema_version(&self) -> Result<(i64, i64)>;

    /// The app's events with `seq > cursor`, in order, at most `limit`, optionally one kind.
    async fn events_after(
        &self,
        app: &str,
        cursor: i64,
        limit: u32,
        kind: Option<EventKind>,
    ) -> Result<Vec<Event>>;

    /// Deletes the app's history older than `limits` (finished messages with their
    /// deliveries, events its webhook delivered, long-invalid devices), at most
    /// `limits.batch` rows of each table, in one short transaction; a caller purging
    /// everything calls again while [`PurgeReport::more_left`]. Counters kept for metrics are
    /// left as they are. Records how far messages were deleted ([`purged_through`](Self::purged_through)).
    async fn purge(
        &self,
        app: &str,
        limits: &PurgeLimits,
        now: OffsetDateTime,
    ) -> Result<PurgeReport>;

    /// The newest acceptance time of an app's message that [`purge`](Self::purge) deleted:
    /// an unknown message id (UUIDv7, so it carries its time) at or before it was most
    /// likely deleted by retention rather than never sent.
    async fn purged_through(&self, app: &str) -> Result<Option<OffsetDateTime>>;
}
