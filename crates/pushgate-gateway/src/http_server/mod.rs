//! The API's listener: HTTP/1.1 and HTTP/2 (and TLS when configured) served with hyper, with
//! the limits an internet-facing server needs so that slow or idle clients cannot exhaust
//! it: a deadline for a request's head (which also closes idle keep-alive connections), a
//! cap on open connections below the process's open-file limit (the longest-idle connection
//! makes room for a new one), and a TLS handshake deadline. The deadline for a request's
//! body is the API's own (`JsonBody`).

pub mod connections;
pub mod tls;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use connections::{GuardedBody, Registry, Slot};

/// Most file descriptors kept for everything but API connections (database, provider
/// connections, the emulator in the sandbox, logs): a quarter of the limit, at most 256.
const RESERVED_FDS: u64 = 256;
/// How long open connections may finish their requests after the listener stops.
const DRAIN: Duration = Duration::from_secs(10);

/// The listener's limits.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Time a client has to send a request's head, and most time a keep-alive connection
    /// stays open between requests; also the TLS handshake's deadline.
    pub header_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: default_max_connections(),
        }
    }
}

/// The open-file limit less what the rest of the process needs (a quarter of the limit, at
/// most [`RESERVED_FDS`]), between 16 and 10,000.
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(65_536);
    let reserve = (soft / 4).min(RESERVED_FDS);
    usize::try_from(soft.saturating_sub(reserve).clamp(16, 10_000)).unwrap_or(10_000)
}

/// Serves `router` on `listener` until `stop`, then lets open requests finish (up to
/// [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    let registry = Registry::new(settings.max_connections);
    let graceful = Arc::new(GracefulShutdown::new());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = registry.admit() else {
            tracing::warn!(%peer, max = settings.max_connections, "connection refused: every connection is busy");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            graceful: graceful.clone(),
            slot,
        };
        let tls = tls.clone();
        let handshake_deadline = settings.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => connection.run(stream).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection.run(stream).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let graceful = Arc::try_unwrap(graceful).ok();
    if let Some(graceful) = graceful
        && tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    graceful: Arc<GracefulShutdown>,
    slot: Slot,
}

impl Connection {
    /// Serves requests on `io` until the client leaves, a deadline passes, the registry
    /// needs the place, or the server stops.
    async fn run<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.slot.activity.clone();
        let router = self.router;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let guard = activity.begin();
            let router = router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| GuardedBody::new(body, guard)))
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        let watched = self.graceful.watch(conn.into_owned());
        tokio::select! {
            result = watched => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            _ = self.slot.evicted.cancelled() => {
                tracing::debug!("idle connection closed to make room for a new one");
            }
        }
    }
}
