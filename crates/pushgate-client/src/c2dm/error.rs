//! Failures of a C2DM login or send that produced no per-message answer.

use pushgate_proto::{FailureScope, Outcome, ValidationError};

use crate::http::BuildError;

/// Why a C2DM call ended without an [`Outcome`].
///
/// Per-message answers (`Error=QuotaExceeded`, 503, …) are outcomes, not errors.
#[derive(Debug, thiserror::Error)]
pub enum C2dmError {
    /// The message breaks a C2DM rule; found client-side, nothing was sent.
    #[error("invalid message: {0}")]
    Invalid(#[from] ValidationError),
    /// ClientLogin refused the credentials (HTTP 403 `Error=<code>`).
    #[error("ClientLogin refused: {code}")]
    Login {
        /// `BadAuthentication`, `CaptchaRequired`, `NotVerified`, …
        code: String,
        /// `CaptchaUrl=` for `CaptchaRequired`.
        captcha_url: Option<String>,
    },
    /// The token was refused (HTTP 401) and could not be renewed (no credentials, or the
    /// renewed token was refused too).
    #[error("authentication failed (HTTP {status}): the C2DM auth token was refused")]
    AuthFailed {
        /// The HTTP status.
        status: u16,
    },
    /// An answer the protocol does not have (status or body).
    #[error("unexpected answer (HTTP {status}): {body}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A URL or credential could not be used.
    #[error("configuration: {0}")]
    Config(#[from] BuildError),
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
}

impl C2dmError {
    /// True when the same call may succeed later (transport errors only).
    pub fn is_retriable(&self) -> bool {
        matches!(self, C2dmError::Transport(_))
    }

    /// What this failure means for the message, in the shared vocabulary.
    pub fn outcome(&self) -> Outcome {
        match self {
            C2dmError::Invalid(e) => Outcome::MessageRejected {
                reason: format!("invalid {}", e.field),
            },
            C2dmError::Login { code, .. } => Outcome::AuthFailed {
                reason: code.clone(),
            },
            C2dmError::AuthFailed { status } => Outcome::AuthFailed {
                reason: format!("HTTP {status}"),
            },
            C2dmError::UnexpectedResponse { status, .. } => Outcome::MessageRejected {
                reason: format!("HTTP {status}"),
            },
            C2dmError::Config(_) => Outcome::AuthFailed {
                reason: "configuration".into(),
            },
            // No answer at all: the server cannot be reached, for any message.
            C2dmError::Transport(_) => Outcome::RetryLater {
                reason: "transport error".into(),
                after: None,
                scope: FailureScope::Channel,
            },
        }
    }
}
