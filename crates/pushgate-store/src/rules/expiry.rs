//! Due work against its deadline: a claim hands out only work whose deadline is still ahead;
//! the rest is settled as expired, with an event.

use time::OffsetDateTime;

use super::events::{self, DeliveryRef, NewEvent};
use crate::model::{Delivery, DeliveryState};

/// The error code of work that outlived its message's TTL.
pub const TTL_EXPIRED: &str = "ttl_expired";

/// The `outcome` reported for work that expired while due.
pub const EXPIRED_OUTCOME: &str = "expired";

/// Whether work with this deadline has expired at `now` (the deadline itself is too late).
pub fn is_expired(deadline: OffsetDateTime, now: OffsetDateTime) -> bool {
    deadline <= now
}

/// The error code an expired delivery keeps: the last error it met, else [`TTL_EXPIRED`].
pub fn expired_error(previous: Option<&str>) -> &str {
    previous.unwrap_or(TTL_EXPIRED)
}

/// The event for a due delivery that expired instead of being claimed.
pub fn expired_event(delivery: &Delivery) -> NewEvent {
    let named = DeliveryRef {
        delivery_id: delivery.id,
        message_id: delivery.message_id,
        device_id: delivery.device_id.clone(),
        token: delivery.token.clone(),
    };
    events::delivery_failed(
        &named,
        DeliveryState::Expired,
        EXPIRED_OUTCOME,
        expired_error(delivery.error_code.as_deref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    fn noon() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_268_800).unwrap()
    }

    #[test]
    fn the_deadline_itself_is_already_too_late() {
        let deadline = noon();
        assert!(!is_expired(
            deadline,
            deadline - time::Duration::milliseconds(1)
        ));
        assert!(is_expired(deadline, deadline));
        assert!(is_expired(deadline, deadline + time::Duration::seconds(1)));
    }

    #[test]
    fn expired_work_keeps_its_last_error() {
        assert_eq!(expired_error(None), "ttl_expired");
        assert_eq!(expired_error(Some("Unavailable")), "Unavailable");
    }

    #[test]
    fn the_expiry_event_reports_state_outcome_and_reason() {
        let at = noon();
        let d = Delivery {
            id: 3,
            message_id: uuid::Uuid::nil(),
            app: "app".into(),
            device_id: None,
            token: "t9".into(),
            channel: "main".into(),
            state: DeliveryState::RetryWait,
            attempts: 2,
            due_at: at,
            lease_until: None,
            deadline: at,
            provider_message_id: None,
            error_code: Some("Unavailable".into()),
            updated_at: at,
        };
        let e = expired_event(&d);
        assert_eq!(e.kind, EventKind::DeliveryFailed);
        assert_eq!(e.device_id, None);
        assert_eq!(e.data["state"], "expired");
        assert_eq!(e.data["outcome"], "expired");
        assert_eq!(e.data["reason"], "Unavailable");
        assert_eq!(e.data["delivery_id"], 3);
    }
}
