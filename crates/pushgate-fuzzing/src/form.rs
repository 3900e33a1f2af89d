//! The URL-encoded form codec, through the three public form bodies it reads and writes.
//!
//! The codec itself (`pushgate_proto::form`) is crate-private; every form body the crate
//! accepts goes through one of these types, so they are its public surface.

use pushgate_proto::c2dm::{C2dmRequest, ClientLoginRequest};
use pushgate_proto::legacy::PlainTextRequest;

/// `from_form` of the legacy plain-text, C2DM and ClientLogin requests (UTF-8, lossily):
/// none panics; each accepted request encodes with `to_form` to a body that decodes back to
/// the same request; `validate` never panics.
pub fn form_codec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = PlainTextRequest::from_form(&text) {
        let _ = r.validate();
        let _ = r.options();
        let again = PlainTextRequest::from_form(&r.to_form()).expect("an encoded form decodes");
        assert_eq!(again, r, "plain-text request form round trip");
    }
    if let Ok(r) = C2dmRequest::from_form(&text) {
        let _ = r.validate();
        let _ = r.payload_bytes();
        let again = C2dmRequest::from_form(&r.to_form()).expect("an encoded form decodes");
        assert_eq!(again, r, "C2DM request form round trip");
    }
    if let Ok(r) = ClientLoginRequest::from_form(&text) {
        let again = ClientLoginRequest::from_form(&r.to_form()).expect("an encoded form decodes");
        assert!(
            again == r,
            "ClientLogin request form round trip: {r:?} vs {again:?}"
        );
    }
}
