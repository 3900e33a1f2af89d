//! The documented shapes of device bodies: `PUT .../devices/{device_id}` takes no
//! `device_id` (the path names the device) and each `devices:import` entry requires one.
//! Handlers read both through `DeviceFields`; these types exist so that the OpenAPI document
//! says exactly which fields each operation takes. Their bounds are filled by `doc_rules`.

use serde::Deserialize;
use utoipa::ToSchema;

use super::devices::StateBody;

/// The body of `PUT /v1/apps/{app}/devices/{device_id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct DeviceBody {
    /// The provider token.
    token: String,
    /// A channel of the app, when not its default.
    #[serde(default)]
    channel: Option<String>,
    /// The application's user id.
    #[serde(default)]
    user: Option<String>,
    /// Targeting tags.
    #[serde(default)]
    tags: Vec<String>,
    /// Topic subscriptions in the registry (topic names).
    #[serde(default)]
    topics: Vec<String>,
    /// Client application version.
    #[serde(default)]
    app_version: Option<String>,
    /// `active` or `disabled`; omitted keeps a disabled device disabled.
    #[serde(default)]
    state: Option<StateBody>,
}

/// One entry of a `devices:import` body: a device body with its `device_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ImportedDevice {
    /// The application's id for the device.
    device_id: String,
    /// The provider token.
    token: String,
    /// A channel of the app, when not its default.
    #[serde(default)]
    channel: Option<String>,
    /// The application's user id.
    #[serde(default)]
    user: Option<String>,
    /// Targeting tags.
    #[serde(default)]
    tags: Vec<String>,
    /// Topic subscriptions in the registry (topic names).
    #[serde(default)]
    topics: Vec<String>,
    /// Client application version.
    #[serde(default)]
    app_version: Option<String>,
    /// `active` or `disabled`; omitted keeps a disabled device disabled.
    #[serde(default)]
    state: Option<StateBody>,
}
