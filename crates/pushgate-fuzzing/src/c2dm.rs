//! C2DM: the `/c2dm/send` answer (with its `Retry-After`) and the ClientLogin answer.

use std::time::{Duration, UNIX_EPOCH};

use pushgate_proto::RetryAfter;
use pushgate_proto::c2dm::ClientLoginResponse;
use pushgate_proto::legacy::PlainTextResponse;

/// The input's first line is the `Retry-After` header, the rest the body (read as UTF-8,
/// lossily). Never panics; a parsed header renders and parses back to itself and yields a
/// delay; a parsed body renders with `to_body` and parses back to itself, and its outcome
/// (with that delay, as the sender computes it) never panics.
pub fn c2dm_send_response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (header, body) = text.split_once('\n').unwrap_or(("", &text));
    let retry_after = RetryAfter::parse(header);
    let delay = retry_after.map(|r| {
        let again = RetryAfter::parse(&r.to_header_value()).expect("a rendered header parses");
        assert_eq!(again, r, "Retry-After round trip changed the value");
        r.delay_from(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    });
    let Ok(parsed) = PlainTextResponse::parse(body) else {
        return;
    };
    match &parsed {
        PlainTextResponse::Error(code) => {
            let _ = code.outcome(delay);
        }
        answer => {
            let _ = answer.outcome();
        }
    }
    let again = PlainTextResponse::parse(&parsed.to_body()).expect("a rendered answer parses");
    assert_eq!(again, parsed, "to_body → parse changed the answer");
}

/// `ClientLoginResponse::parse` (UTF-8, lossily): never panics; a parsed answer renders with
/// `to_body` to text that parses back to the same answer.
pub fn client_login_response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Some(parsed) = ClientLoginResponse::parse(&text) else {
        return;
    };
    let body = parsed.to_body();
    let again = ClientLoginResponse::parse(&body).expect("a rendered answer parses");
    assert!(
        again == parsed,
        "to_body → parse changed the answer: {body:?}"
    );
}
