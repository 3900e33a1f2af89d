//! Why a channel could not be built from its configuration.

use pushgate_client::http::BuildError;
use pushgate_client::oauth::OAuthError;
use pushgate_client::v1::V1BuildError;

/// Why a channel could not be built, with the channel's name.
///
/// Exists so that start-up can tell the operator which channel to fix and what is wrong with
/// it. Never carries a secret: the client errors wrapped here name fields, URLs and error
/// positions, never a key's content.
#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {problem}")]
pub struct ChannelError {
    /// The channel's name.
    pub channel: String,
    /// What is wrong.
    #[source]
    pub problem: BuildProblem,
}

/// What is wrong with a channel's configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildProblem {
    /// The settings are another protocol's (a bug in the caller, not in the configuration).
    #[error("not a {expected} channel")]
    WrongProtocol {
        /// The protocol the constructor builds.
        expected: &'static str,
    },
    /// The FCM v1 credential is not a usable service-account key file.
    #[error("bad service-account file: {0}")]
    ServiceAccount(#[source] OAuthError),
    /// The HTTP settings cannot be used: a bad endpoint or proxy URL, an unusable CA
    /// bundle (TLS setup), or an API key that cannot go in a header.
    #[error("bad HTTP settings: {0}")]
    Http(#[source] BuildError),
    /// The FCM v1 sender refused the rest of its settings (project id, token source).
    #[error("cannot set up the FCM v1 sender: {0}")]
    V1(#[source] V1BuildError),
}
