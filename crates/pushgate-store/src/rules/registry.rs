//! Registry decisions: when a device is retired and why, and what happens to the work still
//! waiting for a device whose state changes.

use crate::model::{DeliveryState, DeviceState};

/// A device to mark invalid, with the reason it keeps; its waiting work settles as
/// [`RETIRED_WORK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// The device to retire.
    pub device_id: String,
    /// Why, as stored in its `invalid_reason`.
    pub reason: String,
}

/// How the waiting (queued or retry-wait) work of a retired device ends: never sent.
pub const RETIRED_WORK: (DeliveryState, &str) = (DeliveryState::TokenDead, "device_invalid");

/// How the waiting work of a deleted device ends.
pub const DELETED_WORK: (DeliveryState, &str) = (DeliveryState::Failed, "device_deleted");

/// `device_id` takes `token` over: the other live device holding it, if any, is retired.
pub fn take_over(device_id: &str, holder: Option<&str>) -> Option<Retirement> {
    match holder {
        Some(holder) if holder != device_id => Some(Retirement {
            device_id: holder.to_string(),
            reason: format!("token taken over by {device_id}"),
        }),
        _ => None,
    }
}

/// A canonical id names a token another live device already holds: the rotated device is
/// retired in favour of that holder.
pub fn canonical_id_held(device_id: &str, holder: &str) -> Retirement {
    Retirement {
        device_id: device_id.to_string(),
        reason: format!("canonical id held by {holder}"),
    }
}

/// How a device's waiting work ends when the device is set to `state`; `None` when it keeps
/// waiting (the device is active).
pub fn waiting_work_on(state: DeviceState) -> Option<(DeliveryState, &'static str)> {
    match state {
        DeviceState::Active => None,
        DeviceState::Disabled => Some((DeliveryState::Failed, "device_disabled")),
        DeviceState::Invalid => Some(RETIRED_WORK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_a_token_over_retires_only_another_holder() {
        assert_eq!(take_over("d1", None), None);
        assert_eq!(take_over("d1", Some("d1")), None);
        assert_eq!(
            take_over("d1", Some("d2")),
            Some(Retirement {
                device_id: "d2".into(),
                reason: "token taken over by d1".into(),
            })
        );
    }

    #[test]
    fn a_held_canonical_id_retires_the_rotated_device() {
        let r = canonical_id_held("d1", "d2");
        assert_eq!(r.device_id, "d1");
        assert_eq!(r.reason, "canonical id held by d2");
    }

    #[test]
    fn leaving_active_settles_waiting_work() {
        assert_eq!(waiting_work_on(DeviceState::Active), None);
        assert_eq!(
            waiting_work_on(DeviceState::Disabled),
            Some((DeliveryState::Failed, "device_disabled"))
        );
        assert_eq!(
            waiting_work_on(DeviceState::Invalid),
            Some((DeliveryState::TokenDead, "device_invalid"))
        );
    }
}
