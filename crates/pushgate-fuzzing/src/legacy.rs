//! Legacy HTTP send answers: the JSON shapes and the plain-text `id=` / `Error=` form.

use pushgate_proto::legacy::{JsonResponse, PlainTextResponse};

use crate::json_round_trip;

/// `JsonResponse::parse`: never panics; a parsed answer re-encodes to JSON that parses back
/// to the same shape and value; every recipient result maps to an outcome or an error.
pub fn legacy_json_response(data: &[u8]) {
    let Ok(parsed) = JsonResponse::parse(data) else {
        return;
    };
    let encoded = match &parsed {
        JsonResponse::Multicast(m) => {
            json_round_trip(m);
            for r in &m.results {
                let _ = r.outcome(None);
            }
            serde_json::to_vec(m)
        }
        JsonResponse::Topic(t) => {
            json_round_trip(t);
            serde_json::to_vec(t)
        }
        JsonResponse::Group(g) => {
            json_round_trip(g);
            serde_json::to_vec(g)
        }
    }
    .expect("a parsed answer serialises");
    let again = JsonResponse::parse(&encoded).expect("a re-encoded answer parses");
    assert_eq!(
        again, parsed,
        "re-encoding changed the answer's shape or value"
    );
}

/// `PlainTextResponse::parse` (bytes read as UTF-8, lossily): never panics; a parsed answer
/// renders with `to_body` to text that parses back to the same answer; `outcome` never panics.
pub fn legacy_plaintext_response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = PlainTextResponse::parse(&text) else {
        return;
    };
    let _ = parsed.outcome();
    let again = PlainTextResponse::parse(&parsed.to_body()).expect("a rendered answer parses");
    assert_eq!(again, parsed, "to_body → parse changed the answer");
}
