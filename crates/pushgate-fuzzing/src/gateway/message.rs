//! `POST /v1/apps/{app}/messages` bodies, through the public `parse_send_body`.

use pushgate_gateway::message::{parse_send_body, request_digest};

use crate::json_same;

/// Target-list bound the body is checked against (the default limit).
const MAX_LIST: usize = 1000;
/// TTL applied when the body gives none.
const DEFAULT_TTL: u32 = 2_419_200;

/// `parse_send_body`: never panics; an accepted body serialises to JSON that is accepted
/// again as the same body (numbers within float precision) with the same targets.
pub fn gateway_message_body(data: &[u8]) {
    let Ok(parsed) = parse_send_body(data, MAX_LIST, DEFAULT_TTL) else {
        return;
    };
    let _ = request_digest(&parsed.body);
    let encoded = serde_json::to_vec(&parsed.body).expect("a parsed body serialises");
    let again =
        parse_send_body(&encoded, MAX_LIST, DEFAULT_TTL).expect("a re-encoded body is accepted");
    let before = serde_json::to_value(&parsed.body).expect("serialises");
    let after = serde_json::to_value(&again.body).expect("serialises");
    assert!(json_same(&before, &after), "{before} became {after}");
    assert_eq!(
        format!("{:?}", again.targets),
        format!("{:?}", parsed.targets)
    );
}
