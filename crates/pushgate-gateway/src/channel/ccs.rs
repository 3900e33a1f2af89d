//! CCS: downstream messages over XMPP, at most a window of them unacknowledged per
//! connection. The connection pool is opened on first use and reopened after a failure.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use pushgate_client::RetryPolicy;
use pushgate_client::ccs::{CcsClient, CcsConfig, CcsMessage, UpstreamStream};
use pushgate_proto::{Outcome, ValidationError};
use tokio::sync::Mutex;

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
    /// Upstream messages and receipts, held until something consumes them (left unacked,
    /// CCS keeps and redelivers them).
    upstream: Mutex<Option<UpstreamStream>>,
    capacity: usize,
}

impl CcsChannel {
    pub(super) fn new(spec: &ChannelSpec) -> Self {
        let (host, port, sender_id, ca_pem, connections, window) = match &spec.settings {
            ChannelSettings::Ccs {
                host,
                port,
                sender_id,
                ca_pem,
                connections,
                window,
            } => (
                host.clone(),
                *port,
                sender_id.clone(),
                ca_pem.clone(),
                *connections,
                *window,
            ),
            _ => (String::new(), 0, String::new(), None, 1, 1),
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
            upstream: Mutex::new(None),
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
            Ok((client, upstream)) => {
                *guard = Some(client.clone());
                *self.upstream.lock().await = Some(upstream);
                Ok(client)
            }
            Err(e) if e.is_auth_failure() => Err(Outcome::AuthFailed {
                reason: format!("CCS login refused: {e}"),
            }),
            Err(e) => Err(Outcome::RetryLater {
                reason: format!("CCS unreachable: {e}"),
                after: None,
            }),
        }
    }
}

/// The CCS message of a payload to one token.
fn ccs_message(p: &Payload, token: &str) -> CcsMessage {
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

    fn concurrency(&self) -> usize {
        self.capacity.div_ceil(self.batch_size()) + 1
    }

    fn check(&self, p: &Payload) -> Result<(), ValidationError> {
        ccs_message(p, PLACEHOLDER_TOKEN).validate()
    }

    async fn send(&self, p: &Payload, tokens: &[String]) -> Vec<Outcome> {
        let client = match self.client().await {
            Ok(c) => c,
            Err(outcome) => return all(outcome, tokens.len()),
        };
        let sends = tokens.iter().map(|token| {
            let client = client.clone();
            let message = ccs_message(p, token);
            async move {
                match tokio::time::timeout(ACK_TIMEOUT, client.send(message)).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => Outcome::RetryLater {
                        reason: format!("CCS: {e}"),
                        after: None,
                    },
                    Err(_) => Outcome::RetryLater {
                        reason: "CCS ack timeout".into(),
                        after: None,
                    },
                }
            }
        });
        let outcomes = join_all(sends).await;
        if outcomes
            .iter()
            .any(|o| matches!(o, Outcome::RetryLater { reason, .. } if reason.starts_with("CCS: ")))
        {
            // The client was closed under us: open a new pool next time.
            self.client.lock().await.take();
        }
        outcomes
    }
}
