//! Binding the emulator's listeners, with errors that say which listener and address failed.
//!
//! A bare "Address already in use" does not say whether the HTTP, HTTPS or CCS port was
//! taken; callers used to guess (and named the HTTP address for a taken CCS port).

use std::fmt;
use std::net::SocketAddr;

use tokio::net::TcpListener;

/// One of the emulator's listeners, as named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP (HTTP/1.1 and h2c): the legacy endpoints and the control API.
    Http,
    /// HTTPS (TLS, ALPN h2 and http/1.1): the same routes for `https://`-only clients.
    Https,
    /// CCS: XMPP over direct TLS.
    Ccs,
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::Http => "HTTP",
            ListenerKind::Https => "HTTPS",
            ListenerKind::Ccs => "CCS (XMPP)",
        })
    }
}

/// A listener could not be bound; carried inside the `std::io::Error` that
/// [`crate::Emulator::start`] returns (same `kind()`), so callers can print it as is or
/// downcast it to find the listener. The operating system's reason is its `source`.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind the emulator's {listener} listener on {addr}")]
pub struct BindError {
    /// Which listener failed.
    pub listener: ListenerKind,
    /// The address it was asked to bind.
    pub addr: SocketAddr,
    /// What the operating system said.
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` for `listener`; a failure names both.
pub(crate) async fn bind(listener: ListenerKind, addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| {
        std::io::Error::new(
            source.kind(),
            BindError {
                listener,
                addr,
                source,
            },
        )
    })
}
