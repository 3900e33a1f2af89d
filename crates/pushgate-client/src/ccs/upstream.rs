//! Upstream messages and delivery receipts, handed to the application with an [`AckHandle`]:
//! the ack goes to CCS only after the application accepted the message (at-least-once), and
//! redeliveries of recently seen ids are suppressed.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use pushgate_proto::ccs::{AppAck, Receipt, UpstreamMessage};
use pushgate_xmpp::GcmMessage;
use tokio::sync::mpsc;

use super::client::Shared;

/// What came from CCS for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// A device sent a message (docs/protocols.md, "CCS: upstream messages").
    Message(UpstreamMessage),
    /// A downstream message sent with `delivery_receipt_requested` reached its device
    /// (docs/protocols.md, "CCS: delivery receipts").
    Receipt(Receipt),
}

impl UpstreamEvent {
    /// The id CCS will be acked with.
    pub fn message_id(&self) -> &str {
        match self {
            UpstreamEvent::Message(m) => &m.message_id,
            UpstreamEvent::Receipt(r) => &r.message_id,
        }
    }
}

/// One upstream message or receipt and the means to acknowledge it.
#[derive(Debug)]
pub struct Upstream {
    /// The message.
    pub event: UpstreamEvent,
    /// Call [`AckHandle::ack`] once the message is safely handled.
    pub ack: AckHandle,
}

impl Upstream {
    /// Acknowledges the message to CCS (shorthand for `self.ack.ack()`).
    pub fn ack(self) {
        self.ack.ack();
    }
}

/// Acknowledges one upstream message to CCS. Dropping it without [`AckHandle::ack`] leaves
/// the message unacked: CCS redelivers it (after a reconnect) and the application sees it
/// again.
pub struct AckHandle {
    shared: Arc<Shared>,
    message_id: String,
    done: bool,
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckHandle")
            .field("message_id", &self.message_id)
            .field("done", &self.done)
            .finish()
    }
}

impl AckHandle {
    /// Marks the message accepted and sends the ack on the connection it last arrived on.
    pub fn ack(mut self) {
        self.done = true;
        self.shared.upstream.lock().accept(&self.message_id);
    }
}

impl Drop for AckHandle {
    fn drop(&mut self) {
        if !self.done {
            self.shared.upstream.lock().forget(&self.message_id);
        }
    }
}

/// Upstream messages and receipts, in arrival order; ends when the client is closed.
#[derive(Debug)]
pub struct UpstreamStream {
    rx: mpsc::UnboundedReceiver<Upstream>,
}

impl UpstreamStream {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<Upstream>) -> Self {
        UpstreamStream { rx }
    }

    /// The next upstream message or receipt; `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<Upstream> {
        self.rx.recv().await
    }
}

impl Stream for UpstreamStream {
    type Item = Upstream;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Upstream>> {
        self.rx.poll_recv(cx)
    }
}

enum State {
    /// Handed to the application, not acked yet; the ack goes to `writer` (the connection
    /// the message last arrived on) with `to`.
    Pending {
        writer: mpsc::UnboundedSender<String>,
        to: String,
    },
    /// Acked.
    Accepted,
}

/// The ids seen recently and what became of them.
pub(crate) struct Tracker {
    states: HashMap<String, State>,
    order: VecDeque<String>,
    capacity: usize,
    /// Redeliveries not handed to the application again.
    pub duplicates: u64,
}

fn ack_xml(to: &str, message_id: &str) -> String {
    let json = AppAck {
        to: to.to_string(),
        message_id: message_id.to_string(),
    }
    .to_json();
    GcmMessage::new(json).to_xml()
}

/// What to do with an arriving upstream message.
pub(crate) enum Arrival {
    /// New: give it to the application.
    Deliver,
    /// Seen before: already handled.
    Suppressed,
}

impl Tracker {
    pub(crate) fn new(capacity: usize) -> Self {
        Tracker {
            states: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            duplicates: 0,
        }
    }

    /// An upstream message `message_id` from `from` arrived on the connection behind `writer`.
    pub(crate) fn arrived(
        &mut self,
        writer: &mpsc::UnboundedSender<String>,
        from: &str,
        message_id: &str,
    ) -> Arrival {
        match self.states.get_mut(message_id) {
            Some(State::Accepted) => {
                // Our ack was lost: ack the redelivery on the connection it came on.
                self.duplicates += 1;
                let _ = writer.send(ack_xml(from, message_id));
                Arrival::Suppressed
            }
            Some(State::Pending { writer: w, .. }) => {
                // Still with the application; its ack must go to the new connection.
                self.duplicates += 1;
                *w = writer.clone();
                Arrival::Suppressed
            }
            None => {
                self.states.insert(
                    message_id.to_string(),
                    State::Pending {
                        writer: writer.clone(),
                        to: from.to_string(),
                    },
                );
                self.order.push_back(message_id.to_string());
                while self.order.len() > self.capacity {
                    if let Some(old) = self.order.pop_front() {
                        self.states.remove(&old);
                    }
                }
                Arrival::Deliver
            }
        }
    }

    fn accept(&mut self, message_id: &str) {
        if let Some(state) = self.states.get_mut(message_id) {
            if let State::Pending { writer, to } = state {
                let _ = writer.send(ack_xml(to, message_id));
            }
            *state = State::Accepted;
        }
    }

    fn forget(&mut self, message_id: &str) {
        if let Some(State::Pending { .. }) = self.states.get(message_id) {
            self.states.remove(message_id);
            self.order.retain(|id| id != message_id);
        }
    }
}

/// Builds the handle for a delivered message.
pub(crate) fn handle(shared: &Arc<Shared>, message_id: String) -> AckHandle {
    AckHandle {
        shared: shared.clone(),
        message_id,
        done: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeliveries_are_suppressed_and_acked() {
        let mut t = Tracker::new(2);
        let (w1, mut r1) = mpsc::unbounded_channel();
        let (w2, mut r2) = mpsc::unbounded_channel();
        assert!(matches!(t.arrived(&w1, "tok", "m1"), Arrival::Deliver));
        // Redelivered on a new connection before the app acked: suppressed, ack goes to w2.
        assert!(matches!(t.arrived(&w2, "tok", "m1"), Arrival::Suppressed));
        t.accept("m1");
        assert!(r1.try_recv().is_err());
        let ack = r2.try_recv().unwrap();
        assert!(ack.contains(r#""message_id":"m1""#) && ack.contains(r#""to":"tok""#));
        // Redelivered after the ack: acked again at once.
        assert!(matches!(t.arrived(&w1, "tok", "m1"), Arrival::Suppressed));
        assert!(r1.try_recv().is_ok());
        assert_eq!(t.duplicates, 2);
        // Forgotten (handle dropped without ack): delivered again.
        assert!(matches!(t.arrived(&w1, "tok", "m2"), Arrival::Deliver));
        t.forget("m2");
        assert!(matches!(t.arrived(&w1, "tok", "m2"), Arrival::Deliver));
        // Capacity: the oldest ids fall out.
        assert!(matches!(t.arrived(&w1, "tok", "m3"), Arrival::Deliver));
        assert!(matches!(t.arrived(&w1, "tok", "m4"), Arrival::Deliver));
        assert!(!t.states.contains_key("m2"));
    }
}
