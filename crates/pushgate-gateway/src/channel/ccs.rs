//! CCS: downstream messages over XMPP, at most a window of them unacknowledged per
//! connection. The connection pool is opened on first use and reopened after a failure.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use pushgate_client::RetryPolicy;
use pushgate_client::ccs::{CcsClient, CcsConfig, CcsMessage, Upstream};
use pushgate_proto::{FailureScope, Outcome, ValidationError};
use tokio::sync::{Mutex, mpsc};

use super::convert::{legacy_notification, legacy_priority};
use super::{Channel, PLACEHOLDER_TOKEN, all};
use crate::config::{ChannelKind, ChannelSettings, ChannelSpec};
use crate::message::Payload;

/// Longest wait for one ack; beyond it the message is retried later from the queue.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// A CCS channel: one sender id and key.
pub(super) struct CcsChannel {
    config: CcsConfig,
    client: Mutex<Option<CcsClient>>,
    /// Where upstream messages and receipts go (each acked by whoever handles it); without
    /// one they are left unacked and CCS keeps them.
    upstream: Option<mpsc::Sender<Upstream>>,
    receipts: bool,
    capacity: usize,
}

impl CcsChannel {
    pub(super) fn new(spec: &ChannelSpec, upstream: Option<mpsc::Sender<Upstream>>) -> Self {
        let (host, port, sender_id, ca_pem, connections, window, receipts) = match &spec.settings {
            ChannelSettings::Ccs {
                host,
                port,
                sender_id,
                ca_pem,
                connections,
                window,
                receipts,
                ..
            } => (
                host.clone(),
                *port,
                sender_id.clone(),
                ca_pem.clone(),
                *connections,
                *window,
                *receipts,
            ),
            _ => (String::new(), 0, String::new(), None, 1, 1, false),
        };
        let mut config = CcsConfig::new(host, port, sender_id, spec.credential.expose())
            .with_connections(connections)
            .with_window(window)
            // One attempt: SERVICE_UNAVAILABLE goes back to the queue.
            .with_retry(RetryPolicy::default().with_max_attempts(1));
        if let Some(pem) = ca_pem {
            config = config.with_ca_pem(pem);
        }
        Self {
            config,
            client: Mutex::new(None),
            upstream,
            receipts,
            capacity: (connections * window).max(1),
        }
    }

    /// The connected client, connecting first if needed.
    async fn client(&self) -> Result<CcsClient, Outcome> {
        let mut guard = self.client.lock().await;
        if let Some(client) = guard.as_ref() {
            return Ok(client.clone());
        }
        match CcsClient::connect(self.config.clone()).await {
            Ok((client, mut upstream)) => {
                *guard = Some(client.clone());
                if let Some(tx) = self.upstream.clone() {
                    tokio::spawn(async move {
                        while let Some(item) = upstream.recv().await {
                            // A full handler applies back-pressure; a gone one leaves the
                            // rest unacked for CCS to redeliver.
                            if tx.send(item).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                Ok(client)
            }
            Err(e) if e.is_auth_failure() => Err(Outcome::AuthFailed {
                reason: format!("CCS login refused: {e}"),
            }),
            Err(e) => Err(Outcome::RetryLater {
                reason: format!("CCS unreachable: {e}"),
                after: None,
                scope: FailureScope::Channel,
            }),
        }
    }
}

/// How one send ended: with an outcome, or with the client closed under it (the pool must be
/// reopened).
enum Sent {
    Answered(Outcome),
    ClientGone(Outcome),
}

impl Sent {
    fn into_outcome(self) -> Outcome {
        match self {
            Sent::Answered(o) | Sent::ClientGone(o) => o,
        }
    }
}

/// The CCS message of a payload to one token.
fn ccs_message(p: &Payload, token: &str, receipt: bool) -> CcsMessage {
    let mut m = CcsMessage::to(token).data_map(p.data_object());
    if let Some(n) = &p.notification {
        m = m.notification(legacy_notification(n));
    }
    if let Some(key) = &p.collapse_key {
        m = m.collapse_key(key.clone());
    }
    if let Some(pr) = p.priority {
        m = m.priority(legacy_priority(pr));
    }
    m = m.time_to_live(p.ttl_secs);
    if receipt {
        m = m.delivery_receipt();
    }
    if p.dry_run { m.dry_run() } else { m }
}

#[async_trait]
impl Channel for CcsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Ccs
    }

    fn batch_size(&self) -> usize {
        self.capacity.min(500)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn check(&self, p: &Payload) -> Result<(), ValidationError> {
        ccs_message(p, PLACEHOLDER_TOKEN, false).validate()
    }

    async fn open(&self) -> Result<(), String> {
        self.client()
            .await
            .map(|_| ())
            .map_err(|o| o.reason().unwrap_or("cannot connect to CCS").to_string())
    }

    async fn send(&self, p: &Payload, tokens: &[String]) -> Vec<Outcome> {
        let client = match self.client().await {
            Ok(c) => c,
            Err(outcome) => return all(outcome, tokens.len()),
        };
        let sends = tokens.iter().map(|token| {
            let client = client.clone();
            let message = ccs_message(p, token, self.receipts);
            async move {
                match tokio::time::timeout(ACK_TIMEOUT, client.send(message)).await {
                    Ok(Ok(outcome)) => Sent::Answered(outcome),
                    Ok(Err(e)) => Sent::ClientGone(Outcome::RetryLater {
                        reason: format!("CCS: {e}"),
                        after: None,
                        scope: FailureScope::Channel,
                    }),
                    // One message's ack is missing; the others on the connection may be fine.
                    Err(_) => Sent::Answered(Outcome::RetryLater {
                        reason: "CCS ack timeout".into(),
                        after: None,
                        scope: FailureScope::Token,
                    }),
                }
            }
        });
        let sent = join_all(sends).await;
        if sent.iter().any(|s| matches!(s, Sent::ClientGone(_))) {
            // The client was closed under us: open a new pool next time.
            self.client.lock().await.take();
        }
        sent.into_iter().map(Sent::into_outcome).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[tokio::test]
    async fn an_unreachable_ccs_concerns_the_whole_channel() {
        // Nothing listens on port 9 of loopback.
        let spec = ChannelSpec {
            name: "ccs".into(),
            endpoint: "127.0.0.1:9".into(),
            credential: Secret::new("api-key", "inline"),
            max_in_flight: 1,
            settings: ChannelSettings::Ccs {
                host: "127.0.0.1".into(),
                port: 9,
                sender_id: "1".into(),
                ca_pem: None,
                connections: 1,
                window: 2,
                echo: false,
                receipts: false,
            },
        };
        let channel = CcsChannel::new(&spec, None);
        let tokens = ["a".to_string(), "b".to_string()];
        let outcomes = channel.send(&Payload::default(), &tokens).await;
        assert_eq!(outcomes.len(), 2);
        for o in &outcomes {
            assert!(o.is_retriable(), "{o:?}");
            assert_eq!(o.scope(), Some(FailureScope::Channel), "{o:?}");
        }
    }
}
