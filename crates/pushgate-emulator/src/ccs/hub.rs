//! Every sender's open CCS connections and its upstream messages and receipts not yet acked
//! by the app server.
//!
//! An upstream message is sent to one connection at a time; when that connection ends
//! without the ack, the message goes to another open connection of the sender, or waits for
//! the next one to log in (docs/protocols.md, "CCS: upstream messages": unacked upstream messages
//! are redelivered).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

/// What the hub asks a connection's task to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write this upstream message or receipt stanza.
    Upstream(Arc<str>),
    /// Send `CONNECTION_DRAINING`, nack further downstream, close after the grace period.
    Drain,
}

/// Per-connection numbers, shared with the control API.
#[derive(Debug, Default)]
pub(crate) struct ConnCounters {
    /// Acks/nacks not yet written.
    pub pending: AtomicUsize,
    /// The most pending ever seen (the arriving message included).
    pub max_pending: AtomicUsize,
    /// Downstream messages received.
    pub downstream: AtomicU64,
}

/// A connection as the hub knows it.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub id: u64,
    pub jid: Arc<str>,
    pub tx: mpsc::UnboundedSender<Outbound>,
    pub draining: Arc<AtomicBool>,
    pub kill: Arc<Notify>,
    pub counters: Arc<ConnCounters>,
}

#[derive(Debug)]
struct Pending {
    message_id: Arc<str>,
    xml: Arc<str>,
    /// The connection it was last written to, while that connection is open.
    on_conn: Option<u64>,
    /// Times it was handed to a connection.
    sends: u32,
    receipt: bool,
}

#[derive(Debug, Default)]
struct SenderHub {
    conns: Vec<ConnHandle>,
    upstream: Vec<Pending>,
    next_pick: usize,
}

impl SenderHub {
    /// An open connection for new upstream traffic: not draining if possible, round robin.
    fn pick(&mut self) -> Option<ConnHandle> {
        if self.conns.is_empty() {
            return None;
        }
        let n = self.conns.len();
        let start = self.next_pick % n;
        self.next_pick = self.next_pick.wrapping_add(1);
        (0..n)
            .map(|i| &self.conns[(start + i) % n])
            .find(|c| !c.draining.load(Ordering::Relaxed))
            .or_else(|| self.conns.get(start))
            .cloned()
    }
}

/// What an app server's ack matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckMatch {
    /// An upstream message (false) or receipt (true) sent on this connection: done.
    Acked { receipt: bool },
    /// A message that is pending, but was sent on another connection: ignored (docs/protocols.md,
    /// "CCS: upstream messages").
    OtherConnection,
    /// No such pending message.
    Unknown,
}

/// The result of queueing an upstream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dispatch {
    /// Written to an open connection.
    Sent,
    /// Queued until a connection of the sender logs in.
    Queued,
}

/// A connection's row in `GET /emulator/xmpp/connections`.
#[derive(Debug, Serialize)]
pub(crate) struct ConnView {
    id: u64,
    sender_id: String,
    jid: String,
    draining: bool,
    pending: usize,
    max_pending: usize,
    downstream: u64,
}

/// Every sender's connections and pending upstream traffic.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    senders: Mutex<HashMap<Arc<str>, SenderHub>>,
    next_conn: AtomicU64,
}

impl Hub {
    /// A fresh connection id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a logged-in connection and hands it every upstream message of its sender that is
    /// not on another open connection. Returns how many were redelivered.
    pub(crate) fn register(&self, sender: &Arc<str>, conn: ConnHandle) -> u64 {
        let mut senders = self.senders.lock();
        let hub = senders.entry(sender.clone()).or_default();
        let mut redelivered = 0;
        for p in hub.upstream.iter_mut().filter(|p| p.on_conn.is_none()) {
            if conn.tx.send(Outbound::Upstream(p.xml.clone())).is_ok() {
                p.on_conn = Some(conn.id);
                if p.sends > 0 {
                    redelivered += 1;
                }
                p.sends += 1;
            }
        }
        hub.conns.push(conn);
        redelivered
    }

    /// Removes a connection that ended; its unacked upstream messages go to another open
    /// connection of the sender, or wait. Returns how many were redelivered at once.
    pub(crate) fn unregister(&self, sender: &Arc<str>, conn_id: u64) -> u64 {
        let mut senders = self.senders.lock();
        let Some(hub) = senders.get_mut(sender) else {
            return 0;
        };
        hub.conns.retain(|c| c.id != conn_id);
        let mut redelivered = 0;
        let mut orphans: Vec<usize> = Vec::new();
        for (i, p) in hub.upstream.iter_mut().enumerate() {
            if p.on_conn == Some(conn_id) {
                p.on_conn = None;
                orphans.push(i);
            }
        }
        for i in orphans {
            let Some(conn) = hub.pick() else { break };
            let p = &mut hub.upstream[i];
            if conn.tx.send(Outbound::Upstream(p.xml.clone())).is_ok() {
                p.on_conn = Some(conn.id);
                p.sends += 1;
                redelivered += 1;
            }
        }
        redelivered
    }

    /// Queues an upstream message or receipt for `sender` and writes it to one of its open
    /// connections, if any.
    pub(crate) fn enqueue(
        &self,
        sender: &Arc<str>,
        message_id: Arc<str>,
        xml: Arc<str>,
        receipt: bool,
    ) -> Dispatch {
        let mut senders = self.senders.lock();
        let hub = senders.entry(sender.clone()).or_default();
        let mut pending = Pending {
            message_id,
            xml,
            on_conn: None,
            sends: 0,
            receipt,
        };
        let dispatch = match hub.pick() {
            Some(conn)
                if conn
                    .tx
                    .send(Outbound::Upstream(pending.xml.clone()))
                    .is_ok() =>
            {
                pending.on_conn = Some(conn.id);
                pending.sends = 1;
                Dispatch::Sent
            }
            _ => Dispatch::Queued,
        };
        hub.upstream.push(pending);
        dispatch
    }

    /// An app server acked `message_id` on connection `conn_id`.
    pub(crate) fn ack(&self, sender: &Arc<str>, conn_id: u64, message_id: &str) -> AckMatch {
        let mut senders = self.senders.lock();
        let Some(hub) = senders.get_mut(sender) else {
            return AckMatch::Unknown;
        };
        let Some(i) = hub
            .upstream
            .iter()
            .position(|p| &*p.message_id == message_id)
        else {
            return AckMatch::Unknown;
        };
        if hub.upstream[i].on_conn != Some(conn_id) {
            return AckMatch::OtherConnection;
        }
        let p = hub.upstream.remove(i);
        AckMatch::Acked { receipt: p.receipt }
    }

    /// Upstream messages and receipts of `sender` not acked yet.
    pub(crate) fn unacked(&self, sender: &str) -> usize {
        self.senders
            .lock()
            .get(sender)
            .map_or(0, |h| h.upstream.len())
    }

    /// The open connections of `sender`.
    pub(crate) fn connections(&self, sender: &str) -> Vec<ConnHandle> {
        self.senders
            .lock()
            .get(sender)
            .map(|h| h.conns.clone())
            .unwrap_or_default()
    }

    /// Every open connection, for the control API.
    pub(crate) fn views(&self) -> Vec<ConnView> {
        let senders = self.senders.lock();
        let mut views: Vec<ConnView> = senders
            .iter()
            .flat_map(|(sender, hub)| {
                hub.conns.iter().map(move |c| ConnView {
                    id: c.id,
                    sender_id: sender.to_string(),
                    jid: c.jid.to_string(),
                    draining: c.draining.load(Ordering::Relaxed),
                    pending: c.counters.pending.load(Ordering::Relaxed),
                    max_pending: c.counters.max_pending.load(Ordering::Relaxed),
                    downstream: c.counters.downstream.load(Ordering::Relaxed),
                })
            })
            .collect();
        views.sort_by_key(|v| v.id);
        views
    }

    /// Forgets every pending upstream message (connections stay).
    pub(crate) fn reset(&self) {
        for hub in self.senders.lock().values_mut() {
            hub.upstream.clear();
        }
    }
}
