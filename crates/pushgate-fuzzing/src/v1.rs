//! FCM v1 answers: the 200 `SendResponse` and the `google.rpc.Status` error body.

use pushgate_proto::v1::{ErrorBody, SendResponse};

use crate::json_round_trip;

/// HTTP statuses an error body is classified with; the input's first byte picks one.
const STATUSES: &[u16] = &[
    200,
    400,
    401,
    403,
    404,
    429,
    500,
    503,
    0,
    599,
    600,
    u16::MAX,
];

/// `SendResponse` from JSON: never panics; a parsed answer survives the JSON round trip.
pub fn v1_send_response(data: &[u8]) {
    if let Ok(parsed) = serde_json::from_slice::<SendResponse>(data) {
        json_round_trip(&parsed);
    }
}

/// `ErrorBody::outcome_of_response` never panics, whatever the status and body; a parsed
/// body re-encodes to one that classifies the same way with the same code, message, status,
/// FCM error code, ErrorInfo reason and invalid-token verdict. (Details are JSON values whose
/// floats need not survive serde_json bit for bit, so they are compared through what is read
/// from them.)
pub fn v1_error_body(data: &[u8]) {
    let status = STATUSES[usize::from(data.first().copied().unwrap_or(0)) % STATUSES.len()];
    let _ = ErrorBody::outcome_of_response(status, data, None);
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(data) else {
        return;
    };
    let encoded = serde_json::to_vec(&parsed).expect("a parsed body serialises");
    let again: ErrorBody = serde_json::from_slice(&encoded).expect("a re-encoded body parses");
    assert_eq!(again.error.code, parsed.error.code);
    assert_eq!(again.error.message, parsed.error.message);
    assert_eq!(again.error.status, parsed.error.status);
    assert_eq!(again.error.details.len(), parsed.error.details.len());
    assert_eq!(again.fcm_error_code(), parsed.fcm_error_code());
    assert_eq!(again.error_info_reason(), parsed.error_info_reason());
    assert_eq!(again.is_invalid_token(), parsed.is_invalid_token());
    for &s in STATUSES {
        assert_eq!(
            again.outcome(s, None),
            parsed.outcome(s, None),
            "status {s}"
        );
        assert_eq!(
            ErrorBody::outcome_of_response(s, &encoded, None),
            parsed.outcome(s, None),
            "status {s}"
        );
    }
}
