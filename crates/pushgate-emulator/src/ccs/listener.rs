//! The CCS port: direct TLS (no STARTTLS, no ALPN) with the instance certificate, then the
//! XMPP login checked against the senders registered through the control API.

use std::net::SocketAddr;
use std::sync::Arc;

use pushgate_xmpp::{PlainCredentials, ServerOptions, XmppStream, server_handshake};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::CcsStats;
use super::session::Session;
use crate::bind::{ListenerKind, bind};
use crate::listen::log_tls_failure;
use crate::state::EmulatorState;

/// Binds the CCS port and serves it in the background until `stop` turns true (or its
/// sender is dropped). Returns the bound address.
pub(crate) async fn start(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    state: EmulatorState,
    stop: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = bind(ListenerKind::Ccs, addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(accept_loop(listener, TlsAcceptor::from(tls), state, stop));
    tracing::info!(addr = %local, "emulator CCS (XMPP over TLS) listening");
    Ok(local)
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: EmulatorState,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve(
                    tcp,
                    peer,
                    acceptor.clone(),
                    state.clone(),
                    stop.clone(),
                ));
            }
            Err(e) => {
                tracing::debug!(error = %e, "CCS accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Whether the SASL PLAIN credentials name a registered sender and one of its API keys.
fn authenticate(state: &EmulatorState, creds: &PlainCredentials) -> bool {
    let Some(sender) = creds.sender_id() else {
        return false;
    };
    state
        .get()
        .senders
        .sender_for_key(&creds.password)
        .is_some_and(|s| &*s == sender)
}

/// Why a CCS connection did not get as far as a session.
enum LoginError {
    /// The TLS handshake failed.
    Tls(std::io::Error),
    /// The XMPP stream or SASL login failed.
    Xmpp(String),
}

async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    state: EmulatorState,
    stop: watch::Receiver<bool>,
) {
    let ccs = &state.get().ccs;
    let timeout = ccs.settings.login_timeout();
    let login = async {
        let tls = acceptor.accept(tcp).await.map_err(LoginError::Tls)?;
        let mut stream = XmppStream::new(tls);
        let session = server_handshake(&mut stream, &ServerOptions::default(), |creds| {
            authenticate(&state, creds)
        })
        .await
        .map_err(|e| LoginError::Xmpp(e.to_string()))?;
        Ok::<_, LoginError>((stream, session))
    };
    let (stream, session) = match tokio::time::timeout(timeout, login).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(LoginError::Tls(e))) => {
            CcsStats::add(&ccs.stats.login_failures);
            log_tls_failure(ListenerKind::Ccs, peer, &e);
            return;
        }
        Ok(Err(LoginError::Xmpp(e))) => {
            CcsStats::add(&ccs.stats.login_failures);
            tracing::warn!(%peer, error = %e, "CCS login refused");
            return;
        }
        Err(_) => {
            CcsStats::add(&ccs.stats.login_failures);
            tracing::debug!(%peer, "CCS login timed out");
            return;
        }
    };
    let Some(sender) = state.get().senders.get(&session.sender_id) else {
        return;
    };
    Session::run(state.clone(), stream, session, sender, stop).await;
}
