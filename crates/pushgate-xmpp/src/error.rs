//! Error types of the codec, the connection wrapper and the handshakes.
//!
//! Each error says which XMPP stream-error condition it maps to, so that either end can tell
//! its peer why the stream is being closed (RFC 6120 §4.9.3) without a lookup table of its own.

use crate::stanza::{SaslFailure, StreamError, StreamErrorCondition};

/// Why the stream parser refused the bytes it was fed.
///
/// Once the parser has returned one of these it is poisoned: the stream cannot be resynchronised
/// and the caller should send [`XmppError::to_stream_error`] and close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmppError {
    /// The input is not well-formed XML (bad tag, mismatched end tag, bad reference, text at
    /// stream level, invalid UTF-8 or a forbidden control character).
    #[error("not well-formed XML: {0}")]
    NotWellFormed(String),
    /// The input uses XML features XMPP forbids: DTDs, comments, processing instructions or
    /// entities other than the five predefined ones (RFC 6120 §11.1).
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// An element or attribute uses a prefix that no `xmlns:` declaration binds.
    #[error("unbound namespace prefix `{0}`")]
    BadNamespacePrefix(String),
    /// The stream header is not `stream` in the `http://etherx.jabber.org/streams` namespace, or
    /// the stream was closed with a different name than it was opened with.
    #[error("invalid stream namespace: {0}")]
    InvalidNamespace(String),
    /// A stanza (or the stream header) grew past the configured byte limit before it ended.
    #[error("stanza exceeds {limit} bytes")]
    StanzaTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Elements were nested deeper than the configured limit.
    #[error("elements nested deeper than {limit}")]
    TooDeep {
        /// The configured limit (depth of the stanza element itself is 1).
        limit: usize,
    },
}

impl XmppError {
    /// The RFC 6120 stream-error condition to report to the peer for this error.
    pub fn condition(&self) -> StreamErrorCondition {
        match self {
            XmppError::NotWellFormed(_) => StreamErrorCondition::NotWellFormed,
            XmppError::RestrictedXml(_) => StreamErrorCondition::RestrictedXml,
            XmppError::BadNamespacePrefix(_) => StreamErrorCondition::BadNamespacePrefix,
            XmppError::InvalidNamespace(_) => StreamErrorCondition::InvalidNamespace,
            XmppError::StanzaTooLarge { .. } | XmppError::TooDeep { .. } => {
                StreamErrorCondition::PolicyViolation
            }
        }
    }

    /// The `<stream:error>` element to send before closing because of this error.
    pub fn to_stream_error(&self) -> StreamError {
        StreamError {
            condition: self.condition(),
            text: Some(self.to_string()),
        }
    }
}

/// Why a connection-level read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket (or TLS layer) failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes the parser refused.
    #[error(transparent)]
    Xmpp(#[from] XmppError),
    /// The peer closed the connection in the middle of a stanza or stream header.
    #[error("connection closed in the middle of a stanza ({buffered} bytes pending)")]
    Truncated {
        /// How many bytes of the unfinished unit were buffered.
        buffered: usize,
    },
}

/// Why a client or server handshake did not reach a bound session.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Reading or writing the connection failed, or the peer sent malformed XML.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// SASL authentication was refused (client: the server answered `<failure>`; server: the
    /// credentials were rejected or malformed, and `<failure>` was sent).
    #[error("authentication failed: {0}")]
    AuthFailed(SaslFailure),
    /// The peer sent a `<stream:error>`.
    #[error("peer sent stream error: {0}")]
    StreamError(StreamError),
    /// The peer closed the stream (`</stream:stream>` or end of connection) before the
    /// handshake finished.
    #[error("peer closed the stream during the handshake")]
    Closed,
    /// The peer sent something the handshake did not expect at this step.
    #[error("protocol violation during handshake: {0}")]
    Protocol(String),
}

impl From<XmppError> for HandshakeError {
    fn from(e: XmppError) -> Self {
        HandshakeError::Conn(ConnError::Xmpp(e))
    }
}

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> Self {
        HandshakeError::Conn(ConnError::Io(e))
    }
}

/// Why a SASL PLAIN payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The element text is not valid base64.
    #[error("SASL payload is not valid base64")]
    Base64,
    /// The decoded message is not `[authzid] NUL authcid NUL password` in UTF-8 (RFC 4616).
    #[error("SASL PLAIN message is malformed: {0}")]
    Malformed(&'static str),
}

impl SaslError {
    /// The SASL failure condition (RFC 6120 §6.5) to answer with.
    pub fn condition(&self) -> &'static str {
        match self {
            SaslError::Base64 => "incorrect-encoding",
            SaslError::Malformed(_) => "malformed-request",
        }
    }
}

/// Why TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM input held no usable certificate or key, or could not be parsed.
    #[error("bad PEM input: {0}")]
    Pem(String),
    /// rustls refused the configuration (bad key, unsupported algorithm, bad root).
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}
