//! One logged-in CCS connection: reads stanzas, answers each downstream message with exactly
//! one ack or nack (after the configured delay), writes upstream messages and receipts the
//! hub hands it, and obeys drain and kill orders.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pushgate_proto::ccs::{
    AppMessage, CCS_FROM, CONNECTION_DRAINING, MESSAGE_SENT_TO_DEVICE, NackCode, RECEIPT_PREFIX,
    Receipt, ReceiptData, ServerMessage,
};
use pushgate_xmpp::{
    ConnError, GcmMessage, ServerSession, Stanza, StanzaError, StreamEvent, XmppStream, auto_reply,
    writer,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::CcsStats;
use super::downstream::{self, Answer, ReceiptSpec};
use super::hub::{AckMatch, ConnCounters, ConnHandle, Outbound};
use crate::activity::ActivityEntry;
use crate::state::EmulatorState;
use crate::time::now_ms;

/// An ack or nack waiting for its time.
struct PendingAnswer {
    due: Instant,
    xml: String,
    receipt: Option<ReceiptSpec>,
}

/// What woke the loop.
enum Step {
    Kill,
    Stop,
    Command(Outbound),
    AnswersDue,
    GraceOver,
    Register,
    Event(Result<Option<StreamEvent>, ConnError>),
}

/// How the loop ended.
enum End {
    /// Drop the socket without a word (kill, or the peer is gone).
    Abrupt,
    /// Close the stream properly.
    Close,
}

/// A connection after login.
pub(crate) struct Session<S> {
    state: EmulatorState,
    stream: XmppStream<S>,
    login: ServerSession,
    sender: Arc<str>,
    id: u64,
    draining: Arc<AtomicBool>,
    kill: Arc<Notify>,
    counters: Arc<ConnCounters>,
    pending: VecDeque<PendingAnswer>,
    close_at: Option<Instant>,
    /// Not yet registered with the hub (no upstream traffic yet): registration waits for the
    /// client's first stanza after the bind (its session request, usually) or a short
    /// timeout, so that upstream messages never interleave with the login.
    unregistered: Option<ConnHandle>,
}

/// How long a new connection waits for the client's first stanza before upstream traffic
/// starts anyway.
const REGISTER_AFTER: Duration = Duration::from_millis(200);

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Registers the connection with the hub and serves it until it ends.
    pub(crate) async fn run(
        state: EmulatorState,
        stream: XmppStream<S>,
        login: ServerSession,
        sender: Arc<str>,
        stop: watch::Receiver<bool>,
    ) {
        let ccs = &state.get().ccs;
        let (tx, rx) = mpsc::unbounded_channel();
        let id = ccs.hub.next_id();
        let handle = ConnHandle {
            id,
            jid: Arc::from(login.jid.as_str()),
            tx,
            draining: Arc::new(AtomicBool::new(false)),
            kill: Arc::new(Notify::new()),
            counters: Arc::new(ConnCounters::default()),
        };
        let mut session = Session {
            state: state.clone(),
            stream,
            login,
            sender: sender.clone(),
            id,
            draining: handle.draining.clone(),
            kill: handle.kill.clone(),
            counters: handle.counters.clone(),
            pending: VecDeque::new(),
            close_at: None,
            unregistered: Some(handle),
        };
        CcsStats::add(&ccs.stats.connections);
        CcsStats::add(&ccs.stats.connections_total);
        tracing::debug!(conn = id, jid = %session.login.jid, "CCS connection open");
        session.serve(rx, stop).await;
        ccs.stats.connections.fetch_sub(1, Ordering::Relaxed);
        let redelivered = ccs.hub.unregister(&sender, id);
        ccs.stats
            .upstream_redelivered
            .fetch_add(redelivered, Ordering::Relaxed);
        ccs.stats
            .upstream_sent
            .fetch_add(redelivered, Ordering::Relaxed);
        tracing::debug!(conn = id, "CCS connection closed");
    }

    /// Joins the hub: from now on upstream messages and receipts flow to this connection.
    fn register(&mut self) {
        let Some(handle) = self.unregistered.take() else {
            return;
        };
        let ccs = &self.state.get().ccs;
        let redelivered = ccs.hub.register(&self.sender, handle);
        ccs.stats
            .upstream_redelivered
            .fetch_add(redelivered, Ordering::Relaxed);
        ccs.stats
            .upstream_sent
            .fetch_add(redelivered, Ordering::Relaxed);
    }

    async fn serve(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Outbound>,
        mut stop: watch::Receiver<bool>,
    ) {
        let register_at = Instant::now() + REGISTER_AFTER;
        let end = loop {
            let next_due = self.pending.iter().map(|p| p.due).min();
            let due = next_due.unwrap_or_else(far_future);
            let close_at = self.close_at.unwrap_or_else(far_future);
            let kill = self.kill.clone();
            let step = tokio::select! {
                biased;
                _ = kill.notified() => Step::Kill,
                _ = stop.changed() => Step::Stop,
                Some(cmd) = rx.recv() => Step::Command(cmd),
                _ = sleep_until(due), if next_due.is_some() => Step::AnswersDue,
                _ = sleep_until(close_at), if self.close_at.is_some() => Step::GraceOver,
                _ = sleep_until(register_at), if self.unregistered.is_some() => Step::Register,
                ev = self.stream.next_event() => Step::Event(ev),
            };
            let first_stanza = matches!(step, Step::Event(_)) && self.unregistered.is_some();
            let result = match step {
                Step::Kill => break End::Abrupt,
                Step::Stop => break End::Close,
                Step::Command(Outbound::Upstream(xml)) => {
                    self.stream.send(&*xml).await.map(|_| None)
                }
                Step::Command(Outbound::Drain) => self.start_drain().await.map(|_| None),
                Step::AnswersDue => self.write_due(false).await.map(|_| None),
                Step::Register => {
                    self.register();
                    Ok(None)
                }
                Step::GraceOver => {
                    let _ = self.write_due(true).await;
                    break End::Close;
                }
                Step::Event(Ok(Some(StreamEvent::Stanza(el)))) => {
                    self.on_stanza(Stanza::from_element(el)).await
                }
                Step::Event(Ok(Some(StreamEvent::StreamClose))) => Ok(Some(End::Close)),
                Step::Event(Ok(Some(StreamEvent::StreamOpen(_)))) => {
                    let err = pushgate_xmpp::StreamError {
                        condition: pushgate_xmpp::StreamErrorCondition::InvalidXml,
                        text: Some("unexpected stream header".into()),
                    };
                    let _ = self.stream.send(writer::stream_error_and_close(&err)).await;
                    Ok(Some(End::Abrupt))
                }
                Step::Event(Ok(None)) => Ok(Some(End::Abrupt)),
                Step::Event(Err(ConnError::Xmpp(e))) => {
                    let reply = writer::stream_error_and_close(&e.to_stream_error());
                    let _ = self.stream.send(reply).await;
                    Ok(Some(End::Abrupt))
                }
                Step::Event(Err(e)) => Err(e),
            };
            if first_stanza {
                self.register();
            }
            match result {
                Ok(None) => {}
                Ok(Some(end)) => break end,
                Err(e) => {
                    tracing::debug!(conn = self.id, error = %e, "CCS connection failed");
                    break End::Abrupt;
                }
            }
        };
        if let End::Close = end {
            let _ = self.stream.close().await;
        }
    }

    /// Sends `CONNECTION_DRAINING` and schedules the close.
    async fn start_drain(&mut self) -> Result<(), ConnError> {
        self.draining.store(true, Ordering::Relaxed);
        if self.close_at.is_none() {
            let grace = self.state.get().ccs.settings.drain_grace();
            self.close_at = Some(Instant::now() + grace);
            let json = ServerMessage::Control {
                control_type: CONNECTION_DRAINING.into(),
            }
            .to_json();
            self.stream.send(GcmMessage::new(json).to_xml()).await?;
        }
        Ok(())
    }

    /// Writes the answers whose time has come (all of them if `all`), then their receipts.
    async fn write_due(&mut self, all: bool) -> Result<(), ConnError> {
        let now = Instant::now();
        let mut out = String::new();
        let mut receipts = Vec::new();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            if all || p.due <= now {
                out.push_str(&p.xml);
                receipts.extend(p.receipt);
            } else {
                kept.push_back(p);
            }
        }
        self.pending = kept;
        self.counters
            .pending
            .store(self.pending.len(), Ordering::Relaxed);
        if !out.is_empty() {
            self.stream.send(out).await?;
        }
        for r in receipts {
            self.send_receipt(r);
        }
        Ok(())
    }

    /// Queues a delivery receipt with the hub (which writes it to a connection of the
    /// sender and keeps it until acked).
    fn send_receipt(&self, spec: ReceiptSpec) {
        let ccs = &self.state.get().ccs;
        let message_id = format!("{RECEIPT_PREFIX}{}", spec.original_message_id);
        let json = ServerMessage::Receipt(Receipt {
            category: Some(spec.category),
            data: ReceiptData {
                message_status: MESSAGE_SENT_TO_DEVICE.into(),
                original_message_id: spec.original_message_id,
                device_registration_id: spec.token,
                message_sent_timestamp: Some(now_ms().to_string()),
            },
            message_id: message_id.clone(),
            from: CCS_FROM.into(),
        })
        .to_json();
        let xml = GcmMessage::new(json).with_type("normal").to_xml();
        CcsStats::add(&ccs.stats.receipts);
        if ccs
            .hub
            .enqueue(&self.sender, Arc::from(message_id), Arc::from(xml), true)
            == super::hub::Dispatch::Sent
        {
            CcsStats::add(&ccs.stats.upstream_sent);
        }
    }

    async fn on_stanza(&mut self, stanza: Stanza) -> Result<Option<End>, ConnError> {
        match stanza {
            Stanza::Message(m) => self.on_gcm(m).await.map(|_| None),
            Stanza::StreamError(e) => {
                tracing::debug!(conn = self.id, error = %e, "CCS client sent a stream error");
                Ok(Some(End::Close))
            }
            other => {
                if let Some(reply) = auto_reply(&other) {
                    self.stream.send(reply).await?;
                }
                Ok(None)
            }
        }
    }

    /// A `<message>` with a `<gcm>` payload from the app server.
    async fn on_gcm(&mut self, m: GcmMessage) -> Result<(), ConnError> {
        let ccs = &self.state.get().ccs;
        let value: Value = match serde_json::from_str(&m.json) {
            Ok(v) => v,
            Err(_) => {
                let text = downstream::parsing_error_text(&m.json);
                return self.stanza_error(&m, text).await;
            }
        };
        match AppMessage::classify(value) {
            None => {
                let text = downstream::parsing_error_text(&m.json);
                self.stanza_error(&m, text).await
            }
            Some(AppMessage::Ack { message_id, .. }) => {
                let Some(id) = message_id else {
                    let answer = downstream::nack(
                        "",
                        None,
                        NackCode::BadAck,
                        "InvalidJson: JSON_PARSING_ERROR : Missing Required Field: message_id",
                    );
                    CcsStats::add(&ccs.stats.nacks);
                    return self
                        .stream
                        .send(GcmMessage::new(answer.json).to_xml())
                        .await;
                };
                match ccs.hub.ack(&self.sender, self.id, &id) {
                    AckMatch::Acked { receipt: false } => CcsStats::add(&ccs.stats.upstream_acked),
                    AckMatch::Acked { receipt: true } => CcsStats::add(&ccs.stats.receipts_acked),
                    AckMatch::OtherConnection => CcsStats::add(&ccs.stats.stale_acks),
                    AckMatch::Unknown => CcsStats::add(&ccs.stats.unknown_acks),
                }
                Ok(())
            }
            Some(AppMessage::Nack { .. }) | Some(AppMessage::Unknown { .. }) => {
                tracing::debug!(
                    conn = self.id,
                    "CCS client sent a nack or unknown type: ignored"
                );
                Ok(())
            }
            Some(AppMessage::Downstream(mut object)) => {
                let message_id = match object.remove("message_id") {
                    Some(Value::String(s)) if !s.is_empty() => s,
                    _ => {
                        let text = "InvalidJson: JSON_PARSING_ERROR : Missing Required Field: message_id\n";
                        return self.stanza_error(&m, text.to_string()).await;
                    }
                };
                self.on_downstream(object, &message_id).await
            }
        }
    }

    async fn on_downstream(
        &mut self,
        object: serde_json::Map<String, Value>,
        message_id: &str,
    ) -> Result<(), ConnError> {
        let inner = self.state.get();
        let ccs = &inner.ccs;
        CcsStats::add(&ccs.stats.downstream);
        self.counters.downstream.fetch_add(1, Ordering::Relaxed);
        inner.stats.request();
        let to = object.get("to").and_then(Value::as_str).map(str::to_string);
        let seen = self.pending.len() + 1;
        self.counters.max_pending.fetch_max(seen, Ordering::Relaxed);
        ccs.stats
            .max_pending
            .fetch_max(seen as u64, Ordering::Relaxed);
        let answer = if self.draining.load(Ordering::Relaxed) {
            CcsStats::add(&ccs.stats.draining_nacks);
            Some(downstream::nack(
                message_id,
                to.as_deref(),
                NackCode::ConnectionDraining,
                "Connection is draining: send on another connection",
            ))
        } else if seen > ccs.settings.max_pending() {
            CcsStats::add(&ccs.stats.pending_rejected);
            Some(downstream::nack(
                message_id,
                to.as_deref(),
                NackCode::ServiceUnavailable,
                format!(
                    "Too many pending messages on this connection (limit {})",
                    ccs.settings.max_pending()
                ),
            ))
        } else {
            None
        };
        let (answer, immediate) = match answer {
            Some(a) => (a, true),
            None => (
                downstream::process(inner, &self.sender, object, message_id),
                false,
            ),
        };
        if answer.nack.is_some() {
            CcsStats::add(&ccs.stats.nacks);
        } else {
            CcsStats::add(&ccs.stats.acks);
        }
        inner.activity.record(ActivityEntry {
            at_ms: now_ms(),
            path: downstream::FAULT_PATH,
            status: 200,
            recipients: 1,
            kind: "ccs",
            note: answer.nack.clone(),
        });
        self.schedule(answer, immediate).await
    }

    async fn schedule(&mut self, answer: Answer, immediate: bool) -> Result<(), ConnError> {
        let Answer {
            json,
            receipt,
            delay,
            ..
        } = answer;
        let xml = GcmMessage::new(json).to_xml();
        let delay = if immediate {
            Duration::ZERO
        } else {
            self.state
                .get()
                .ccs
                .settings
                .ack_delay()
                .max(delay.unwrap_or_default())
        };
        if delay.is_zero() && self.pending.is_empty() {
            self.stream.send(xml).await?;
            if let Some(r) = receipt {
                self.send_receipt(r);
            }
            return Ok(());
        }
        self.pending.push_back(PendingAnswer {
            due: Instant::now() + delay,
            xml,
            receipt,
        });
        self.counters
            .pending
            .store(self.pending.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Answers with a stanza error echoing the payload (docs/protocols.md, "CCS: stanza errors").
    async fn stanza_error(&mut self, m: &GcmMessage, text: String) -> Result<(), ConnError> {
        CcsStats::add(&self.state.get().ccs.stats.stanza_errors);
        let reply = GcmMessage::new(m.json.clone())
            .with_id(m.id.clone().unwrap_or_default())
            .with_to(self.login.jid.clone())
            .with_error(StanzaError::bad_request(text));
        self.stream.send(reply.to_xml()).await
    }
}

/// An instant far enough away to never fire (for disabled timer branches).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
