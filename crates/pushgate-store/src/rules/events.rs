//! The events the store writes for the application, with their public JSON (a wire format:
//! webhooks and `GET /events` hand `data` out as is).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{DeliveryState, EventKind};

/// An event to append in the transaction of its cause.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// The device it concerns, if registered.
    pub device_id: Option<String>,
    /// Its public JSON.
    pub data: Value,
}

/// A delivery as events name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRef {
    /// The delivery.
    pub delivery_id: i64,
    /// Its message.
    pub message_id: Uuid,
    /// Its device, if registered.
    pub device_id: Option<String>,
    /// The token it was for.
    pub token: String,
}

/// The `outcome` of a delivery settled by a registry change (device disabled, deleted,
/// retired) rather than by a provider answer.
pub const REGISTRY_OUTCOME: &str = "registry";

/// A delivery that ended without reaching its device: every final failure of work that was
/// queued is reported, whatever ended it (an answer, the TTL, a registry change).
pub fn delivery_failed(
    delivery: &DeliveryRef,
    state: DeliveryState,
    outcome: &str,
    reason: &str,
) -> NewEvent {
    NewEvent {
        kind: EventKind::DeliveryFailed,
        device_id: delivery.device_id.clone(),
        data: json!({
            "message_id": delivery.message_id,
            "delivery_id": delivery.delivery_id,
            "token": delivery.token,
            "state": state.as_str(),
            "outcome": outcome,
            "reason": reason,
        }),
    }
}

/// The provider gave a token a canonical id; `held_by` names the live device that already
/// held the new token (the rotated device was retired instead of rewritten).
pub fn token_rotated(
    device_id: Option<&str>,
    old_token: &str,
    new_token: &str,
    held_by: Option<&str>,
) -> NewEvent {
    let data = match held_by {
        Some(holder) => {
            json!({"old_token": old_token, "new_token": new_token, "retired": true, "held_by": holder})
        }
        None => json!({"old_token": old_token, "new_token": new_token, "retired": false}),
    };
    NewEvent {
        kind: EventKind::TokenRotated,
        device_id: device_id.map(str::to_string),
        data,
    }
}

/// A provider said a live device's token is dead.
pub fn device_invalidated(device_id: &str, token: &str, reason: &str) -> NewEvent {
    NewEvent {
        kind: EventKind::DeviceInvalidated,
        device_id: Some(device_id.to_string()),
        data: json!({"token": token, "reason": reason}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> DeliveryRef {
        DeliveryRef {
            delivery_id: 7,
            message_id: Uuid::nil(),
            device_id: Some("d1".into()),
            token: "t1".into(),
        }
    }

    #[test]
    fn delivery_failed_names_the_delivery_and_why() {
        let e = delivery_failed(
            &delivery(),
            DeliveryState::Expired,
            "expired",
            "ttl_expired",
        );
        assert_eq!(e.kind, EventKind::DeliveryFailed);
        assert_eq!(e.device_id.as_deref(), Some("d1"));
        assert_eq!(
            e.data,
            json!({
                "message_id": "00000000-0000-0000-0000-000000000000",
                "delivery_id": 7,
                "token": "t1",
                "state": "expired",
                "outcome": "expired",
                "reason": "ttl_expired",
            })
        );
    }

    #[test]
    fn token_rotated_says_whether_the_device_was_retired() {
        let kept = token_rotated(Some("d1"), "old", "new", None);
        assert_eq!(
            kept.data,
            json!({"old_token": "old", "new_token": "new", "retired": false})
        );
        let retired = token_rotated(Some("d1"), "old", "new", Some("d2"));
        assert_eq!(
            retired.data,
            json!({"old_token": "old", "new_token": "new", "retired": true, "held_by": "d2"})
        );
        assert_eq!(retired.kind, EventKind::TokenRotated);
    }

    #[test]
    fn device_invalidated_carries_token_and_reason() {
        let e = device_invalidated("d1", "t1", "NotRegistered");
        assert_eq!(e.kind, EventKind::DeviceInvalidated);
        assert_eq!(e.device_id.as_deref(), Some("d1"));
        assert_eq!(e.data, json!({"token": "t1", "reason": "NotRegistered"}));
    }
}
