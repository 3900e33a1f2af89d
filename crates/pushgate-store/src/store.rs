//! The storage interface the gateway is written against.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::model::{
    App, Completion, Delivery, Device, DeviceFilter, DeviceState, Event, EventKind, InsertOutcome,
    MessageSummary, NewDelivery, NewDevice, NewMessage, Page, PutDevice,
};

/// Durable state of the gateway, behind one object-safe trait so that the gateway can hold an
/// `Arc<dyn Store>` and run on SQLite or PostgreSQL alike.
///
/// Every method that changes more than one row does so in one transaction; "now" is always
/// passed in so that tests and the emulator control time.
#[async_trait]
pub trait Store: Send + Sync {
    /// Brings the schema up to date; idempotent (implementations also run it when opened).
    async fn migrate(&self) -> Result<()>;

    /// Creates the app or updates its default flag; making one app default clears the others.
    async fn upsert_app(&self, name: &str, is_default: bool) -> Result<App>;

    /// Registers or updates a device. Tokens are unique among an app's non-invalid devices: a
    /// token already held by another device is taken over, and that device is retired
    /// (`Invalid`, reason "token taken over by <device_id>"). Re-registering an invalid device
    /// makes it active again; a disabled device stays disabled. A changed token is unconfirmed.
    async fn put_device(
        &self,
        app: &str,
        device: NewDevice,
        now: OffsetDateTime,
    ) -> Result<PutDevice>;

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

    /// Removes a device and its tags; its pending deliveries still go to the stored token.
    async fn delete_device(&self, app: &str, device_id: &str) -> Result<()>;

    /// Sets a device's state (e.g. an operator disables it); `reason` is kept for `Invalid`.
    /// Reactivating a device whose token another device now holds is a `Conflict`.
    async fn set_device_state(
        &self,
        app: &str,
        device_id: &str,
        state: DeviceState,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Stores a message and its deliveries in one transaction (due at `created_at`, deadline
    /// `created_at + ttl_secs`). A repeated idempotency key stores nothing and returns the
    /// first message's id and delivery count.
    async fn insert_message(
        &self,
        msg: NewMessage,
        deliveries: Vec<NewDelivery>,
    ) -> Result<InsertOutcome>;

    /// Atomically hands up to `limit` due deliveries to the caller, oldest due first: queued or
    /// retry-wait ones with `due_at <= now`, and in-flight ones whose lease ran out. They become
    /// in flight until `now + lease`, with one more attempt. In the same transaction, due work
    /// that cannot be sent is settled instead of claimed: past its deadline -> `Expired`; for an
    /// invalid device -> `TokenDead` (error "device_invalid"); for a disabled device ->
    /// `Failed` (error "device_disabled"). No events are written for these.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Delivery>>;

    /// Records provider answers and their effects (delivery state, registry changes, events) in
    /// one transaction. Answers for deliveries no longer in flight are ignored; returns how many
    /// were applied.
    async fn complete(&self, results: Vec<Completion>, now: OffsetDateTime) -> Result<u64>;

    /// Puts claimed but unsent deliveries back in the queue (graceful shutdown), undoing the
    /// attempt the claim counted. Returns how many were released.
    async fn release(&self, delivery_ids: &[i64], now: OffsetDateTime) -> Result<u64>;

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
