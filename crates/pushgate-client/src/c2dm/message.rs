//! A C2DM message: one recipient, a collapse key and `data.<key>` parameters.

use pushgate_proto::ValidationError;
use pushgate_proto::c2dm::C2dmRequest;

/// One C2DM message (the `/c2dm/send` form), built fluently.
///
/// Exists as a builder over [`C2dmRequest`] so callers never hand-assemble form fields; the
/// rules (collapse key required, 1024-byte payload) are the proto crate's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2dmMessage {
    request: C2dmRequest,
}

impl C2dmMessage {
    /// A message to `registration_id` with `collapse_key` (required by C2DM).
    pub fn new(registration_id: impl Into<String>, collapse_key: impl Into<String>) -> Self {
        C2dmMessage {
            request: C2dmRequest {
                registration_id: registration_id.into(),
                collapse_key: Some(collapse_key.into()),
                ..C2dmRequest::default()
            },
        }
    }

    /// Wraps a request as is (it may break the rules; [`C2dmMessage::validate`] says).
    pub fn from_request(request: C2dmRequest) -> Self {
        C2dmMessage { request }
    }

    /// Adds a `data.<key>` parameter.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.data.insert(key.into(), value.into());
        self
    }

    /// Sets `delay_while_idle`.
    pub fn delay_while_idle(mut self, on: bool) -> Self {
        self.request.delay_while_idle = on;
        self
    }

    /// The recipient.
    pub fn registration_id(&self) -> &str {
        &self.request.registration_id
    }

    /// The wire request.
    pub fn request(&self) -> &C2dmRequest {
        &self.request
    }

    /// The service's rules, checked client-side.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.request.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_come_from_the_protocol() {
        let ok = C2dmMessage::new("reg", "ck").data("k", "x".repeat(1023));
        ok.validate().unwrap();
        let big = C2dmMessage::new("reg", "ck").data("k", "x".repeat(1024));
        assert_eq!(big.validate().unwrap_err().field, "data");
        let no_key = C2dmMessage::from_request(C2dmRequest {
            registration_id: "reg".into(),
            ..C2dmRequest::default()
        });
        assert_eq!(no_key.validate().unwrap_err().field, "collapse_key");
        let form = C2dmMessage::new("reg", "ck")
            .data("a", "b")
            .delay_while_idle(true)
            .request()
            .to_form();
        assert!(
            form.contains("collapse_key=ck") && form.contains("data.a=b"),
            "{form}"
        );
        assert!(form.contains("delay_while_idle"), "{form}");
    }
}
