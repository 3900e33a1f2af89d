//! Plain data stored by the gateway: apps, devices, messages, deliveries and events.
//!
//! These types carry no behaviour beyond naming their states; the rules live in
//! [`crate::Store`] implementations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;

/// Declares a state enum with a stable snake_case name used as the stored value.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Stable snake_case name, as stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        other
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// An application: the unit that owns devices, messages and events, and the provider
/// credentials configured for it (credentials live in the gateway's configuration, not here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Surrogate key, stable across renames of nothing (names are unique and immutable).
    pub id: i64,
    /// The name used in URLs (`/v1/apps/{name}`) and as the foreign key everywhere else.
    pub name: String,
    /// True for the app used when a request names none (at most one app is default).
    pub is_default: bool,
}

named_enum! {
    /// Whether the gateway may send to a device.
    DeviceState {
        /// Messages are sent to it.
        Active => "active",
        /// Switched off by an operator or the application; pending deliveries fail.
        Disabled => "disabled",
        /// The provider says its token is dead, or another device took its token over.
        Invalid => "invalid",
    }
}

named_enum! {
    /// How a device came to be registered, which decides when it may receive messages.
    Registration {
        /// Through the authenticated device API: trusted, confirmed at once.
        Api => "api",
        /// Through the C2DM-era `registration` / `confirmation` flow: a registration id only
        /// becomes the device's token once the device proves it received the confirmation.
        C2dmFlow => "c2dm_flow",
    }
}

/// What an application registers through the device API: one installation of its client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDevice {
    /// The application's own id for this device, unique within the app.
    pub device_id: String,
    /// The provider registration token.
    pub token: String,
    /// Which configured channel reaches it, if not the app's default.
    pub channel: Option<String>,
    /// The application's user id, for targeting a user's devices.
    pub user: Option<String>,
    /// Free tags, for targeting groups of devices.
    pub tags: Vec<String>,
    /// Topics the device is subscribed to in the gateway's registry.
    pub topics: Vec<String>,
    /// The client application's version, for diagnostics.
    pub app_version: Option<String>,
    /// `Some(Disabled)` switches the device off, `Some(Active)` back on; `None` keeps a
    /// disabled device disabled and makes any other one active. `Invalid` is refused.
    pub state: Option<DeviceState>,
}

/// A registered device as stored, with its registry state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Name of the owning app.
    pub app: String,
    /// The application's own id for this device.
    pub device_id: String,
    /// Current provider token (rewritten when the provider reports a canonical id); `None`
    /// for a device of the C2DM-era flow that has not confirmed a registration id yet.
    pub token: Option<String>,
    /// Channel override (else the app's default channel reaches it).
    pub channel: Option<String>,
    /// The application's user id.
    pub user: Option<String>,
    /// Targeting tags, sorted and without duplicates.
    pub tags: Vec<String>,
    /// Topic subscriptions, sorted and without duplicates.
    pub topics: Vec<String>,
    /// Client application version.
    pub app_version: Option<String>,
    /// Whether the gateway may send to it.
    pub state: DeviceState,
    /// Why it is invalid (provider error code, or which device took its token).
    pub invalid_reason: Option<String>,
    /// How it registered.
    pub registration: Registration,
    /// A registration id waiting for its confirmation (C2DM-era flow); the device keeps
    /// receiving on `token` meanwhile, and receives nothing while it has none.
    pub pending_token: Option<String>,
    /// First registration.
    pub created_at: OffsetDateTime,
    /// Last change of any field.
    pub updated_at: OffsetDateTime,
}

impl Device {
    /// True when the device has a token messages can go to (every API device; a C2DM-flow
    /// device once it confirmed a registration id).
    pub fn is_confirmed(&self) -> bool {
        self.token.is_some()
    }
}

/// Which devices [`crate::Store::list_devices`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only devices of this user.
    pub user: Option<String>,
    /// Only devices carrying this tag.
    pub tag: Option<String>,
    /// Only devices subscribed to this topic.
    pub topic: Option<String>,
    /// Only devices in this state.
    pub state: Option<DeviceState>,
}

/// What [`crate::Store::put_device`] did, so the API can answer 201 vs 200 and report takeovers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutDevice {
    /// True when the device id was new to the app.
    pub created: bool,
    /// The device that held this token before and was retired for it.
    pub took_over_from: Option<String>,
}

/// One page of a keyset-paginated listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items, in cursor order.
    pub items: Vec<T>,
    /// Pass this as the cursor to get the next page; `None` on the last page.
    pub next_cursor: Option<C>,
}

/// A provider channel of an app as the store records it: what it is and which credential it
/// uses, by reference only (a file path or variable name and a fingerprint, never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The channel's name within its app (what devices and messages name).
    pub name: String,
    /// Protocol: `fcm_v1`, `legacy`, `ccs` or `c2dm`.
    pub kind: String,
    /// True for the channel that reaches devices which name none.
    pub is_default: bool,
    /// Where it sends (URL or host:port), for operators.
    pub endpoint: String,
    /// Where the credential comes from, e.g. `file:/etc/pushgate/key.json` or `env:FCM_KEY`.
    pub credential_ref: String,
    /// A short non-reversible fingerprint of the credential, to tell two apart.
    pub credential_fingerprint: String,
}

/// Who a message is for: the union of every kind given (a device reached twice gets one
/// delivery). Only active devices with a confirmed token are reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Registered devices by id; ids that cannot be sent to get a delivery in a final state
    /// that says why (`unknown_device`, `device_disabled`, `device_invalid`,
    /// `device_unconfirmed`).
    pub device_ids: Vec<String>,
    /// Raw provider tokens; a token a registered device holds is sent as that device's.
    pub tokens: Vec<String>,
    /// Every device of these users.
    pub users: Vec<String>,
    /// Every device carrying any of these tags.
    pub tags: Vec<String>,
    /// Every device subscribed to this topic in the registry.
    pub topic: Option<String>,
    /// Every device whose registry subscriptions satisfy this condition.
    pub condition: Option<pushgate_proto::condition::Condition>,
    /// Every device of the app.
    pub all: bool,
}

impl Targets {
    /// True when the targets name every device they reach (by id or by token) and select
    /// none by label: all of the message's deliveries are stored with it, none by a later
    /// chunk of a fan-out, so what the insert checks covers the whole message.
    pub fn names_only(&self) -> bool {
        !self.all
            && self.users.is_empty()
            && self.tags.is_empty()
            && self.topic.is_none()
            && self.condition.is_none()
    }

    /// True for one device named by id and nothing else (the usual transactional
    /// notification): the messages both stores insert together with their concurrent
    /// likes, in one transaction.
    pub fn one_device_by_id(&self) -> bool {
        self.device_ids.len() == 1 && self.tokens.is_empty() && self.names_only()
    }
}

/// A message accepted from the application, stored with its deliveries before the API
/// answers 202.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Time-ordered id (UUID v7) given by the caller.
    pub id: Uuid,
    /// Name of the owning app.
    pub app: String,
    /// What to send; opaque to the store.
    pub payload: serde_json::Value,
    /// A channel forced on every delivery (e.g. to move devices from legacy to v1).
    pub channel_override: Option<String>,
    /// The channel for devices and raw tokens that name none (the app's default).
    pub default_channel: String,
    /// Time to live: deliveries not sent within this many seconds expire.
    pub ttl_secs: i64,
    /// A repeat of a request with the same key (per app) stores nothing new.
    pub idempotency_key: Option<String>,
    /// A digest of the request, to tell a true retry from a reused key.
    pub request_hash: Option<String>,
    /// Acceptance time; deliveries are due from then and expire at `created_at + ttl_secs`.
    pub created_at: OffsetDateTime,
    /// When set, the only channels the message may queue deliveries on: an insert that would
    /// queue one on another channel stores nothing and fails with
    /// [`StoreError::UnlistedChannel`] naming it. The API lists the app's channels whose
    /// checks the payload passes, instead of reading first which channels the targets reach
    /// and checking those. Checked on the deliveries stored with the message, not on later
    /// chunks of a fan-out.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
}

/// What [`crate::Store::insert_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    /// The stored message's id: the new one, or the first one for a repeated idempotency key.
    pub message_id: Uuid,
    /// How many deliveries the stored message has (including those settled at once).
    pub deliveries: u64,
    /// How many of them wait for a worker.
    pub queued: u64,
    /// True when the idempotency key matched an earlier message and nothing was stored.
    pub duplicate: bool,
    /// For a duplicate: whether the earlier request had the same digest.
    pub same_request: bool,
    /// True when the audience is larger than one chunk: `deliveries` and `queued` count the
    /// first chunk (for a duplicate, what is stored so far), and the rest are stored after the
    /// answer ([`Store::expand_audience`]).
    ///
    /// [`Store::expand_audience`]: crate::Store::expand_audience
    pub expanding: bool,
    /// The channels this insert queued deliveries on, sorted, so that the caller can wake
    /// their workers (none for a repeat).
    pub queued_channels: Vec<String>,
}

/// What one step of a large fan-out's expansion stored ([`Store::expand_audience`]).
///
/// [`Store::expand_audience`]: crate::Store::expand_audience
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The message whose audience was expanded.
    pub message_id: Uuid,
    /// Its app: whose channels may have new work.
    pub app: String,
    /// Queued deliveries this step stored.
    pub stored: u64,
    /// True when the message's whole audience is now stored.
    pub done: bool,
}

/// A stored message, as workers and the message API read it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Its id.
    pub id: Uuid,
    /// Name of the owning app.
    pub app: String,
    /// What to send.
    pub payload: serde_json::Value,
    /// The channel forced on its deliveries, if any.
    pub channel_override: Option<String>,
    /// Time to live in seconds.
    pub ttl_secs: i64,
    /// Deliveries created for it.
    pub deliveries: u64,
    /// Of which queued when stored (or handed straight to a channel's claim: a large
    /// fan-out's later chunks).
    pub queued: u64,
    /// True while part of its audience is still to be stored (a large fan-out): `deliveries`
    /// and `queued` count what is stored so far.
    pub expanding: bool,
    /// Acceptance time.
    pub created_at: OffsetDateTime,
}

/// The confirmation message of a C2DM-era registration, stored with the registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C2dmFlowRegistration {
    /// The device id the device gave.
    pub device_id: String,
    /// The registration id it asks to be reached at.
    pub registration_id: String,
    /// The secret it must echo in its confirmation.
    pub confirmation_token: String,
    /// The channel that carries the confirmation message and later messages.
    pub channel: String,
    /// The confirmation message itself (one delivery, to `registration_id`).
    pub message: NewMessage,
}

named_enum! {
    /// Where one delivery (one message to one token) stands.
    DeliveryState {
        /// Waiting for a worker.
        Queued => "queued",
        /// Claimed by a worker until `lease_until`.
        InFlight => "in_flight",
        /// Accepted by the provider.
        Sent => "sent",
        /// Waiting until `due_at` after a temporary failure.
        RetryWait => "retry_wait",
        /// Refused for good (message rejected, credentials refused, device disabled).
        Failed => "failed",
        /// The token is dead.
        TokenDead => "token_dead",
        /// Not sent before the message's deadline.
        Expired => "expired",
    }
}

impl DeliveryState {
    /// True for states a delivery never leaves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent
                | DeliveryState::Failed
                | DeliveryState::TokenDead
                | DeliveryState::Expired
        )
    }
}

/// One message to one token, the unit workers claim and complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Store-assigned id, increasing in insertion order.
    pub id: i64,
    /// The message it belongs to.
    pub message_id: Uuid,
    /// Name of the owning app.
    pub app: String,
    /// The registered device, if the target was one.
    pub device_id: Option<String>,
    /// The token to send to (kept current when the provider rotates it).
    pub token: String,
    /// The channel that carries it.
    pub channel: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// How many times a worker claimed it; also the claim's fencing number (an answer is
    /// only recorded for the claim that is current).
    pub attempts: i64,
    /// When it may be claimed next (while in flight: when its lease runs out).
    pub due_at: OffsetDateTime,
    /// While in flight: when the claim runs out and another worker may take it.
    pub lease_until: Option<OffsetDateTime>,
    /// After this instant it expires instead of being sent.
    pub deadline: OffsetDateTime,
    /// The provider's id for the sent message.
    pub provider_message_id: Option<String>,
    /// The last provider error code (or why the gateway did not send).
    pub error_code: Option<String>,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Counts of a message's deliveries by state (states with no delivery are absent).
pub type MessageSummary = BTreeMap<DeliveryState, u64>;

/// Deliveries still to be sent, for metrics and for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queued, waiting to retry, or in flight.
    pub pending: u64,
    /// Of which due now (queued or retry-wait with `due_at <= now`, or a lease run out).
    pub due: u64,
    /// The oldest `due_at` among due deliveries.
    pub oldest_due: Option<OffsetDateTime>,
}

/// One provider answer to record with [`crate::Store::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The in-flight delivery the answer is for.
    pub delivery_id: i64,
    /// Its `attempts` when claimed: an answer for an older claim is ignored.
    pub attempt: i64,
    /// What the provider said.
    pub outcome: pushgate_proto::outcome::Outcome,
    /// For retriable outcomes: when to try again (the caller's backoff, honouring
    /// Retry-After). `None` means "now". Ignored for other outcomes.
    pub retry_at: Option<OffsetDateTime>,
}

/// A claimed delivery handed back unsent (graceful shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The delivery.
    pub delivery_id: i64,
    /// Its `attempts` when claimed.
    pub attempt: i64,
}

named_enum! {
    /// What an [`Event`] reports to the application.
    EventKind {
        /// The provider gave a device a new token (data: old and new token, and the device
        /// that holds it when the rotated device was retired instead).
        TokenRotated => "token_rotated",
        /// A device was marked invalid because its token is dead (data: token, reason).
        DeviceInvalidated => "device_invalidated",
        /// A delivery failed for good (data: message, delivery, token, final state, reason).
        DeliveryFailed => "delivery_failed",
        /// A device sent a message to the app server over CCS (data: from, category,
        /// message id, data).
        UpstreamMessage => "upstream_message",
        /// CCS reported what became of a message on the device (data: the receipt, and the
        /// delivery it is about when known).
        DeliveryReceipt => "delivery_receipt",
    }
}

/// What [`crate::Store::complete`] (and the settling it caused) did, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletionStats {
    /// Answers recorded (stale ones are not).
    pub applied: u64,
    /// Deliveries that reached each state, final or waiting.
    pub states: BTreeMap<DeliveryState, u64>,
    /// Events written, by kind.
    pub events: BTreeMap<EventKind, u64>,
}

impl CompletionStats {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: &CompletionStats) {
        self.applied += other.applied;
        for (k, v) in &other.states {
            *self.states.entry(*k).or_default() += v;
        }
        for (k, v) in &other.events {
            *self.events.entry(*k).or_default() += v;
        }
    }
}

/// What a claim handed out, and what it settled instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    /// Deliveries now in flight for the caller.
    pub deliveries: Vec<Delivery>,
    /// Due deliveries that were past their deadline and expired instead.
    pub expired: u64,
}

/// An upstream message or receipt from CCS, to record exactly once.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRecord {
    /// `UpstreamMessage` or `DeliveryReceipt`.
    pub kind: EventKind,
    /// The device's token (`from` of the stanza, or the receipt's device).
    pub from_token: Option<String>,
    /// For receipts: the provider message id the receipt is about.
    pub original_message_id: Option<String>,
    /// The event data.
    pub data: serde_json::Value,
    /// Unique per app: a redelivered stanza carries the same key and is not recorded twice.
    pub dedup_key: String,
    /// For receipts: store nothing (answer `NotFound`) unless the delivery is found, so the
    /// caller can try again once the delivery's answer is committed.
    pub require_link: bool,
}

/// Where an app's webhook stands: events up to `delivered_seq` were accepted by the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookState {
    /// The app.
    pub app: String,
    /// The last event seq the receiver answered 2xx for.
    pub delivered_seq: i64,
    /// Failed attempts in a row.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was last tried.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When it may be tried next.
    pub next_attempt_at: OffsetDateTime,
}

/// Deliveries still to be sent on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelQueue {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// Its counts.
    pub stats: QueueStats,
}

/// A change the application should hear about, read through the events API and webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Cursor: increases with every event of the store.
    pub seq: i64,
    /// Name of the owning app.
    pub app: String,
    /// What happened.
    pub kind: EventKind,
    /// The device concerned, if it is registered.
    pub device_id: Option<String>,
    /// Details, shaped per kind.
    pub data: serde_json::Value,
    /// When it happened.
    pub created_at: OffsetDateTime,
}

/// A channel that got new work to claim, as announced by [`crate::Store::watch_work`] (work
/// stored or released by any instance sharing the database).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NewWork {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
}
