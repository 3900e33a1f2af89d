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

/// What an application registers: one installation of its client on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDevice {
    /// The application's own id for this device, unique within the app.
    pub device_id: String,
    /// The provider registration token.
    pub token: String,
    /// Which provider protocol to reach it over, if not the app's default.
    pub channel: Option<String>,
    /// The application's user id, for targeting a user's devices.
    pub user: Option<String>,
    /// Free tags, for targeting groups of devices.
    pub tags: Vec<String>,
    /// The client application's version, for diagnostics.
    pub app_version: Option<String>,
}

/// A registered device as stored, with its registry state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Name of the owning app.
    pub app: String,
    /// The application's own id for this device.
    pub device_id: String,
    /// Current provider token (rewritten when the provider reports a canonical id).
    pub token: String,
    /// Provider protocol override.
    pub channel: Option<String>,
    /// The application's user id.
    pub user: Option<String>,
    /// Targeting tags, sorted and without duplicates.
    pub tags: Vec<String>,
    /// Client application version.
    pub app_version: Option<String>,
    /// Whether the gateway may send to it.
    pub state: DeviceState,
    /// Why it is invalid (provider error code, or which device took its token).
    pub invalid_reason: Option<String>,
    /// True once a provider accepted a message for the current token.
    pub confirmed: bool,
    /// First registration.
    pub created_at: OffsetDateTime,
    /// Last change of any field.
    pub updated_at: OffsetDateTime,
}

/// Which devices [`crate::Store::list_devices`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only devices of this user.
    pub user: Option<String>,
    /// Only devices carrying this tag.
    pub tag: Option<String>,
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

/// A message accepted from the application, stored before the API answers 202.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Time-ordered id (UUID v7) given by the caller.
    pub id: Uuid,
    /// Name of the owning app.
    pub app: String,
    /// What to send; opaque to the store.
    pub payload: serde_json::Value,
    /// Provider protocol override for the whole message.
    pub channel: Option<String>,
    /// Time to live: deliveries not sent within this many seconds expire.
    pub ttl_secs: i64,
    /// A repeat of a request with the same key (per app) stores nothing new.
    pub idempotency_key: Option<String>,
    /// Acceptance time; deliveries are due from then and expire at `created_at + ttl_secs`.
    pub created_at: OffsetDateTime,
}

/// One target of a new message, already expanded to a token by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    /// The registered device, when the target was one (raw-token targets have none).
    pub device_id: Option<String>,
    /// The token to send to.
    pub token: String,
    /// Provider protocol for this token.
    pub channel: Option<String>,
}

/// What [`crate::Store::insert_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    /// The stored message's id: the new one, or the first one for a repeated idempotency key.
    pub message_id: Uuid,
    /// How many deliveries the stored message has.
    pub deliveries: u64,
    /// True when the idempotency key matched an earlier message and nothing was stored.
    pub duplicate: bool,
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
    /// Provider protocol.
    pub channel: Option<String>,
    /// Where it stands.
    pub state: DeliveryState,
    /// How many times a worker claimed it.
    pub attempts: i64,
    /// When it may be claimed next.
    pub due_at: OffsetDateTime,
    /// While in flight: when the claim runs out and another worker may take it.
    pub lease_until: Option<OffsetDateTime>,
    /// After this instant it expires instead of being sent.
    pub deadline: OffsetDateTime,
    /// The provider's id for the sent message.
    pub provider_message_id: Option<String>,
    /// The last provider error code.
    pub error_code: Option<String>,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Counts of a message's deliveries by state (states with no delivery are absent).
pub type MessageSummary = BTreeMap<DeliveryState, u64>;

/// One provider answer to record with [`crate::Store::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The in-flight delivery the answer is for.
    pub delivery_id: i64,
    /// What the provider said.
    pub outcome: pushgate_proto::outcome::Outcome,
    /// For retriable outcomes: when to try again (the caller's backoff, honouring
    /// Retry-After). `None` means "now". Ignored for other outcomes.
    pub retry_at: Option<OffsetDateTime>,
}

named_enum! {
    /// What an [`Event`] reports to the application.
    EventKind {
        /// The provider gave a device a new token (data: old and new token, and the device
        /// that holds it when the rotated device was retired instead).
        TokenRotated => "token_rotated",
        /// A device was marked invalid because its token is dead (data: token, reason).
        DeviceInvalidated => "device_invalidated",
        /// A delivery failed for good (data: message, delivery, outcome kind, reason).
        DeliveryFailed => "delivery_failed",
    }
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
