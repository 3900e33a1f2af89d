//! Whole-request failures of a legacy send.

use std::time::{Duration, SystemTime};

use pushgate_proto::legacy::ResponseError;
use pushgate_proto::{FailureScope, Outcome, RetryAfter, ValidationError};

/// Why a legacy send produced no per-recipient answer at all.
///
/// Per-recipient failures (`NotRegistered`, `Unavailable` in `results[]`, …) are not errors:
/// they are [`Outcome`]s inside a [`LegacyResult`](super::LegacyResult).
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// The message breaks a protocol rule; found client-side, nothing was sent.
    #[error("invalid message: {0}")]
    Invalid(#[from] ValidationError),
    /// HTTP 401: the API key was refused (the body is HTML and is not parsed).
    #[error("authentication failed (HTTP 401): the API key was refused")]
    Authentication,
    /// HTTP 400: the service could not read the request; `body` is its explanation.
    #[error("malformed request (HTTP 400): {body}")]
    MalformedRequest {
        /// The server's text, e.g. `JSON_PARSING_ERROR: Unexpected character (n) at position 0.`
        body: String,
    },
    /// HTTP 5xx: the service is down or overloaded; retry the whole request later.
    #[error("service unavailable (HTTP {status})")]
    Unavailable {
        /// The HTTP status (500..=599).
        status: u16,
        /// The server's `Retry-After`, if it sent a readable one.
        retry_after: Option<RetryAfter>,
    },
    /// Any other status (3xx, 404, 405, …).
    #[error("unexpected HTTP status {status}: {body}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// HTTP 200 with a body that is not a legacy answer (or does not match the request).
    #[error("invalid response: {0}")]
    InvalidResponse(#[from] ResponseError),
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
}

impl LegacyError {
    /// True when sending the same request again later may succeed (5xx, transport errors).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            LegacyError::Unavailable { .. } | LegacyError::Transport(_)
        )
    }

    /// The server's `Retry-After`, for [`LegacyError::Unavailable`].
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            LegacyError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What this failure means for each token of the request, in the shared vocabulary.
    ///
    /// Used when one chunk of a large multicast fails while others got answers.
    pub fn outcome(&self) -> Outcome {
        match self {
            LegacyError::Unavailable {
                status,
                retry_after,
            } => Outcome::RetryLater {
                reason: format!("HTTP {status}"),
                after: retry_after.map(|r| r.delay_from(SystemTime::now())),
                // The server answered, but for the request as a whole.
                scope: FailureScope::Message,
            },
            // No answer at all: the server cannot be reached, for any message.
            LegacyError::Transport(_) => Outcome::RetryLater {
                reason: "transport error".into(),
                after: None,
                scope: FailureScope::Channel,
            },
            LegacyError::Authentication => Outcome::AuthFailed {
                reason: "HTTP 401".into(),
            },
            LegacyError::MalformedRequest { .. } => Outcome::MessageRejected {
                reason: "HTTP 400".into(),
            },
            LegacyError::UnexpectedStatus { status, .. } => Outcome::MessageRejected {
                reason: format!("HTTP {status}"),
            },
            LegacyError::InvalidResponse(_) => Outcome::MessageRejected {
                reason: "invalid response".into(),
            },
            LegacyError::Invalid(e) => Outcome::MessageRejected {
                reason: format!("invalid {}", e.field),
            },
        }
    }

    /// The wait the server asked for, counted from now.
    pub(crate) fn retry_after_delay(&self) -> Option<Duration> {
        self.retry_after().map(|r| r.delay_from(SystemTime::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_and_transport_are_retriable() {
        let unavailable = LegacyError::Unavailable {
            status: 503,
            retry_after: Some(RetryAfter::Seconds(3)),
        };
        assert!(unavailable.is_retriable());
        assert_eq!(
            unavailable.retry_after_delay(),
            Some(Duration::from_secs(3))
        );
        assert!(unavailable.outcome().is_retriable());
        for e in [
            LegacyError::Authentication,
            LegacyError::MalformedRequest { body: "x".into() },
            LegacyError::UnexpectedStatus {
                status: 404,
                body: String::new(),
            },
            LegacyError::Invalid(ValidationError::new("data", "too big")),
        ] {
            assert!(!e.is_retriable(), "{e}");
            assert!(!e.outcome().is_retriable(), "{e}");
        }
    }

    #[test]
    fn malformed_request_shows_the_server_text() {
        let e = LegacyError::MalformedRequest {
            body: "JSON_PARSING_ERROR: Unexpected character (n) at position 0.".into(),
        };
        assert!(e.to_string().contains("JSON_PARSING_ERROR"));
    }
}
