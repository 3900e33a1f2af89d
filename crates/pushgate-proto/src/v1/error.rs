//! v1 error bodies (`google.rpc.Status`) and their mapping to the shared outcome.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{FailureScope, Outcome};

/// `@type` of the FCM detail (the pre-2018 name ended in `FcmErrorCode`).
pub const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// `@type` of a field-violation detail.
pub const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// `@type` of an auth-failure detail.
pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// What the service says about a token that is not an FCM token at all.
pub const INVALID_TOKEN_MESSAGE: &str =
    "The registration token is not a valid FCM registration token";

/// `{"error": Status}`: every non-200 v1 answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The status.
    pub error: Status,
}

/// `google.rpc.Status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// HTTP status code.
    pub code: u16,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Canonical status name (`NOT_FOUND`, ...).
    #[serde(default)]
    pub status: String,
    /// Typed details (`FcmError`, `BadRequest`, `ErrorInfo`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Value>,
}

/// `FcmError.errorCode` values (docs/protocols.md, "FCM v1: errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FcmErrorCode {
    /// No more information.
    UnspecifiedError,
    /// Bad request (including a malformed token).
    InvalidArgument,
    /// Token no longer valid.
    Unregistered,
    /// Token belongs to another sender.
    SenderIdMismatch,
    /// Rate limit exceeded.
    QuotaExceeded,
    /// Overloaded.
    Unavailable,
    /// Internal error.
    Internal,
    /// APNs or Web Push credentials invalid.
    ThirdPartyAuthError,
    /// Deprecated alias of `ThirdPartyAuthError`.
    ApnsAuthError,
}

impl FcmErrorCode {
    /// Every code, for exhaustive tests and the emulator.
    pub const ALL: [FcmErrorCode; 9] = [
        FcmErrorCode::UnspecifiedError,
        FcmErrorCode::InvalidArgument,
        FcmErrorCode::Unregistered,
        FcmErrorCode::SenderIdMismatch,
        FcmErrorCode::QuotaExceeded,
        FcmErrorCode::Unavailable,
        FcmErrorCode::Internal,
        FcmErrorCode::ThirdPartyAuthError,
        FcmErrorCode::ApnsAuthError,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FcmErrorCode::UnspecifiedError => "UNSPECIFIED_ERROR",
            FcmErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            FcmErrorCode::Unregistered => "UNREGISTERED",
            FcmErrorCode::SenderIdMismatch => "SENDER_ID_MISMATCH",
            FcmErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            FcmErrorCode::Unavailable => "UNAVAILABLE",
            FcmErrorCode::Internal => "INTERNAL",
            FcmErrorCode::ThirdPartyAuthError => "THIRD_PARTY_AUTH_ERROR",
            FcmErrorCode::ApnsAuthError => "APNS_AUTH_ERROR",
        }
    }

    /// Reads a wire name.
    pub fn parse(name: &str) -> Option<FcmErrorCode> {
        FcmErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The HTTP status and canonical status name the service answers with.
    pub fn http_status(self) -> (u16, &'static str) {
        match self {
            FcmErrorCode::UnspecifiedError => (500, "UNKNOWN"),
            FcmErrorCode::InvalidArgument => (400, "INVALID_ARGUMENT"),
            FcmErrorCode::Unregistered => (404, "NOT_FOUND"),
            FcmErrorCode::SenderIdMismatch => (403, "PERMISSION_DENIED"),
            FcmErrorCode::QuotaExceeded => (429, "RESOURCE_EXHAUSTED"),
            FcmErrorCode::Unavailable => (503, "UNAVAILABLE"),
            FcmErrorCode::Internal => (500, "INTERNAL"),
            FcmErrorCode::ThirdPartyAuthError | FcmErrorCode::ApnsAuthError => {
                (401, "UNAUTHENTICATED")
            }
        }
    }
}

impl ErrorBody {
    /// Builds a body with an `FcmError` detail, as the service sends it.
    pub fn fcm(code: FcmErrorCode, message: impl Into<String>) -> ErrorBody {
        let (http, status) = code.http_status();
        ErrorBody {
            error: Status {
                code: http,
                message: message.into(),
                status: status.to_string(),
                details: vec![json!({"@type": FCM_ERROR_TYPE, "errorCode": code.as_str()})],
            },
        }
    }

    /// The `errorCode` of the first FcmError detail (old `FcmErrorCode` type name accepted).
    pub fn fcm_error_code(&self) -> Option<&str> {
        self.error.details.iter().find_map(|d| {
            let kind = d.get("@type")?.as_str()?;
            if kind.ends_with("google.firebase.fcm.v1.FcmError")
                || kind.ends_with("google.firebase.fcm.v1.FcmErrorCode")
            {
                d.get("errorCode")?.as_str()
            } else {
                None
            }
        })
    }

    /// The `reason` of an ErrorInfo detail (`ACCESS_TOKEN_EXPIRED`, `CREDENTIALS_MISSING`).
    pub fn error_info_reason(&self) -> Option<&str> {
        self.error.details.iter().find_map(|d| {
            (d.get("@type")?.as_str()? == ERROR_INFO_TYPE)
                .then(|| d.get("reason")?.as_str())
                .flatten()
        })
    }

    /// True when the error says the token itself is not a valid FCM token: a dead token,
    /// not a bad message.
    pub fn is_invalid_token(&self) -> bool {
        if self.error.message.contains(INVALID_TOKEN_MESSAGE) {
            return true;
        }
        self.error.details.iter().any(|d| {
            d.get("@type").and_then(Value::as_str) == Some(BAD_REQUEST_TYPE)
                && d.get("fieldViolations")
                    .and_then(Value::as_array)
                    .is_some_and(|vs| {
                        vs.iter().any(|v| {
                            v.get("field").and_then(Value::as_str) == Some("message.token")
                        })
                    })
        })
    }

    /// Maps the error to the shared outcome, given the HTTP status it came with and the
    /// `Retry-After` wait, if any.
    pub fn outcome(&self, http_status: u16, retry_after: Option<Duration>) -> Outcome {
        if let Some(code) = self.fcm_error_code() {
            return classify_fcm_code(code, self.is_invalid_token(), retry_after);
        }
        let reason = if self.error.status.is_empty() {
            http_status.to_string()
        } else {
            self.error.status.clone()
        };
        classify_status(http_status, reason, self.is_invalid_token(), retry_after)
    }
}

/// Every v1 request carries one token, so a temporary failure of one request concerns that
/// token only; a quota (`QUOTA_EXCEEDED`, a bare 429) is the project's, so the channel's.
fn classify_fcm_code(code: &str, invalid_token: bool, after: Option<Duration>) -> Outcome {
    let reason = code.to_string();
    match FcmErrorCode::parse(code) {
        Some(FcmErrorCode::Unregistered | FcmErrorCode::SenderIdMismatch) => {
            Outcome::TokenDead { reason }
        }
        Some(FcmErrorCode::InvalidArgument) if invalid_token => Outcome::TokenDead { reason },
        Some(FcmErrorCode::QuotaExceeded) => Outcome::Throttled {
            reason,
            after,
            scope: FailureScope::Channel,
        },
        Some(FcmErrorCode::Unavailable | FcmErrorCode::Internal) => Outcome::RetryLater {
            reason,
            after,
            scope: FailureScope::Token,
        },
        Some(FcmErrorCode::ThirdPartyAuthError | FcmErrorCode::ApnsAuthError) => {
            Outcome::AuthFailed { reason }
        }
        Some(FcmErrorCode::InvalidArgument | FcmErrorCode::UnspecifiedError) | None => {
            Outcome::MessageRejected { reason }
        }
    }
}

/// Maps an answer without an FcmError detail by its HTTP status (the Admin SDKs' fallback),
/// except that a bare 404 is not taken for a dead token: without an `UNREGISTERED` detail it
/// means a wrong project or URL, and a gateway must not invalidate a device for it.
pub(crate) fn classify_status(
    http_status: u16,
    reason: String,
    invalid_token: bool,
    after: Option<Duration>,
) -> Outcome {
    match http_status {
        400 if invalid_token => Outcome::TokenDead { reason },
        401 | 403 => Outcome::AuthFailed { reason },
        404 => Outcome::AuthFailed {
            reason: format!("{reason} (project or endpoint not found)"),
        },
        429 => Outcome::Throttled {
            reason,
            after,
            scope: FailureScope::Channel,
        },
        500..=599 => Outcome::RetryLater {
            reason,
            after,
            scope: FailureScope::Token,
        },
        _ => Outcome::MessageRejected { reason },
    }
}

impl ErrorBody {
    /// Maps any non-200 answer, parsing the body when it is a Status and falling back to
    /// the HTTP status when it is not (proxies answer HTML).
    pub fn outcome_of_response(http_status: u16, body: &[u8], after: Option<Duration>) -> Outcome {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => parsed.outcome(http_status, after),
            Err(_) => classify_status(http_status, http_status.to_string(), false, after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutcomeKind;

    #[test]
    fn only_errors_that_name_the_token_concern_the_token() {
        let scope = |status: u16, body: &[u8]| {
            ErrorBody::outcome_of_response(status, body, None)
                .scope()
                .unwrap()
        };
        let unregistered = br#"{"error":{"code":404,"message":"x","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmErrorCode","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(scope(404, unregistered), FailureScope::Token);
        let mismatch = br#"{"error":{"code":403,"message":"x","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}"#;
        assert_eq!(scope(403, mismatch), FailureScope::Token);
        let bad_token = br#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(scope(400, bad_token), FailureScope::Token);
        // A 404 that names no token: a wrong project or URL, which every token would get.
        let bare = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#;
        assert_eq!(scope(404, bare), FailureScope::Channel);
        assert_eq!(scope(404, b"<html>not found</html>"), FailureScope::Channel);
        let bare = ErrorBody::outcome_of_response(404, bare, None);
        assert_eq!(bare.kind(), OutcomeKind::AuthFailed, "never a dead token");
        assert!(bare.reason().unwrap().starts_with("NOT_FOUND"), "{bare:?}");
    }

    #[test]
    fn quotas_are_the_projects_and_server_errors_the_requests() {
        let scope = |code: FcmErrorCode| {
            let (status, _) = code.http_status();
            ErrorBody::fcm(code, "x").outcome(status, None).scope()
        };
        // One request per token: a failed request concerns its token only.
        assert_eq!(scope(FcmErrorCode::Unavailable), Some(FailureScope::Token));
        assert_eq!(scope(FcmErrorCode::Internal), Some(FailureScope::Token));
        assert_eq!(
            scope(FcmErrorCode::QuotaExceeded),
            Some(FailureScope::Channel)
        );
        assert_eq!(
            scope(FcmErrorCode::ThirdPartyAuthError),
            Some(FailureScope::Channel)
        );
        assert_eq!(
            scope(FcmErrorCode::InvalidArgument),
            Some(FailureScope::Message)
        );
        let status_only = |status| {
            ErrorBody::outcome_of_response(status, b"", None)
                .scope()
                .unwrap()
        };
        assert_eq!(status_only(429), FailureScope::Channel);
        assert_eq!(status_only(503), FailureScope::Token);
        assert_eq!(status_only(401), FailureScope::Channel);
        assert_eq!(status_only(400), FailureScope::Message);
    }

    #[test]
    fn every_fcm_code_maps_as_protocols_md_says() {
        use OutcomeKind::*;
        let expected = [
            ("UNSPECIFIED_ERROR", MessageRejected),
            ("INVALID_ARGUMENT", MessageRejected),
            ("UNREGISTERED", TokenDead),
            ("SENDER_ID_MISMATCH", TokenDead),
            ("QUOTA_EXCEEDED", Throttled),
            ("UNAVAILABLE", RetryLater),
            ("INTERNAL", RetryLater),
            ("THIRD_PARTY_AUTH_ERROR", AuthFailed),
            ("APNS_AUTH_ERROR", AuthFailed),
        ];
        assert_eq!(expected.len(), FcmErrorCode::ALL.len());
        for (name, kind) in expected {
            let code = FcmErrorCode::parse(name).unwrap();
            let body = ErrorBody::fcm(code, "x");
            let (status, _) = code.http_status();
            assert_eq!(body.outcome(status, None).kind(), kind, "{name}");
            // Round trip through JSON, as a client would see it.
            let text = serde_json::to_vec(&body).unwrap();
            assert_eq!(
                ErrorBody::outcome_of_response(status, &text, None).kind(),
                kind
            );
        }
    }

    #[test]
    fn observed_unregistered_body() {
        let body = br#"{ "error": { "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [ { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                           "errorCode": "UNREGISTERED" } ] } }"#;
        assert_eq!(
            ErrorBody::outcome_of_response(404, body, None),
            Outcome::TokenDead {
                reason: "UNREGISTERED".into()
            }
        );
    }

    #[test]
    fn invalid_token_is_a_dead_token_not_a_bad_message() {
        let body = ErrorBody::fcm(FcmErrorCode::InvalidArgument, INVALID_TOKEN_MESSAGE);
        assert_eq!(body.outcome(400, None).kind(), OutcomeKind::TokenDead);
        let other = ErrorBody::fcm(FcmErrorCode::InvalidArgument, "Message is too big");
        assert_eq!(
            other.outcome(400, None).kind(),
            OutcomeKind::MessageRejected
        );
    }

    #[test]
    fn old_detail_type_name_still_read() {
        let body = br#"{"error":{"code":404,"message":"x","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmErrorCode","errorCode":"UNREGISTERED"}]}}"#;
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap();
        assert_eq!(parsed.fcm_error_code(), Some("UNREGISTERED"));
    }

    #[test]
    fn status_fallbacks_without_detail() {
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            ErrorBody::outcome_of_response(503, b"<html>busy</html>", after),
            Outcome::RetryLater {
                reason: "503".into(),
                after,
                scope: FailureScope::Token,
            }
        );
        assert_eq!(
            ErrorBody::outcome_of_response(429, b"", after).kind(),
            OutcomeKind::Throttled
        );
        assert_eq!(
            ErrorBody::outcome_of_response(401, b"", None).kind(),
            OutcomeKind::AuthFailed
        );
    }

    #[test]
    fn error_info_reason_read() {
        let body = br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_EXPIRED","domain":"googleapis.com"}]}}"#;
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap();
        assert_eq!(parsed.error_info_reason(), Some("ACCESS_TOKEN_EXPIRED"));
    }
}
