//! How stored things look in API answers.

use pushgate_store::{Delivery, Device};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 text of a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A device as the API shows it.
pub fn device(d: &Device) -> Value {
    json!({
        "device_id": d.device_id,
        "token": d.token,
        "channel": d.channel,
        "user": d.user,
        "tags": d.tags,
        "topics": d.topics,
        "app_version": d.app_version,
        "state": d.state.as_str(),
        "invalid_reason": d.invalid_reason,
        "registration": d.registration.as_str(),
        "confirmed": d.is_confirmed(),
        "pending_token": d.pending_token,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
    })
}

/// One delivery as a per-device result of a message.
pub fn delivery(d: &Delivery) -> Value {
    json!({
        "delivery_id": d.id,
        "device_id": d.device_id,
        "token": d.token,
        "channel": d.channel,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "provider_message_id": d.provider_message_id,
        "error": d.error_code,
        "next_attempt_at": (!d.state.is_final()).then(|| rfc3339(d.due_at)),
        "updated_at": rfc3339(d.updated_at),
    })
}
