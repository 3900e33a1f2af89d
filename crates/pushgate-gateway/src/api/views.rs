//! How stored things look in API answers: typed, so that the OpenAPI document
//! (`/openapi.json`) is generated from the very types the handlers serialize.

use std::collections::BTreeMap;

use pushgate_store::{Delivery, Device, Event};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::worker::StatusView;

/// RFC 3339 text of a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// The application's id for the device.
    pub device_id: String,
    /// Its provider token; null while a C2DM-era registration waits for confirmation.
    pub token: Option<String>,
    /// Its channel, when not the app's default.
    pub channel: Option<String>,
    /// The application's user id.
    pub user: Option<String>,
    /// Targeting tags.
    pub tags: Vec<String>,
    /// Topics it is subscribed to in the registry.
    pub topics: Vec<String>,
    /// Client application version.
    pub app_version: Option<String>,
    /// `active`, `disabled` (by the application) or `invalid` (by the provider).
    pub state: String,
    /// Why it is invalid.
    pub invalid_reason: Option<String>,
    /// `api` or `c2dm_flow`.
    pub registration: String,
    /// False while a C2DM-era registration waits for its confirmation.
    pub confirmed: bool,
    /// A registration id waiting for confirmation.
    pub pending_token: Option<String>,
    /// First registration (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        Self {
            device_id: d.device_id.clone(),
            token: d.token.clone(),
            channel: d.channel.clone(),
            user: d.user.clone(),
            tags: d.tags.clone(),
            topics: d.topics.clone(),
            app_version: d.app_version.clone(),
            state: d.state.as_str().to_string(),
            invalid_reason: d.invalid_reason.clone(),
            registration: d.registration.as_str().to_string(),
            confirmed: d.is_confirmed(),
            pending_token: d.pending_token.clone(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// The answer of a device registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicePut {
    /// The device as stored.
    #[serde(flatten)]
    pub device: DeviceView,
    /// The device that held this token before and was retired for it.
    pub took_over_from: Option<String>,
}

/// A page of devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// The devices, by device id.
    pub devices: Vec<DeviceView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The answer of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Devices stored.
    pub imported: usize,
    /// Of which new.
    pub created: usize,
    /// Of which updated.
    pub updated: usize,
    /// Devices retired because an imported device took their token.
    pub took_over_from: Vec<String>,
}

/// The answer of an accepted message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The message id.
    pub id: Uuid,
    /// Per-device results it has (including those settled at once: unknown, disabled,
    /// invalid, unconfirmed devices).
    pub deliveries: u64,
    /// How many wait for the provider.
    pub queued: u64,
    /// True when the audience is larger than one chunk (`storage.fanout_chunk`): the counts
    /// above are the first chunk's, and the rest are stored in the background
    /// (`GET /v1/messages/{id}` says when every delivery is stored).
    pub expanding: bool,
}

/// One per-device result of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The delivery id (cursor of the results).
    pub delivery_id: i64,
    /// The device, when the target was a registered one.
    pub device_id: Option<String>,
    /// The token it was sent to.
    pub token: String,
    /// The channel that carries it.
    pub channel: String,
    /// `queued`, `in_flight`, `retry_wait`, `sent`, `failed`, `token_dead` or `expired`.
    pub state: String,
    /// Times it was handed to the provider.
    pub attempts: i64,
    /// The provider's message id, once sent.
    pub provider_message_id: Option<String>,
    /// The provider's error code (or why the gateway did not send).
    pub error: Option<String>,
    /// When the next attempt is due, while not final.
    pub next_attempt_at: Option<String>,
    /// Last change.
    pub updated_at: String,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            delivery_id: d.id,
            device_id: d.device_id.clone(),
            token: d.token.clone(),
            channel: d.channel.clone(),
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            provider_message_id: d.provider_message_id.clone(),
            error: d.error_code.clone(),
            next_attempt_at: (!d.state.is_final()).then(|| rfc3339(d.due_at)),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// A message's status and a page of its per-device results.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageStatus {
    /// The message id.
    pub id: Uuid,
    /// Its app.
    pub app: String,
    /// When it was accepted.
    pub created_at: String,
    /// Its time to live in seconds.
    pub ttl: i64,
    /// How many per-device results it has (so far, while `expanding`).
    pub deliveries: u64,
    /// True while part of a large audience is still to be stored.
    pub expanding: bool,
    /// True when every delivery is stored and none is pending any more.
    pub done: bool,
    /// Deliveries by state.
    pub counts: BTreeMap<String, u64>,
    /// A page of per-device results.
    pub results: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<i64>,
}

/// An event of the app's log (also the item of the stream and of webhook batches).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Its id: increasing, the cursor of the list and the SSE id of the stream.
    pub id: i64,
    /// `token_rotated`, `device_invalidated`, `delivery_failed`, `upstream_message` or
    /// `delivery_receipt`.
    pub r#type: String,
    /// The app.
    pub app: String,
    /// The device concerned, when registered.
    pub device_id: Option<String>,
    /// Details, shaped per type.
    #[schema(value_type = Object)]
    pub data: Value,
    /// When it happened.
    pub created_at: String,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.seq,
            r#type: e.kind.as_str().to_string(),
            app: e.app.clone(),
            device_id: e.device_id.clone(),
            data: e.data.clone(),
            created_at: rfc3339(e.created_at),
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// The events, in order.
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page.
    pub next_cursor: i64,
}

/// How one channel's worker is doing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelStatusView {
    /// Deliveries handed to the provider since start.
    pub attempted: u64,
    /// Answers recorded since start.
    pub completed: u64,
    /// The last whole-channel problem.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<String>,
    /// Sends wait until then (Retry-After, refused key, provider down).
    pub paused_until: Option<String>,
}

impl From<StatusView> for ChannelStatusView {
    fn from(s: StatusView) -> Self {
        Self {
            attempted: s.attempted,
            completed: s.completed,
            last_error: s.last_error.as_ref().map(|(_, e)| e.clone()),
            last_error_at: s.last_error.as_ref().map(|(t, _)| rfc3339(*t)),
            paused_until: s.paused_until.map(rfc3339),
        }
    }
}

/// A credential, by reference only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// Where it comes from (`env:NAME`, `file:PATH`, `inline`).
    pub r#ref: String,
    /// A short non-reversible fingerprint.
    pub fingerprint: String,
}

/// One channel of an app.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// Its name.
    pub name: String,
    /// `fcm_v1`, `legacy`, `ccs` or `c2dm`.
    pub kind: String,
    /// True for the app's default channel.
    pub default: bool,
    /// Where it sends.
    pub endpoint: String,
    /// Its credential.
    pub credential: CredentialView,
    /// Its worker.
    pub status: ChannelStatusView,
}

/// The C2DM-era flow of an app.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowView {
    /// Its channel.
    pub channel: String,
    /// Longest accepted registration id.
    pub registration_id_max_len: usize,
}

/// An app.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    /// Its name.
    pub name: String,
    /// The channel of devices naming none.
    pub default_channel: String,
    /// Its C2DM-era flow.
    pub c2dm_flow: FlowView,
    /// Its channels.
    pub channels: Vec<ChannelView>,
}

/// Where an app's webhook stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// The receiver.
    pub url: String,
    /// False until the sender first ran.
    pub started: bool,
    /// The last event id the receiver accepted.
    pub delivered_through: Option<i64>,
    /// Events not delivered yet.
    pub backlog: Option<u64>,
    /// Failed attempts in a row.
    pub failed_attempts: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was last tried.
    pub last_attempt_at: Option<String>,
    /// When it is tried next.
    pub next_attempt_at: Option<String>,
}

/// The database part of readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseView {
    /// Usable.
    pub ok: bool,
    /// The applied schema version.
    pub schema_version: Option<i64>,
    /// What is wrong.
    pub error: Option<String>,
}

/// One channel in the readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChannel {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// Its protocol.
    pub kind: String,
    /// Its worker.
    #[serde(flatten)]
    pub status: ChannelStatusView,
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyView {
    /// True when the gateway can accept and deliver.
    pub ready: bool,
    /// The database.
    pub database: DatabaseView,
    /// Every channel.
    pub channels: Vec<ReadyChannel>,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// `ok`.
    pub status: String,
}

/// The detail of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `invalid_request`, `unauthenticated`, `forbidden`, `not_found`,
    /// `conflict`, `idempotency_key_reused`, `body_too_large`, `unsupported_media_type`,
    /// `method_not_allowed`, `internal`.
    pub code: String,
    /// What is wrong, naming the field.
    pub message: String,
    /// The offending field, as a path in the request.
    pub field: Option<String>,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
    /// The request id (also the `X-Request-Id` header).
    pub request_id: String,
}
