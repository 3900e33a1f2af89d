//! A downstream message as the application builds it; the client adds the `message_id`.

use pushgate_proto::ValidationError;
use pushgate_proto::ccs::DownstreamMessage;
use pushgate_proto::legacy::{Notification, Priority};
use serde_json::{Map, Value};

/// A downstream message to one token, topic or condition (docs/protocols.md,
/// "CCS: downstream messages"). The client
/// generates its `message_id` when sending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CcsMessage {
    inner: DownstreamMessage,
}

impl CcsMessage {
    /// A message to one token, notification key or `/topics/<name>`.
    pub fn to(target: impl Into<String>) -> Self {
        CcsMessage {
            inner: DownstreamMessage {
                to: Some(target.into()),
                ..Default::default()
            },
        }
    }

    /// A message to the devices matching a topic condition.
    pub fn condition(condition: impl Into<String>) -> Self {
        CcsMessage {
            inner: DownstreamMessage {
                condition: Some(condition.into()),
                ..Default::default()
            },
        }
    }

    /// Wraps a full downstream message; its `message_id` is replaced when sending.
    pub fn from_downstream(inner: DownstreamMessage) -> Self {
        CcsMessage { inner }
    }

    /// Adds one `data` entry.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner
            .data
            .get_or_insert_with(Map::new)
            .insert(key.into(), Value::String(value.into()));
        self
    }

    /// Replaces the whole `data` object.
    pub fn data_map(mut self, data: Map<String, Value>) -> Self {
        self.inner.data = Some(data);
        self
    }

    /// Sets the display notification.
    pub fn notification(mut self, notification: Notification) -> Self {
        self.inner.notification = Some(notification);
        self
    }

    /// Sets `collapse_key`.
    pub fn collapse_key(mut self, key: impl Into<String>) -> Self {
        self.inner.collapse_key = Some(key.into());
        self
    }

    /// Sets `priority`.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.inner.priority = Some(priority);
        self
    }

    /// Sets `time_to_live` in seconds.
    pub fn time_to_live(mut self, seconds: u32) -> Self {
        self.inner.time_to_live = Some(seconds);
        self
    }

    /// Asks for a delivery receipt (it arrives on the [`UpstreamStream`](super::UpstreamStream)).
    pub fn delivery_receipt(mut self) -> Self {
        self.inner.delivery_receipt_requested = Some(true);
        self
    }

    /// Validate only, deliver nothing.
    pub fn dry_run(mut self) -> Self {
        self.inner.dry_run = Some(true);
        self
    }

    /// Checks the rules CCS checks (with a placeholder id), so a caller can refuse bad input
    /// before sending.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut m = self.inner.clone();
        m.message_id = "-".into();
        m.validate()
    }

    /// The message with `message_id` set, ready to serialise.
    pub(crate) fn with_id(&self, message_id: &str) -> DownstreamMessage {
        let mut m = self.inner.clone();
        m.message_id = message_id.to_string();
        m
    }

    /// The target (`to` or `condition`), for logs.
    pub fn target(&self) -> Option<&str> {
        self.inner.to.as_deref().or(self.inner.condition.as_deref())
    }
}
