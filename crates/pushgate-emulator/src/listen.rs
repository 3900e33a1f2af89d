//! The HTTP and HTTPS listeners: the emulator's router over plain TCP (HTTP/1.1 and h2c) or
//! TLS (ALPN `h2` and `http/1.1`, for clients that only speak `https://`: Admin SDKs,
//! `token_uri` in a key file).
//!
//! Each connection is handshaken and served on its own task, so a slow handshake never
//! holds up `accept`. HTTPS requests are marked with [`Https`] so answers that name the
//! emulator's own URL use the right scheme. Every connection goes through [`H2Fix`]
//! (HTTP/2 `:scheme` fix and refusal logging), and every connection refused (TLS
//! handshake, HTTP/1 parse error) is logged with its reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::bind::ListenerKind;
use crate::h2fix::H2Fix;
use crate::oauth::Https;

/// Longest TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful shutdown waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` is set) until `stop` turns true, then lets
/// open connections finish (the caller bounds how long).
pub(crate) fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let kind = if acceptor.is_some() {
        ListenerKind::Https
    } else {
        ListenerKind::Http
    };
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                // Every sender dropped also means stop.
                _ = stop.wait_for(|s| *s) => break,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: do not spin.
                    tracing::debug!(listener = %kind, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Small request/response pairs: do not let Nagle hold them back.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let app = app.clone();
            let watcher = graceful.watcher();
            let Some(acceptor) = acceptor.clone() else {
                tokio::spawn(connection(H2Fix::new(tcp, peer), peer, kind, app, watcher));
                continue;
            };
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return log_tls_failure(kind, peer, &e),
                    Err(_) => {
                        tracing::debug!(listener = %kind, %peer, "TLS handshake timed out");
                        return;
                    }
                };
                connection(H2Fix::new(tls, peer), peer, kind, app, watcher).await;
            });
        }
        drop(listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(listener = %kind, "connections did not close in time; dropping them");
        }
    })
}

/// Serves one connection (HTTP/1.1 or HTTP/2, told apart by its first bytes).
async fn connection<IO>(
    io: H2Fix<IO>,
    peer: SocketAddr,
    kind: ListenerKind,
    app: Router,
    watcher: Watcher,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let https = kind == ListenerKind::Https;
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if https {
            req.extensions_mut().insert(Https);
        }
        app.clone().oneshot(req.map(Body::new))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        log_connection_error(kind, peer, &*e);
    }
}

/// A TLS handshake failed: warn with rustls' reason (an untrusted certificate, no common
/// protocol version, not TLS at all), unless the client merely went away.
pub(crate) fn log_tls_failure(kind: ListenerKind, peer: SocketAddr, e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    if matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted
    ) {
        tracing::debug!(listener = %kind, %peer, error = %e, "TLS handshake abandoned by the client");
    } else {
        tracing::warn!(listener = %kind, %peer, error = %e, "TLS handshake failed; connection refused");
    }
}

/// A connection ended with an error: a request hyper could not parse (it answered 400 or
/// 431) is a refusal and warned about; a client going away is not. HTTP/2 refusals are
/// logged by [`H2Fix`], which sees the frames.
fn log_connection_error(
    kind: ListenerKind,
    peer: SocketAddr,
    e: &(dyn std::error::Error + 'static),
) {
    let hyper = e.downcast_ref::<hyper::Error>();
    let refused =
        hyper.is_some_and(|h| h.is_parse() || h.is_parse_status() || h.is_parse_too_large());
    let reason = match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    };
    if refused {
        tracing::warn!(listener = %kind, %peer, error = %reason, "HTTP/1 request refused");
    } else {
        tracing::debug!(listener = %kind, %peer, error = %reason, "connection ended with an error");
    }
}
