//! Why an access token could not be had.

use crate::http::BuildError;

/// Why the OAuth2 token source could not produce an access token.
///
/// Exists so that callers can tell a broken key file (fix the configuration) from a refused
/// grant (fix the service account) from a token endpoint that is down (wait). No variant ever
/// carries the private key, the signed assertion or an access token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The key file could not be read or is not JSON.
    #[error("service-account key file {origin}: {reason}")]
    KeyFile {
        /// Where the key came from: a path, or `<inline JSON>`.
        origin: String,
        /// What went wrong (I/O error kind, or the JSON error's position; never the content).
        reason: String,
    },
    /// A field the flow needs is missing, empty or not a string.
    #[error("service-account key {origin}: required field `{field}` is missing or empty")]
    MissingField {
        /// Where the key came from.
        origin: String,
        /// The field's name.
        field: &'static str,
    },
    /// `type` is not `service_account` (e.g. an `authorized_user` file).
    #[error("service-account key {origin}: `type` is {found:?}, expected \"service_account\"")]
    WrongKeyType {
        /// Where the key came from.
        origin: String,
        /// The `type` it has.
        found: String,
    },
    /// The private key could not be loaded or used to sign the assertion.
    #[error("cannot sign the JWT assertion: {0}")]
    Signing(String),
    /// The HTTP client for the token endpoint could not be built.
    #[error("cannot build the token endpoint's HTTP client: {0}")]
    Client(#[from] BuildError),
    /// The token endpoint could not be reached (after retries).
    #[error("token endpoint unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// The token endpoint refused the assertion: `invalid_grant` with its explanation.
    #[error("token endpoint refused the grant (invalid_grant): {description}")]
    InvalidGrant {
        /// The server's `error_description` (e.g. `Invalid JWT: Token must be a short-lived token …`).
        description: String,
    },
    /// The token endpoint answered with another error status (after retries for 5xx, 408, 429).
    #[error("token endpoint answered HTTP {status}: {error}{}", describe(.description))]
    Http {
        /// HTTP status.
        status: u16,
        /// OAuth `error` code when the body had one, else a placeholder.
        error: String,
        /// OAuth `error_description`, if any.
        description: Option<String>,
    },
    /// This caller waited while another one refreshed the token, and that refresh failed
    /// (its error's text): callers are not sent one after another at a failing endpoint.
    #[error("token refresh failed: {0}")]
    SharedFailure(String),
    /// A 200 answer without a usable token.
    #[error("token endpoint answer unusable: {0}")]
    InvalidResponse(String),
}

fn describe(description: &Option<String>) -> String {
    match description {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

impl OAuthError {
    /// True when asking again later may succeed (endpoint down or overloaded); false when the
    /// configuration or the account must be fixed first.
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Transport(_) => true,
            OAuthError::Http { status, .. } => is_retriable_status(*status),
            _ => false,
        }
    }
}

/// Statuses google-auth retries the token call on (docs/protocols.md,
/// "FCM v1: OAuth service-account flow"): 5xx, 408 and 429.
pub(crate) fn is_retriable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// OAuth `error` strings google-auth retries on.
pub(crate) fn is_retriable_error_code(error: &str) -> bool {
    matches!(
        error,
        "internal_failure" | "server_error" | "temporarily_unavailable"
    )
}
