//! The protocol-neutral message the store keeps: what every channel turns into its wire form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Delivery priority (legacy `priority`, v1 `android.priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Wake the device.
    High,
    /// May wait for a maintenance window.
    Normal,
}

/// A display notification, in the fields every generation of the protocols shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Android icon resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Sound to play.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// Replaces an earlier notification with the same tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Icon colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Activity to open on tap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_action: Option<String>,
    /// Android notification channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
}

impl Notification {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Notification::default()
    }
}

/// A message as stored: every option resolved, data values as the device receives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Key-value data, strings as delivered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Display notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// Messages with the same key replace each other while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
    /// Priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Time to live in seconds, as given to the provider.
    pub ttl_secs: u32,
    /// Wait until the device is active (legacy and C2DM).
    #[serde(default)]
    pub delay_while_idle: bool,
    /// Validate only: the provider checks but does not deliver.
    #[serde(default)]
    pub dry_run: bool,
}

impl Payload {
    /// The payload as stored (JSON).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Reads a stored payload back.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Payload::deserialize(value)
    }

    /// `data` as a JSON object, for protocols that carry JSON.
    pub fn data_object(&self) -> serde_json::Map<String, serde_json::Value> {
        self.data
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    }
}
