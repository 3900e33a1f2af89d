//! The pool of CCS connections and the send path: window permits, resends after connection
//! loss and draining, `SERVICE_UNAVAILABLE` backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pushgate_proto::Outcome;
use pushgate_proto::ccs::NackCode;
use pushgate_xmpp::GcmMessage;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, watch};
use tokio_rustls::TlsConnector;

use super::config::CcsConfig;
use super::conn::{self, Answer, CcsStream, Conn, ConnEvent};
use super::error::CcsError;
use super::message::CcsMessage;
use super::upstream::{self, Arrival, Tracker, Upstream, UpstreamEvent, UpstreamStream};

/// A connection that lived shorter than this and died counts as a failed attempt (backoff).
const STABLE_AFTER: Duration = Duration::from_secs(1);

/// Resolves once the client is closed (without holding a watch guard across the await).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Counters of one client, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Connections logged in (reconnections and drain replacements included).
    pub connections_opened: u64,
    /// Messages sent again because their connection died before the answer.
    pub resent_after_loss: u64,
    /// Messages sent again after a `CONNECTION_DRAINING` nack.
    pub resent_after_draining: u64,
    /// `SERVICE_UNAVAILABLE` retries.
    pub retries: u64,
    /// Upstream redeliveries not handed to the application again.
    pub upstream_duplicates: u64,
}

/// State shared by the client handles, the supervisors and the connection tasks.
pub(crate) struct Shared {
    pub(crate) config: CcsConfig,
    connector: TlsConnector,
    /// Connections open for new sends (not draining).
    conns: Mutex<Vec<Arc<Conn>>>,
    changed: Notify,
    next_pick: AtomicUsize,
    next_message: AtomicU64,
    next_conn: AtomicU64,
    id_prefix: String,
    pub(crate) upstream: Mutex<Tracker>,
    upstream_tx: Mutex<Option<mpsc::UnboundedSender<Upstream>>>,
    shutdown: watch::Sender<bool>,
    opened: AtomicU64,
    resent_loss: AtomicU64,
    resent_draining: AtomicU64,
    retries: AtomicU64,
}

impl Shared {
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn is_closed(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// An upstream message or receipt arrived on `conn`.
    pub(crate) fn upstream_arrived(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        from: String,
        message_id: String,
        event: UpstreamEvent,
    ) {
        let arrival = self
            .upstream
            .lock()
            .arrived(&conn.writer, &from, &message_id);
        if let Arrival::Deliver = arrival {
            let ack = upstream::handle(self, message_id);
            let tx = self.upstream_tx.lock().clone();
            if let Some(tx) = tx {
                // If the application dropped its stream, the handle drops unacked.
                let _ = tx.send(Upstream { event, ack });
            }
        }
    }

    fn add(&self, conn: Arc<Conn>) {
        self.conns.lock().push(conn);
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    fn remove(&self, id: u64) {
        self.conns.lock().retain(|c| c.id != id);
        self.changed.notify_waiters();
    }

    /// A connection and one of its window permits, waiting while every window is full or no
    /// connection is open.
    async fn acquire(&self) -> Result<(Arc<Conn>, OwnedSemaphorePermit), CcsError> {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if self.is_closed() {
                return Err(CcsError::Closed);
            }
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let candidate = {
                let conns = self.conns.lock();
                let n = conns.len();
                if n == 0 {
                    None
                } else {
                    let start = self.next_pick.fetch_add(1, Ordering::Relaxed) % n;
                    let ordered = (0..n).map(|i| &conns[(start + i) % n]);
                    let mut ready = None;
                    for c in ordered.filter(|c| !c.is_draining()) {
                        if let Ok(p) = c.window.clone().try_acquire_owned() {
                            ready = Some((c.clone(), Some(p)));
                            break;
                        }
                    }
                    ready.or_else(|| {
                        conns
                            .get(start)
                            .filter(|c| !c.is_draining())
                            .map(|c| (c.clone(), None))
                    })
                }
            };
            match candidate {
                Some((conn, Some(permit))) => return Ok((conn, permit)),
                Some((conn, None)) => {
                    let window = conn.window.clone();
                    tokio::select! {
                        permit = window.acquire_owned() => {
                            if let Ok(permit) = permit {
                                return Ok((conn, permit));
                            }
                        }
                        _ = stopped(&mut shutdown) => return Err(CcsError::Closed),
                    }
                }
                None => {
                    tokio::select! {
                        _ = notified => {}
                        _ = stopped(&mut shutdown) => return Err(CcsError::Closed),
                    }
                }
            }
        }
    }
}

/// A CCS client: a pool of logged-in connections (see the [module docs](super)). Cheap to
/// clone; the connections close when the last clone is dropped or on [`CcsClient::close`].
#[derive(Clone)]
pub struct CcsClient {
    shared: Arc<Shared>,
    _guard: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for CcsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CcsClient")
            .field("config", &self.shared.config)
            .field("open_connections", &self.shared.conns.lock().len())
            .finish()
    }
}

struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        close(&self.0);
    }
}

fn close(shared: &Shared) {
    shared.shutdown.send_replace(true);
    shared.upstream_tx.lock().take();
    shared.changed.notify_waiters();
}

impl CcsClient {
    /// Opens `config.connections` connections (all must log in, or this fails: a refused key
    /// is reported as such) and returns the client and its stream of upstream messages.
    pub async fn connect(config: CcsConfig) -> Result<(CcsClient, UpstreamStream), CcsError> {
        config.check()?;
        let pem = config.ca_pem.clone().unwrap_or_default();
        let connector = pushgate_xmpp::tls::connector_from_pem(pem.as_bytes())?;
        let mut first = Vec::with_capacity(config.connections);
        for _ in 0..config.connections {
            first.push(conn::login(&config, &connector).await?);
        }
        let (upstream_tx, upstream_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstream: Mutex::new(Tracker::new(config.dedup_window)),
            config,
            connector,
            conns: Mutex::new(Vec::new()),
            changed: Notify::new(),
            next_pick: AtomicUsize::new(0),
            next_message: AtomicU64::new(0),
            next_conn: AtomicU64::new(0),
            id_prefix: format!("pg{:08x}", rand::random::<u32>()),
            upstream_tx: Mutex::new(Some(upstream_tx)),
            shutdown,
            opened: AtomicU64::new(0),
            resent_loss: AtomicU64::new(0),
            resent_draining: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        });
        for (slot, stream) in first.into_iter().enumerate() {
            let (conn, events) = start_conn(&shared, stream);
            tokio::spawn(supervise(shared.clone(), slot, Some((conn, events))));
        }
        tracing::info!(
            sender_id = %shared.config.sender_id,
            host = %shared.config.host,
            connections = shared.config.connections,
            "CCS client connected"
        );
        let client = CcsClient {
            _guard: Arc::new(CloseOnDrop(shared.clone())),
            shared,
        };
        Ok((client, UpstreamStream::new(upstream_rx)))
    }

    /// Sends one downstream message and waits for its ack or nack, resending it after a
    /// connection loss or a `CONNECTION_DRAINING` nack, and retrying `SERVICE_UNAVAILABLE`
    /// with backoff. Fails only when the client is closed.
    pub async fn send(&self, message: CcsMessage) -> Result<Outcome, CcsError> {
        let shared = &self.shared;
        let n = shared.next_message.fetch_add(1, Ordering::Relaxed);
        let message_id = format!("{}-{n}", shared.id_prefix);
        let json = message.with_id(&message_id).to_json();
        let xml = GcmMessage::new(json).with_id(message_id.clone()).to_xml();
        let mut unavailable = 0u32;
        loop {
            let (conn, permit) = shared.acquire().await?;
            let Some(rx) = conn.submit(&message_id, xml.clone(), permit) else {
                continue;
            };
            let answer = rx.await.unwrap_or(Answer::Lost);
            match answer {
                Answer::Lost => {
                    shared.resent_loss.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%message_id, "connection lost before the answer: resending");
                }
                Answer::Ack(ack) => return Ok(ack.outcome()),
                Answer::StanzaError(text) => {
                    tracing::debug!(%message_id, %text, "CCS refused the stanza");
                    return Ok(Outcome::MessageRejected {
                        reason: NackCode::InvalidJson.as_str().to_string(),
                    });
                }
                Answer::Nack(nack) => match nack.error {
                    NackCode::ConnectionDraining => {
                        shared.resent_draining.fetch_add(1, Ordering::Relaxed);
                    }
                    NackCode::ServiceUnavailable
                        if shared.config.retry.allows_attempt(unavailable + 2) =>
                    {
                        shared.retries.fetch_add(1, Ordering::Relaxed);
                        let delay = shared.config.retry.delay(unavailable, None);
                        unavailable += 1;
                        tokio::time::sleep(delay).await;
                    }
                    _ => return Ok(nack.outcome()),
                },
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        let s = &self.shared;
        ClientStats {
            connections_opened: s.opened.load(Ordering::Relaxed),
            resent_after_loss: s.resent_loss.load(Ordering::Relaxed),
            resent_after_draining: s.resent_draining.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            upstream_duplicates: s.upstream.lock().duplicates,
        }
    }

    /// Connections open for new sends right now.
    pub fn open_connections(&self) -> usize {
        self.shared.conns.lock().len()
    }

    /// Messages waiting for an answer on each open connection.
    pub fn inflight(&self) -> Vec<usize> {
        self.shared
            .conns
            .lock()
            .iter()
            .map(|c| c.inflight())
            .collect()
    }

    /// Closes every connection; pending sends fail with [`CcsError::Closed`] and the upstream
    /// stream ends.
    pub fn close(&self) {
        close(&self.shared);
    }
}

fn start_conn(
    shared: &Arc<Shared>,
    stream: CcsStream,
) -> (Arc<Conn>, mpsc::UnboundedReceiver<ConnEvent>) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let (conn, events) = conn::start(shared, id, stream);
    shared.add(conn.clone());
    (conn, events)
}

/// Keeps one pool slot connected: replaces a draining connection at once, reconnects a lost
/// one (at once if it had been up for a while, with backoff otherwise).
async fn supervise(
    shared: Arc<Shared>,
    slot: usize,
    mut current: Option<(Arc<Conn>, mpsc::UnboundedReceiver<ConnEvent>)>,
) {
    let mut shutdown = shared.shutdown_signal();
    let mut failures = 0u32;
    loop {
        if shared.is_closed() {
            return;
        }
        let (conn, mut events) = match current.take() {
            Some(c) => c,
            None => {
                let attempt = tokio::select! {
                    a = conn::login(&shared.config, &shared.connector) => a,
                    _ = stopped(&mut shutdown) => return,
                };
                match attempt {
                    Ok(stream) => start_conn(&shared, stream),
                    Err(e) => {
                        let delay = shared.config.reconnect.delay(failures, None);
                        failures = failures.saturating_add(1);
                        tracing::warn!(slot, error = %e, ?delay, "CCS reconnect failed");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stopped(&mut shutdown) => return,
                        }
                        continue;
                    }
                }
            }
        };
        let opened = Instant::now();
        tracing::debug!(slot, conn = conn.id, "CCS connection up");
        let event = tokio::select! {
            e = events.recv() => e.unwrap_or(ConnEvent::Closed),
            _ = stopped(&mut shutdown) => return,
        };
        shared.remove(conn.id);
        match event {
            ConnEvent::Draining => {
                // The old connection finishes on its own; this slot gets a new one now.
                tracing::info!(
                    slot,
                    conn = conn.id,
                    "CCS connection draining: replacing it"
                );
                failures = 0;
            }
            ConnEvent::Closed => {
                if opened.elapsed() >= STABLE_AFTER {
                    failures = 0;
                } else {
                    let delay = shared.config.reconnect.delay(failures, None);
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }
}
