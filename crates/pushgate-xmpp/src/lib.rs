//! XMPP stream codec for both ends of the GCM/FCM Cloud Connection Server (CCS).
//!
//! Used by the CCS client (pushgate-client) and the emulator's CCS server (pushgate-emulator),
//! so it holds protocol only — no windows, retries or reconnects:
//!
//! * [`parser`]: incremental, bounded stream parser (bytes in, [`StreamEvent`]s out);
//! * [`stanza`]: typed views (features, SASL PLAIN, IQ bind/session/ping, `<gcm>` messages,
//!   stanza and stream errors);
//! * [`writer`]: exact serialisers for everything either end sends;
//! * [`conn`]: the async read/write loop over any byte stream;
//! * [`handshake`]: the login, client side and server side;
//! * [`tls`]: rustls (aws-lc-rs) connector and acceptor from PEM. CCS is TLS from the first
//!   byte; there is no STARTTLS.
//!
//! The wire reference is docs/protocols.md, "CCS (XMPP)".

#![warn(missing_docs)]

pub mod conn;
pub mod element;
pub mod error;
pub mod handshake;
pub mod parser;
pub mod stanza;
pub mod tls;
pub mod writer;

#[doc(hidden)]
pub mod fuzzing;

pub use conn::{XmppReader, XmppStream, XmppWriter};
pub use element::Element;
pub use error::{ConnError, HandshakeError, SaslError, TlsError, XmppError};
pub use handshake::{
    CCS_DOMAIN, ClientLogin, ClientSession, ServerOptions, ServerSession, auto_reply,
    client_handshake, server_handshake,
};
pub use parser::{ParserConfig, StreamEvent, StreamHeader, StreamParser};
pub use stanza::{
    Features, GcmMessage, Iq, IqPayload, IqType, PlainCredentials, SaslAuth, SaslFailure, Stanza,
    StanzaError, StreamError, StreamErrorCondition,
};

/// Namespace URIs used on CCS streams; stanzas are matched by these, never by prefix.
pub mod ns {
    /// `stream:` elements (header, features, error).
    pub const STREAMS: &str = "http://etherx.jabber.org/streams";
    /// Default content namespace of client streams.
    pub const CLIENT: &str = "jabber:client";
    /// Default content namespace of server-to-server streams (accepted, never sent).
    pub const SERVER: &str = "jabber:server";
    /// SASL negotiation.
    pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    /// Resource binding.
    pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
    /// Legacy session establishment.
    pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
    /// XEP-0199 ping.
    pub const PING: &str = "urn:xmpp:ping";
    /// Stream-error conditions.
    pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    /// Stanza-error conditions.
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    /// The CCS payload element `<gcm>`.
    pub const GCM: &str = "google:mobile:data";
    /// The predefined `xml:` prefix.
    pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
}
