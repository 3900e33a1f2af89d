//! One CCS connection of the pool: login, a writer task (stanzas and pings), a reader task
//! (acks, nacks, control, upstream), and the table of messages waiting for their answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use pushgate_proto::ccs::{Ack, CONNECTION_DRAINING, Nack, NackCode, ServerMessage};
use pushgate_xmpp::handshake::ClientLogin;
use pushgate_xmpp::{
    GcmMessage, Iq, Stanza, StreamEvent, XmppReader, XmppStream, auto_reply, client_handshake,
};
use rustls_pki_types::ServerName;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::client::Shared;
use super::config::CcsConfig;
use super::error::CcsError;

/// A logged-in stream.
pub(crate) type CcsStream = XmppStream<TlsStream<TcpStream>>;

/// The answer a waiting send gets.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Acked.
    Ack(Ack),
    /// Nacked.
    Nack(Nack),
    /// CCS refused the stanza itself (stanza error); the text says why.
    StanzaError(String),
    /// The connection ended before an answer.
    Lost,
}

/// What a connection tells its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnEvent {
    /// CCS asked to stop sending here: open another connection.
    Draining,
    /// The connection is gone.
    Closed,
}

struct Inflight {
    tx: oneshot::Sender<Answer>,
    _permit: OwnedSemaphorePermit,
}

/// A connection as the pool sees it.
pub(crate) struct Conn {
    pub id: u64,
    /// Serialised stanzas to write.
    pub writer: mpsc::UnboundedSender<String>,
    /// `window` permits; closed when the connection drains or dies.
    pub window: Arc<Semaphore>,
    inflight: Mutex<Option<HashMap<String, Inflight>>>,
    draining: AtomicBool,
    events: mpsc::UnboundedSender<ConnEvent>,
}

impl Conn {
    /// Registers a message as waiting and queues it for writing. `None` when the connection
    /// is already gone (the permit is released).
    pub(crate) fn submit(
        &self,
        message_id: &str,
        xml: String,
        permit: OwnedSemaphorePermit,
    ) -> Option<oneshot::Receiver<Answer>> {
        let mut guard = self.inflight.lock();
        let map = guard.as_mut()?;
        let (tx, rx) = oneshot::channel();
        map.insert(
            message_id.to_string(),
            Inflight {
                tx,
                _permit: permit,
            },
        );
        if self.writer.send(xml).is_err() {
            map.remove(message_id);
            return None;
        }
        Some(rx)
    }

    fn resolve(&self, message_id: &str, answer: Answer) {
        let entry = self
            .inflight
            .lock()
            .as_mut()
            .and_then(|m| m.remove(message_id));
        match entry {
            Some(e) => {
                let _ = e.tx.send(answer);
            }
            None => tracing::debug!(conn = self.id, %message_id, "answer for no pending message"),
        }
    }

    /// Stops new sends here (in-flight messages still get their answers).
    pub(crate) fn set_draining(&self) {
        if !self.draining.swap(true, Ordering::Relaxed) {
            self.window.close();
            let _ = self.events.send(ConnEvent::Draining);
        }
    }

    /// True once draining (or dead).
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The connection ended: every waiting send learns it (and resends elsewhere).
    fn fail_all(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.window.close();
        let map = self.inflight.lock().take();
        for (_, e) in map.into_iter().flatten() {
            let _ = e.tx.send(Answer::Lost);
        }
        let _ = self.events.send(ConnEvent::Closed);
    }

    /// Messages waiting for an answer here.
    pub(crate) fn inflight(&self) -> usize {
        self.inflight.lock().as_ref().map_or(0, HashMap::len)
    }
}

/// TCP connect, TLS, XMPP login, all within `connect_timeout`.
pub(crate) async fn login(
    config: &CcsConfig,
    connector: &TlsConnector,
) -> Result<CcsStream, CcsError> {
    let name = config
        .server_name
        .clone()
        .unwrap_or_else(|| config.host.clone());
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| CcsError::Config(format!("invalid TLS server name {name:?}")))?;
    let mut login = ClientLogin::new(config.sender_id.clone(), config.api_key.clone());
    login.domain = config.domain.clone();
    let attempt = async {
        let tcp = TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(CcsError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(CcsError::Connect)?;
        let mut stream = XmppStream::new(tls);
        client_handshake(&mut stream, &login).await?;
        Ok(stream)
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| CcsError::Timeout)?
}

/// Starts the reader and writer tasks of a logged-in stream.
pub(crate) fn start(
    shared: &Arc<Shared>,
    id: u64,
    stream: CcsStream,
) -> (Arc<Conn>, mpsc::UnboundedReceiver<ConnEvent>) {
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let conn = Arc::new(Conn {
        id,
        writer: writer_tx,
        window: Arc::new(Semaphore::new(shared.config.window)),
        inflight: Mutex::new(Some(HashMap::new())),
        draining: AtomicBool::new(false),
        events: events_tx,
    });
    let (reader, writer) = stream.into_split();
    tokio::spawn(write_loop(
        writer,
        writer_rx,
        shared.config.ping_interval,
        shared.config.domain.clone(),
        id,
        shared.shutdown_signal(),
    ));
    tokio::spawn(read_loop(shared.clone(), conn.clone(), reader));
    (conn, events_rx)
}

async fn write_loop(
    mut writer: pushgate_xmpp::XmppWriter<WriteHalf<TlsStream<TcpStream>>>,
    mut rx: mpsc::UnboundedReceiver<String>,
    ping_interval: std::time::Duration,
    domain: String,
    conn: u64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(ping_interval);
    ticker.tick().await;
    let mut pings = 0u64;
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(mut out) = next else {
                    // Every sender is gone: the pool let go of this connection.
                    let _ = writer.close().await;
                    return;
                };
                // Write whatever else is queued in the same TLS record.
                while out.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => out.push_str(&more),
                        Err(_) => break,
                    }
                }
                if let Err(e) = writer.send(out).await {
                    tracing::debug!(conn, error = %e, "CCS write failed");
                    return;
                }
            }
            _ = super::client::stopped(&mut shutdown) => {
                let _ = writer.close().await;
                return;
            }
            _ = ticker.tick() => {
                pings += 1;
                let ping = Iq::ping(&format!("ping-{pings}")).with_to(domain.clone());
                if writer.send(ping.to_xml()).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn read_loop(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    mut reader: XmppReader<ReadHalf<TlsStream<TcpStream>>>,
) {
    loop {
        let event = tokio::select! {
            ev = reader.next_event() => ev,
            _ = conn.writer.closed() => break,
        };
        match event {
            Ok(Some(StreamEvent::Stanza(el))) => match Stanza::from_element(el) {
                Stanza::Message(m) => on_message(&shared, &conn, m),
                Stanza::StreamError(e) => {
                    tracing::debug!(conn = conn.id, error = %e, "CCS stream error");
                    break;
                }
                other => {
                    if let Some(reply) = auto_reply(&other) {
                        let _ = conn.writer.send(reply);
                    }
                }
            },
            Ok(Some(StreamEvent::StreamOpen(_))) => break,
            Ok(Some(StreamEvent::StreamClose)) | Ok(None) => {
                tracing::debug!(conn = conn.id, "CCS closed the connection");
                break;
            }
            Err(e) => {
                tracing::debug!(conn = conn.id, error = %e, "CCS connection lost");
                break;
            }
        }
    }
    conn.fail_all();
}

fn on_message(shared: &Arc<Shared>, conn: &Arc<Conn>, m: GcmMessage) {
    if m.kind.as_deref() == Some("error") {
        // A stanza error echoes our payload: find its message id there (or in the stanza id).
        let id = m
            .value()
            .ok()
            .and_then(|v| {
                v.get("message_id")
                    .and_then(|i| i.as_str())
                    .map(String::from)
            })
            .or_else(|| m.id.clone())
            .unwrap_or_default();
        let text = m
            .error
            .as_ref()
            .and_then(|e| e.text.clone())
            .unwrap_or_else(|| "bad-request".into());
        conn.resolve(&id, Answer::StanzaError(text));
        return;
    }
    let parsed = match ServerMessage::parse(&m.json) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(conn = conn.id, error = %e, "unreadable CCS message ignored");
            return;
        }
    };
    match parsed {
        ServerMessage::Ack(ack) => {
            let id = ack.message_id.clone();
            conn.resolve(&id, Answer::Ack(ack));
        }
        ServerMessage::Nack(nack) => {
            if nack.error == NackCode::ConnectionDraining {
                conn.set_draining();
            }
            let id = nack.message_id.clone();
            conn.resolve(&id, Answer::Nack(nack));
        }
        ServerMessage::Control { control_type } => {
            if control_type == CONNECTION_DRAINING {
                tracing::info!(conn = conn.id, "CCS connection draining");
                conn.set_draining();
            }
        }
        ServerMessage::Upstream(u) => shared.upstream_arrived(
            conn,
            u.from.clone(),
            u.message_id.clone(),
            super::UpstreamEvent::Message(u),
        ),
        ServerMessage::Receipt(r) => shared.upstream_arrived(
            conn,
            r.from.clone(),
            r.message_id.clone(),
            super::UpstreamEvent::Receipt(r),
        ),
        ServerMessage::Unknown { message_type } => {
            tracing::debug!(conn = conn.id, %message_type, "unknown CCS message type ignored");
        }
    }
}
