//! Failures of the CCS client that are not a message's outcome.

use pushgate_xmpp::{HandshakeError, TlsError};

/// Why the CCS client could not connect, or a send produced no outcome.
///
/// Nacks are not errors: they are [`Outcome`](pushgate_proto::Outcome)s.
#[derive(Debug, thiserror::Error)]
pub enum CcsError {
    /// The configuration cannot work (no CA, bad host name, zero window, …).
    #[error("invalid CCS configuration: {0}")]
    Config(String),
    /// The CA bundle could not be read.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] TlsError),
    /// TCP connect or the TLS handshake failed.
    #[error("cannot connect to CCS: {0}")]
    Connect(#[source] std::io::Error),
    /// The XMPP login failed; [`CcsError::is_auth_failure`] tells a refused key apart.
    #[error("CCS login failed: {0}")]
    Login(#[from] HandshakeError),
    /// Connecting and logging in took longer than `connect_timeout`.
    #[error("CCS login timed out")]
    Timeout,
    /// The client was closed (or dropped) before the message got an answer.
    #[error("the CCS client is closed")]
    Closed,
}

impl CcsError {
    /// True when CCS refused the sender id / API key (SASL failure).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, CcsError::Login(HandshakeError::AuthFailed(_)))
    }
}
