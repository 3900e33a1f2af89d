//! The storage interface the gateway is written against.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::model::{
    App, C2dmRegistration, ChannelRecord, Completion, Delivery, Device, DeviceFilter, DeviceState,
    Event, EventKind, InsertOutcome, MessageSummary, NewDevice, NewMessage, Page, PutDevice,
    QueueStats, Release, StoredMessage, Targets,
};

/// What [`Store::c2dm_confirm`] found.
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
    /// over, and that device is retired (`Invalid`, reason "token taken over by <id>") with
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
    async fn c2dm_register(
        &self,
        app: &str,
        registration: C2dmRegistration,
        now: OffsetDateTime,
    ) -> Result<InsertOutcome>;

    /// The C2DM-era `confirmation` call: when `confirmation_token` matches the device's
    /// pending registration, that registration id becomes its token (taking it over from any
    /// other device) and the device is confirmed.
    async fn c2dm_confirm(
        &self,
        app: &str,
        device_id: &str,
        confirmation_token: &str,
        now: OffsetDateTime,
    ) -> Result<Confirmation>;

    /// The channels the deliveries of a message with these targets would use, so that the
    /// payload can be checked against each protocol before anything is stored.
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
    async fn insert_message(&self, msg: NewMessage, targets: &Targets) -> Result<InsertOutcome>;

    /// One message, if stored.
    async fn get_message(&self, message_id: Uuid) -> Result<Option<StoredMessage>>;

    /// Atomically hands up to `limit` due deliveries of one app's channel to the caller,
    /// oldest due first: queued or retry-wait ones with `due_at <= now`, and in-flight ones
    /// whose lease ran out. They become in flight until `now + lease`, with one more attempt.
    /// Due work past its deadline is settled as `Expired` in the same transaction instead.
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

    /// The app's events with `seq > cursor`, in order, at most `limit`, optionally one kind.
    async fn events_after(
        &self,
        app: &str,
        cursor: i64,
        limit: u32,
        kind: Option<EventKind>,
    ) -> Result<Vec<Event>>;
}
