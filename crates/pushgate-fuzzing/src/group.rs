//! Device-group (notification key) management answers.

use pushgate_proto::group::{GroupError, NotificationKeyResponse};

use crate::json_round_trip;

/// `NotificationKeyResponse` and `GroupError` from the same bytes: neither panics, and each
/// that parses survives the JSON round trip.
pub fn group_responses(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<NotificationKeyResponse>(data) {
        json_round_trip(&v);
    }
    if let Ok(v) = serde_json::from_slice::<GroupError>(data) {
        json_round_trip(&v);
    }
}
