//! The plain-text (form) form of a legacy send: one token, `id=` / `Error=` lines back.

use std::collections::BTreeMap;

use super::limits::{MAX_DATA_BYTES, MAX_TTL_SECONDS, is_reserved_data_key};
use super::response::{ResponseError, preview};
use super::{ErrorCode, MessageOptions};
use crate::{Outcome, ValidationError};

/// A plain-text request: exactly one `registration_id`, string data (docs/protocols.md,
/// "Legacy HTTP: plain text").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlainTextRequest {
    /// The one recipient.
    pub registration_id: String,
    /// `collapse_key`.
    pub collapse_key: Option<String>,
    /// `data.<key>` parameters.
    pub data: BTreeMap<String, String>,
    /// `delay_while_idle=1`.
    pub delay_while_idle: bool,
    /// `time_to_live` in seconds.
    pub time_to_live: Option<u32>,
    /// `restricted_package_name`.
    pub restricted_package_name: Option<String>,
    /// `dry_run=1`.
    pub dry_run: bool,
}

impl PlainTextRequest {
    /// Encodes the form body (`application/x-www-form-urlencoded`).
    pub fn to_form(&self) -> String {
        let mut pairs: Vec<(String, String)> =
            vec![("registration_id".into(), self.registration_id.clone())];
        if let Some(k) = &self.collapse_key {
            pairs.push(("collapse_key".into(), k.clone()));
        }
        if let Some(ttl) = self.time_to_live {
            pairs.push(("time_to_live".into(), ttl.to_string()));
        }
        if self.delay_while_idle {
            pairs.push(("delay_while_idle".into(), "1".into()));
        }
        if let Some(p) = &self.restricted_package_name {
            pairs.push(("restricted_package_name".into(), p.clone()));
        }
        if self.dry_run {
            pairs.push(("dry_run".into(), "1".into()));
        }
        crate::form::push_data(&mut pairs, &self.data);
        crate::form::encode(&pairs)
    }

    /// Decodes a form body. Unknown parameters are ignored, as the service ignored them;
    /// a malformed `time_to_live` is an error naming the field.
    pub fn from_form(body: &str) -> Result<Self, ValidationError> {
        let pairs = crate::form::decode(body)?;
        let mut request = PlainTextRequest::default();
        for (key, value) in pairs {
            match key.as_str() {
                "registration_id" => request.registration_id = value,
                "collapse_key" => request.collapse_key = Some(value),
                "delay_while_idle" => request.delay_while_idle = is_true(&value),
                "dry_run" => request.dry_run = is_true(&value),
                "restricted_package_name" => request.restricted_package_name = Some(value),
                "time_to_live" => {
                    let ttl = value.trim().parse::<u32>().map_err(|_| {
                        ValidationError::new(
                            "time_to_live",
                            format!("{value:?} is not an integer between 0 and {MAX_TTL_SECONDS}"),
                        )
                    })?;
                    request.time_to_live = Some(ttl);
                }
                other => {
                    if let Some(data_key) = other.strip_prefix("data.") {
                        request.data.insert(data_key.to_string(), value);
                    }
                }
            }
        }
        Ok(request)
    }

    /// The options part, in the shape the JSON form uses.
    pub fn options(&self) -> MessageOptions {
        MessageOptions {
            collapse_key: self.collapse_key.clone(),
            delay_while_idle: self.delay_while_idle.then_some(true),
            time_to_live: self.time_to_live,
            restricted_package_name: self.restricted_package_name.clone(),
            dry_run: self.dry_run.then_some(true),
            ..MessageOptions::default()
        }
    }

    /// Checks the rules the service checks: a recipient, TTL range, reserved keys, and the
    /// 4096-byte data limit.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.registration_id.is_empty() {
            return Err(ValidationError::new("registration_id", "must not be empty"));
        }
        self.options().validate()?;
        if let Some(key) = self.data.keys().find(|k| is_reserved_data_key(k)) {
            return Err(ValidationError::new(
                format!("data.{key}"),
                "is a reserved key (from, message_type, google*, gcm*)",
            ));
        }
        let size: usize = self.data.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_DATA_BYTES {
            return Err(ValidationError::new(
                "data",
                format!(
                    "payload is {size} bytes, over the limit of {MAX_DATA_BYTES} bytes (keys plus values)"
                ),
            ));
        }
        Ok(())
    }
}

/// `1` and `true` mean true; anything else false (docs/protocols.md, "Legacy HTTP: plain text").
fn is_true(value: &str) -> bool {
    value == "1" || value.eq_ignore_ascii_case("true")
}

/// The plain-text answer: `id=` (and maybe `registration_id=`), or `Error=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainTextResponse {
    /// `id=<message id>` with an optional second line `registration_id=<canonical>`.
    Id {
        /// Provider message id.
        message_id: String,
        /// Canonical token, if the device has a newer one.
        canonical: Option<String>,
    },
    /// `Error=<code>`.
    Error(ErrorCode),
}

impl PlainTextResponse {
    /// Parses a 200 body.
    pub fn parse(body: &str) -> Result<Self, ResponseError> {
        let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines
            .next()
            .ok_or_else(|| ResponseError("empty plain-text response".into()))?;
        if let Some(code) = first.strip_prefix("Error=") {
            return Ok(PlainTextResponse::Error(ErrorCode::parse(code)));
        }
        let message_id = first
            .strip_prefix("id=")
            .ok_or_else(|| {
                ResponseError(format!(
                    "expected id= or Error=: {}",
                    preview(body.as_bytes())
                ))
            })?
            .to_string();
        let canonical = match lines.next() {
            None => None,
            Some(line) => Some(
                line.strip_prefix("registration_id=")
                    .ok_or_else(|| {
                        ResponseError(format!(
                            "second line must be registration_id=: {}",
                            preview(body.as_bytes())
                        ))
                    })?
                    .to_string(),
            ),
        };
        Ok(PlainTextResponse::Id {
            message_id,
            canonical,
        })
    }

    /// Renders the body as the service sent it.
    pub fn to_body(&self) -> String {
        match self {
            PlainTextResponse::Id {
                message_id,
                canonical: None,
            } => format!("id={message_id}\n"),
            PlainTextResponse::Id {
                message_id,
                canonical: Some(c),
            } => format!("id={message_id}\nregistration_id={c}\n"),
            PlainTextResponse::Error(code) => format!("Error={code}\n"),
        }
    }

    /// Maps the answer to the shared outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            PlainTextResponse::Id {
                message_id,
                canonical: None,
            } => Outcome::Delivered {
                message_id: message_id.clone(),
            },
            PlainTextResponse::Id {
                message_id,
                canonical: Some(c),
            } => Outcome::Rotated {
                message_id: message_id.clone(),
                new_token: c.clone(),
            },
            PlainTextResponse::Error(code) => code.outcome(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureScope;
    use proptest::prelude::*;

    #[test]
    fn documented_example_decodes() {
        let r = PlainTextRequest::from_form(
            "collapse_key=score_update&time_to_live=108&delay_while_idle=1&data.score=4x8&data.time=15:16.2342&registration_id=42",
        )
        .unwrap();
        assert_eq!(r.registration_id, "42");
        assert_eq!(r.collapse_key.as_deref(), Some("score_update"));
        assert_eq!(r.time_to_live, Some(108));
        assert!(r.delay_while_idle);
        assert_eq!(r.data["time"], "15:16.2342");
        assert_eq!(r.data["score"], "4x8");
    }

    #[test]
    fn plain_text_answers_say_what_they_concern() {
        let scope = |body: &str| PlainTextResponse::parse(body).unwrap().outcome().scope();
        assert_eq!(scope("id=1:23\n"), None, "a success concerns nothing");
        assert_eq!(scope("Error=NotRegistered\n"), Some(FailureScope::Token));
        assert_eq!(
            scope("Error=DeviceQuotaExceeded\n"),
            Some(FailureScope::Token)
        );
        assert_eq!(scope("Error=MessageTooBig\n"), Some(FailureScope::Message));
        // C2DM's sender-wide quota: every message of this sender is refused for a while.
        assert_eq!(scope("Error=QuotaExceeded\n"), Some(FailureScope::Channel));
    }

    #[test]
    fn bad_ttl_names_the_field() {
        let err = PlainTextRequest::from_form("registration_id=a&time_to_live=abc").unwrap_err();
        assert_eq!(err.field, "time_to_live");
    }

    #[test]
    fn responses_parse() {
        assert_eq!(
            PlainTextResponse::parse("id=1:2342\nregistration_id=32\n").unwrap(),
            PlainTextResponse::Id {
                message_id: "1:2342".into(),
                canonical: Some("32".into())
            }
        );
        assert_eq!(
            PlainTextResponse::parse("Error=InvalidRegistration").unwrap(),
            PlainTextResponse::Error(ErrorCode::InvalidRegistration)
        );
        assert!(PlainTextResponse::parse("").is_err());
        assert!(PlainTextResponse::parse("hello").is_err());
        assert!(PlainTextResponse::parse("id=1\nfoo=2").is_err());
    }

    fn arb_request() -> impl Strategy<Value = PlainTextRequest> {
        (
            "\\PC{1,40}",
            proptest::option::of("\\PC{0,20}"),
            proptest::collection::btree_map("[a-z0-9_.:-]{1,12}", "\\PC{0,30}", 0..6),
            any::<bool>(),
            proptest::option::of(0u32..=MAX_TTL_SECONDS),
            proptest::option::of("[a-z.]{1,20}"),
            any::<bool>(),
        )
            .prop_map(
                |(
                    registration_id,
                    collapse_key,
                    data,
                    delay_while_idle,
                    time_to_live,
                    pkg,
                    dry_run,
                )| {
                    PlainTextRequest {
                        registration_id,
                        collapse_key,
                        data,
                        delay_while_idle,
                        time_to_live,
                        restricted_package_name: pkg,
                        dry_run,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn form_round_trips(request in arb_request()) {
            let decoded = PlainTextRequest::from_form(&request.to_form()).unwrap();
            prop_assert_eq!(decoded, request);
        }

        #[test]
        fn response_round_trips(
            id in "[0-9A-Za-z:%]{1,30}",
            canonical in proptest::option::of("[0-9A-Za-z:_-]{1,40}"),
            code in "[A-Za-z]{1,30}",
        ) {
            let ok = PlainTextResponse::Id { message_id: id, canonical };
            prop_assert_eq!(PlainTextResponse::parse(&ok.to_body()).unwrap(), ok);
            let err = PlainTextResponse::Error(ErrorCode::parse(&code));
            prop_assert_eq!(PlainTextResponse::parse(&err.to_body()).unwrap(), err);
        }
    }
}
