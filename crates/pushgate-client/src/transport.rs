//! A lean HTTP transport on hyper's pooled client, for the senders whose per-request CPU
//! matters (FCM v1: one request per message).
//!
//! reqwest's layers cost more than the request itself at these rates: its redirect layer
//! re-parses the URL of every request (even with redirects off) and its retry layer clones
//! the headers. Here the caller's [`http::Request`] goes straight to
//! `hyper_util::client::legacy::Client`, whose URI the caller parsed once.
//!
//! Everything [`HttpConfig`] offers is kept: request, connect and pool-idle timeouts,
//! proxies (`http://` and `https://` through `CONNECT`, `socks5://` / `socks5h://`), extra
//! CA certificates (added to the platform's roots, or alone), HTTP/2 by ALPN on `https://`
//! and by prior knowledge (h2c) on `http://`, and the `User-Agent`. TLS is rustls with the
//! aws-lc-rs provider, the one crypto provider of the project.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderValue, USER_AGENT};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tower_service::Service;
use tracing::debug;

use crate::http::{BuildError, HttpConfig, redact_userinfo};

type BoxError = Box<dyn StdError + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;
/// A TCP stream, TLS-wrapped when it leads to an `https://` proxy.
type ProxyStream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// One HTTP client built from an [`HttpConfig`], for requests to one origin.
///
/// HTTP/2 (prior knowledge, or `https://` where the server picks `h2` by ALPN) runs on one
/// connection driven by the `h2` crate directly: a request is a `HEADERS` and a `DATA`
/// frame queued from the caller's task, with no task, channel or pool checkout per request
/// (hyper's client spends about 10,000 instructions per request on those). Everything else
/// (HTTP/1.1 on `http://`, or a server that answers ALPN with `http/1.1`) goes through
/// hyper's pooled client with the same connector.
///
/// Cheap to clone: clones share the connection and the pool.
#[derive(Clone)]
pub(crate) struct Transport {
    pooled: Client<Connector, Full<Bytes>>,
    direct: Option<Arc<H2Direct>>,
    timeout: Duration,
    user_agent: HeaderValue,
}

/// An answer read to its end.
pub(crate) struct Answer {
    /// The response head (status, version, headers).
    pub(crate) head: http::response::Parts,
    /// The whole body.
    pub(crate) body: Bytes,
}

/// Why no answer arrived. Its `Display` is a few words and the innermost cause; it never
/// holds a header value or a proxy password (neither is part of any error here).
#[derive(Debug)]
pub(crate) enum TransportError {
    /// The whole request (or the connection set-up) took longer than allowed.
    TimedOut,
    /// No connection could be made (DNS, TCP, proxy, TLS).
    Connect(String),
    /// The connection broke before or while the answer was read.
    Request(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::TimedOut => f.write_str("timed out"),
            TransportError::Connect(cause) => write!(f, "connect failed ({cause})"),
            TransportError::Request(cause) => write!(f, "request failed ({cause})"),
        }
    }
}

impl TransportError {
    /// The same failure, for another request that waited on it.
    fn again(&self) -> TransportError {
        match self {
            TransportError::TimedOut => TransportError::TimedOut,
            TransportError::Connect(cause) => TransportError::Connect(cause.clone()),
            TransportError::Request(cause) => TransportError::Request(cause.clone()),
        }
    }
}

impl Transport {
    /// `count` transports (each its own connection) for requests to `origin`, sharing one
    /// TLS configuration: the platform's roots are loaded once.
    pub(crate) fn pool(
        config: &HttpConfig,
        origin: &Uri,
        count: usize,
    ) -> Result<Vec<Self>, BuildError> {
        let tls = tls_config(config)?;
        let route = Route::new(config, &tls)?;
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| BuildError::Transport("the user agent is not a valid header".into()))?;
        let origin = origin_of(origin)?;
        Ok((0..count.max(1))
            .map(|_| Self::with_parts(config, &tls, route.clone(), user_agent.clone(), &origin))
            .collect())
    }

    fn with_parts(
        config: &HttpConfig,
        tls: &ClientConfig,
        route: Route,
        user_agent: HeaderValue,
        origin: &Uri,
    ) -> Self {
        let tls_connector = HttpsConnectorBuilder::new().with_tls_config(tls.clone());
        let tls_connector = if config.http2_prior_knowledge {
            tls_connector.https_or_http().enable_http2()
        } else {
            tls_connector.https_or_http().enable_all_versions()
        }
        .wrap_connector(route);
        let connector = Connector {
            inner: tls_connector,
            timeout: config.connect_timeout,
        };
        let https = origin.scheme() == Some(&Scheme::HTTPS);
        let direct = (config.http2_prior_knowledge || https).then(|| {
            Arc::new(H2Direct {
                connector: connector.clone(),
                origin: origin.clone(),
                prior_knowledge: config.http2_prior_knowledge,
                connect_timeout: config.connect_timeout,
                idle_timeout: config.pool_idle_timeout,
                current: Arc::default(),
                connecting: tokio::sync::Mutex::new(None),
                attempts: AtomicU64::new(0),
                fallback: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
            })
        });
        let pooled = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(config.http2_prior_knowledge)
            .build(connector);
        Self {
            pooled,
            direct,
            timeout: config.timeout,
            user_agent,
        }
    }

    /// Sends `request` with `body` (its `User-Agent` and `Content-Length` added) and reads
    /// the whole answer, all within the request timeout.
    pub(crate) async fn send(
        &self,
        mut request: Request<()>,
        body: Bytes,
    ) -> Result<Answer, TransportError> {
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, self.user_agent.clone());
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let exchange = async {
            if let Some(direct) = &self.direct
                && !direct.fallback.load(Ordering::Relaxed)
            {
                match direct.send(request, body).await {
                    Err(Direct::Http1(unsent)) => {
                        let (request, body) = *unsent;
                        self.send_pooled(request, body).await
                    }
                    Err(Direct::Failed(e)) => Err(e),
                    Ok(answer) => Ok(answer),
                }
            } else {
                self.send_pooled(request, body).await
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::TimedOut),
        }
    }

    /// Through hyper's pooled client.
    async fn send_pooled(
        &self,
        request: Request<()>,
        body: Bytes,
    ) -> Result<Answer, TransportError> {
        let request = request.map(|()| Full::new(body));
        let response: Response<_> = self
            .pooled
            .request(request)
            .await
            .map_err(|e| describe(&e, e.is_connect()))?;
        let (head, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| TransportError::Request(innermost(&e)))?
            .to_bytes();
        Ok(Answer { head, body })
    }
}

/// `scheme://authority/` of a URI: where the direct HTTP/2 connection goes.
fn origin_of(uri: &Uri) -> Result<Uri, BuildError> {
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(BuildError::Transport(format!(
            "{uri} is not an absolute URL"
        )));
    };
    Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query("/")
        .build()
        .map_err(|e| BuildError::Transport(e.to_string()))
}

/// One HTTP/2 connection to one origin, made on first use and again after it closes.
struct H2Direct {
    connector: Connector,
    origin: Uri,
    prior_knowledge: bool,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// The live connection, if any.
    current: Arc<parking_lot::Mutex<Option<Live>>>,
    /// Held while connecting, so that concurrent first requests share one connection;
    /// holds the failure of the last attempt, if it failed.
    connecting: tokio::sync::Mutex<Option<TransportError>>,
    /// Connection attempts finished, to tell whether one failed while a request waited.
    attempts: AtomicU64,
    /// The server answered ALPN with HTTP/1.1: everything goes through the pool from now on.
    fallback: AtomicBool,
    next_id: AtomicU64,
}

/// A live connection's request handle, and how busy it is (for the idle timeout).
#[derive(Clone)]
struct Live {
    id: u64,
    send: h2::client::SendRequest<Bytes>,
    usage: Arc<Usage>,
}

#[derive(Default)]
struct Usage {
    /// Requests started on the connection, ever.
    started: AtomicU64,
    /// Requests not finished yet.
    active: AtomicUsize,
}

/// Why the direct path gave no answer.
enum Direct {
    /// The server chose HTTP/1.1: send this request through the pool instead.
    Http1(Box<(Request<()>, Bytes)>),
    /// Failed for good.
    Failed(TransportError),
}

/// Marks a request finished when dropped (answered, failed or cancelled).
struct Active(Arc<Usage>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl H2Direct {
    async fn send(&self, request: Request<()>, body: Bytes) -> Result<Answer, Direct> {
        // A connection found closed (GOAWAY, reset) before the request was handed to it is
        // replaced once, and the request sent on the new one.
        let mut replaced = false;
        loop {
            let live = match self.live().await {
                Ok(Some(live)) => live,
                Ok(None) => return Err(Direct::Http1(Box::new((request, body)))),
                Err(e) => return Err(Direct::Failed(e)),
            };
            live.usage.started.fetch_add(1, Ordering::Relaxed);
            live.usage.active.fetch_add(1, Ordering::Relaxed);
            let _active = Active(live.usage.clone());
            let mut send = match live.send.clone().ready().await {
                Ok(send) => send,
                Err(e) => {
                    self.forget(&live);
                    if replaced {
                        return Err(Direct::Failed(h2_failure(&e)));
                    }
                    replaced = true;
                    continue;
                }
            };
            let fail = |e: h2::Error| {
                if e.is_go_away() || e.is_io() || e.reason().is_none() {
                    self.forget(&live);
                }
                Direct::Failed(h2_failure(&e))
            };
            let (response, mut stream) = send.send_request(request, false).map_err(fail)?;
            stream.send_data(body, true).map_err(fail)?;
            return read_answer(response).await.map_err(fail);
        }
    }

    /// The live connection, made if there is none; `None` when the server chose HTTP/1.1.
    async fn live(&self) -> Result<Option<Live>, TransportError> {
        if let Some(live) = self.current.lock().clone() {
            return Ok(Some(live));
        }
        // Boxed: connecting holds TLS and HTTP/2 handshake state of several KiB, which would
        // otherwise be part of (and copied with) every request's future.
        Box::pin(self.connect()).await
    }

    /// Makes the connection (one caller at a time; the others then share it).
    ///
    /// Requests that waited for an attempt that failed get its failure instead of trying
    /// in turn: against an unreachable server they would otherwise wait for one connect
    /// timeout per request queued ahead of them.
    async fn connect(&self) -> Result<Option<Live>, TransportError> {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut last_failure = self.connecting.lock().await;
        if let Some(live) = self.current.lock().clone() {
            return Ok(Some(live));
        }
        if self.fallback.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if self.attempts.load(Ordering::Acquire) != attempts_seen
            && let Some(failure) = last_failure.as_ref()
        {
            return Err(failure.again());
        }
        let made = self.handshake().await;
        *last_failure = made.as_ref().err().map(TransportError::again);
        // Counted once finished: requests that arrived during the attempt see the change.
        self.attempts.fetch_add(1, Ordering::AcqRel);
        made
    }

    /// One connection attempt: connect, check ALPN, HTTP/2 handshake, start the driver.
    async fn handshake(&self) -> Result<Option<Live>, TransportError> {
        let io = self
            .connector
            .clone()
            .call(self.origin.clone())
            .await
            .map_err(|e| describe(&*e, true))?;
        if !self.prior_knowledge && !io.connected().is_negotiated_h2() {
            debug!(origin = %self.origin, "the server chose HTTP/1.1; using the pooled client");
            self.fallback.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        let handshake = h2_builder().handshake::<_, Bytes>(TokioIo::new(io));
        let (send, connection) = match tokio::time::timeout(self.connect_timeout, handshake).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(TransportError::Connect(h2_cause(&e))),
            Err(_) => return Err(TransportError::TimedOut),
        };
        let live = Live {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            send,
            usage: Arc::default(),
        };
        tokio::spawn(drive(
            connection,
            live.id,
            live.usage.clone(),
            self.idle_timeout,
            Arc::downgrade(&self.current),
        ));
        *self.current.lock() = Some(live.clone());
        Ok(Some(live))
    }

    /// Drops `live` as the current connection (if it still is), so the next request
    /// connects again.
    fn forget(&self, live: &Live) {
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|c| c.id == live.id) {
            *current = None;
        }
    }
}
/// The HTTP/2 settings of hyper's client (windows of 2 MiB per stream and 5 MiB per
/// connection, no server push).
fn h2_builder() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    builder
        .enable_push(false)
        .initial_window_size(2 << 20)
        .initial_connection_window_size(5 << 20)
        .max_send_buffer_size(400 << 10)
        .max_header_list_size(16 << 10);
    builder
}

type H2Connection = h2::client::Connection<TokioIo<MaybeHttpsStream<ProxyStream>>, Bytes>;

/// Runs a connection until it closes, or until it was idle (no request started and none
/// in flight) for a whole `idle` period, then drops it as the current one.
async fn drive(
    connection: H2Connection,
    id: u64,
    usage: Arc<Usage>,
    idle: Duration,
    current: Weak<parking_lot::Mutex<Option<Live>>>,
) {
    // A zero timeout would spin while requests are in flight.
    let idle = idle.max(Duration::from_millis(10));
    let mut connection = std::pin::pin!(connection);
    let mut seen = usage.started.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            biased;
            closed = &mut connection => {
                if let Err(e) = closed {
                    debug!(error = %e, "HTTP/2 connection closed");
                }
                break;
            }
            () = tokio::time::sleep(idle) => {
                let started = usage.started.load(Ordering::Relaxed);
                if started == seen && usage.active.load(Ordering::Relaxed) == 0 {
                    debug!("HTTP/2 connection idle; closing it");
                    break;
                }
                seen = started;
            }
        }
    }
    if let Some(current) = current.upgrade() {
        let mut current = current.lock();
        if current.as_ref().is_some_and(|live| live.id == id) {
            *current = None;
        }
    }
}

/// Waits for the answer's head and reads its body, giving flow-control credit back as it
/// arrives.
async fn read_answer(response: h2::client::ResponseFuture) -> Result<Answer, h2::Error> {
    let (head, mut recv) = response.await?.into_parts();
    let mut body = Bytes::new();
    let mut more: Option<BytesMut> = None;
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        match &mut more {
            None if body.is_empty() => body = chunk,
            None => {
                let mut joined = BytesMut::from(&body[..]);
                joined.extend_from_slice(&chunk);
                more = Some(joined);
            }
            Some(joined) => joined.extend_from_slice(&chunk),
        }
    }
    if let Some(joined) = more {
        body = joined.freeze();
    }
    Ok(Answer { head, body })
}

fn h2_failure(e: &h2::Error) -> TransportError {
    TransportError::Request(h2_cause(e))
}

fn h2_cause(e: &h2::Error) -> String {
    innermost(e)
}

/// Sorts a client error; a connect timeout of ours anywhere in the chain is a timeout.
fn describe(e: &(dyn StdError + 'static), connect: bool) -> TransportError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<ConnectTimedOut>() {
            return TransportError::TimedOut;
        }
        source = s.source();
    }
    if connect {
        TransportError::Connect(innermost(e))
    } else {
        TransportError::Request(innermost(e))
    }
}

/// The innermost cause of an error, as text.
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// The TLS settings: rustls with aws-lc-rs; the platform's roots plus the extra CA
/// certificates, or the extra ones alone.
fn tls_config(config: &HttpConfig) -> Result<ClientConfig, BuildError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let extra = match &config.extra_ca_pem {
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BuildError::CaCertificate(e.to_string()))?;
            if certs.is_empty() {
                return Err(BuildError::CaCertificate(
                    "no certificate in the PEM data".into(),
                ));
            }
            certs
        }
        None => Vec::new(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Transport(format!("TLS versions: {e}")))?;
    let tls = if config.extra_ca_only && !extra.is_empty() {
        let mut roots = rustls::RootCertStore::empty();
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| BuildError::CaCertificate(e.to_string()))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let verifier = platform_verifier(extra, provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    };
    Ok(tls)
}

/// The platform's verifier (its roots), plus `extra` roots.
fn platform_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, BuildError> {
    let verifier = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider)
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
    };
    verifier.map_err(|e| BuildError::Transport(format!("system root certificates: {e}")))
}

/// Every connection: the route to the server (direct or through a proxy), TLS to the
/// server on `https://`, all within the connect timeout.
#[derive(Clone)]
struct Connector {
    inner: HttpsConnector<Route>,
    timeout: Duration,
}

/// The connect timeout expired (told apart from other connect failures by type).
#[derive(Debug)]
struct ConnectTimedOut;

impl fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connect timed out")
    }
}

impl StdError for ConnectTimedOut {}

impl Service<Uri> for Connector {
    type Response = MaybeHttpsStream<ProxyStream>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

/// How a connection reaches the server.
#[derive(Clone)]
enum Route {
    /// TCP to the server itself.
    Direct(HttpConnector),
    /// `CONNECT` through an HTTP proxy (TLS to the proxy for `https://` proxies).
    Tunnel(Tunnel<HttpsConnector<HttpConnector>>),
    /// Through a SOCKS5 proxy.
    Socks(SocksV5<HttpConnector>),
}

impl Route {
    fn new(config: &HttpConfig, tls: &ClientConfig) -> Result<Self, BuildError> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let Some(proxy) = &config.proxy else {
            return Ok(Route::Direct(tcp));
        };
        // reqwest's parser first, so that a refused proxy URL is refused as before.
        reqwest::Proxy::all(proxy.as_str()).map_err(BuildError::Proxy)?;
        let bad = |reason: &str| {
            BuildError::Transport(format!(
                "proxy {}: {reason}",
                redact_userinfo(proxy.as_str())
            ))
        };
        let url = reqwest::Url::parse(proxy).map_err(|_| bad("not a URL"))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let port = url
            .port_or_known_default()
            .or(match url.scheme() {
                "socks5" | "socks5h" => Some(1080),
                _ => None,
            })
            .ok_or_else(|| bad("no port"))?;
        let user = percent_decode(url.username());
        let password = url.password().map(percent_decode);
        let scheme = match url.scheme() {
            "https" => "https",
            "http" | "socks5" | "socks5h" => "http",
            _ => return Err(bad("scheme must be http, https, socks5 or socks5h")),
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let proxy_uri: Uri = format!("{scheme}://{host}:{port}")
            .parse()
            .map_err(|_| bad("not a URI"))?;
        Ok(match url.scheme() {
            "socks5" | "socks5h" => {
                let mut socks = SocksV5::new(proxy_uri, tcp).local_dns(url.scheme() == "socks5");
                if !user.is_empty() || password.is_some() {
                    socks = socks.with_auth(user, password.unwrap_or_default());
                }
                Route::Socks(socks)
            }
            _ => {
                // HTTP/1.1 only to the proxy: CONNECT is an HTTP/1.1 request here.
                let to_proxy = HttpsConnectorBuilder::new()
                    .with_tls_config(tls.clone())
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(tcp);
                let mut tunnel = Tunnel::new(proxy_uri, to_proxy);
                if !user.is_empty() || password.is_some() {
                    let credentials = base64_encode(
                        format!("{user}:{}", password.unwrap_or_default()).as_bytes(),
                    );
                    let auth = HeaderValue::from_str(&format!("Basic {credentials}"))
                        .map_err(|_| bad("credentials not allowed in a header"))?;
                    // `with_auth` marks the value sensitive.
                    tunnel = tunnel.with_auth(auth);
                }
                Route::Tunnel(tunnel)
            }
        })
    }
}

impl Service<Uri> for Route {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = BoxFuture<ProxyStream>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // All three are always ready (no back-pressure in the connectors).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Route::Direct(tcp) => {
                let connecting = tcp.call(dst);
                Box::pin(async move { Ok(MaybeHttpsStream::Http(connecting.await?)) })
            }
            Route::Tunnel(tunnel) => {
                // The tunnel and SOCKS connectors take a missing port as 443.
                let connecting = tunnel.call(with_port(dst));
                Box::pin(async move { Ok(connecting.await?) })
            }
            Route::Socks(socks) => {
                let connecting = socks.call(with_port(dst));
                Box::pin(async move {
                    Ok(MaybeHttpsStream::Http(
                        connecting.await.map_err(|e| e.to_string())?,
                    ))
                })
            }
        }
    }
}

/// `dst` with its scheme's port made explicit (80 for `http`).
fn with_port(dst: Uri) -> Uri {
    if dst.port().is_some() || dst.scheme() != Some(&Scheme::HTTP) {
        return dst;
    }
    let Some(host) = dst.host() else {
        return dst;
    };
    let Ok(authority) = format!("{host}:80").parse::<Authority>() else {
        return dst;
    };
    let mut parts = dst.into_parts();
    parts.authority = Some(authority);
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::default())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
