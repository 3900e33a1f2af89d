//! Instance ID answers: `batchAdd`/`batchRemove` results and the instance-info lookup.

use pushgate_proto::iid::{BatchResponse, InstanceInfo, Relations};

use crate::json_round_trip;

/// `BatchResponse`, `InstanceInfo` and `Relations` from the same bytes: none panics, and
/// each that parses survives the JSON round trip.
pub fn iid_responses(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<BatchResponse>(data) {
        json_round_trip(&v);
    }
    if let Ok(v) = serde_json::from_slice::<InstanceInfo>(data) {
        json_round_trip(&v);
    }
    if let Ok(v) = serde_json::from_slice::<Relations>(data) {
        json_round_trip(&v);
    }
}
