//! Upstream messages and delivery receipts from CCS: each is recorded as an event, and only
//! once the commit succeeded is it acked to CCS (a crash before that means CCS redelivers it,
//! and the stanza id keeps it from being recorded twice). With `echo`, every upstream message
//! is answered with its own data, through the durable queue, as the classic echo server did.

use std::sync::Arc;
use std::time::Duration;

use pushgate_client::ccs::{Upstream, UpstreamEvent};
use pushgate_proto::token::short_token;
use pushgate_store::{EventKind, NewMessage, Store, Targets, UpstreamRecord};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{info, warn};
use uuid::Uuid;

use crate::event_wakeup::EventWakeup;
use crate::message::Payload;
use crate::metrics::Metrics;
use crate::worker::ChannelSet;

/// Where one CCS channel's upstream traffic is handled.
pub struct UpstreamHandler {
    /// The app.
    pub app: String,
    /// The CCS channel.
    pub channel: String,
    /// Answer upstream messages with their data.
    pub echo: bool,
    /// TTL of echo messages, in seconds.
    pub echo_ttl: u32,
    /// The durable state.
    pub store: Arc<dyn Store>,
    /// Wakes event followers.
    pub events_wakeup: EventWakeup,
    /// Wakes the channel's worker for echoes.
    pub channels: ChannelSet,
    /// Counts.
    pub metrics: Arc<Metrics>,
    /// Stops it (what is not recorded yet stays unacked: CCS redelivers it).
    pub stop: tokio_util::sync::CancellationToken,
}

fn record_of(event: &UpstreamEvent) -> UpstreamRecord {
    match event {
        UpstreamEvent::Message(m) => UpstreamRecord {
            kind: EventKind::UpstreamMessage,
            from_token: Some(m.from.clone()),
            original_message_id: None,
            data: json!({
                "from": m.from,
                "category": m.category,
                "message_id": m.message_id,
                "time_to_live": m.time_to_live,
                "data": m.data,
            }),
            dedup_key: format!("upstream:{}", m.message_id),
            require_link: false,
        },
        UpstreamEvent::Receipt(r) => UpstreamRecord {
            kind: EventKind::DeliveryReceipt,
            from_token: Some(r.data.device_registration_id.clone()),
            original_message_id: Some(r.data.original_message_id.clone()),
            data: json!({
                "status": r.data.message_status,
                "token": r.data.device_registration_id,
                "original_message_id": r.data.original_message_id,
                "sent_at_ms": r.data.message_sent_timestamp,
                "category": r.category,
            }),
            dedup_key: format!("receipt:{}", r.message_id),
            require_link: true,
        },
    }
}

/// How often, and how far apart, a receipt waits for its delivery's answer to be committed
/// (CCS may report the delivery before the ack's batch is recorded).
const LINK_TRIES: u32 = 10;
const LINK_WAIT: Duration = Duration::from_millis(200);

impl UpstreamHandler {
    /// Handles items until the channel's upstream ends (the gateway stops).
    pub async fn run(self, mut rx: mpsc::Receiver<Upstream>) {
        loop {
            let item = tokio::select! {
                _ = self.stop.cancelled() => return,
                item = rx.recv() => match item {
                    Some(item) => item,
                    None => return,
                },
            };
            let record = record_of(&item.event);
            let kind = record.kind;
            match self.record(record).await {
                Ok(recorded) => {
                    if recorded.is_some() {
                        self.events_wakeup.notify();
                        self.metrics.upstream(&self.app, &self.channel, kind);
                    }
                    if let (true, UpstreamEvent::Message(m)) = (self.echo, &item.event) {
                        self.echo(m).await;
                    }
                    item.ack();
                }
                // Not acked: CCS keeps it and redelivers it on a later connection.
                Err(e) => warn!(app = %self.app, error = %e, "cannot record an upstream message"),
            }
        }
    }

    /// Records one item; a receipt waits a little for its delivery to be committed, and is
    /// recorded unlinked if it never is.
    async fn record(
        &self,
        mut record: UpstreamRecord,
    ) -> Result<Option<pushgate_store::Event>, pushgate_store::StoreError> {
        let mut tries = 0;
        loop {
            match self
                .store
                .record_upstream(&self.app, record.clone(), OffsetDateTime::now_utc())
                .await
            {
                Err(pushgate_store::StoreError::NotFound) if record.require_link => {
                    tries += 1;
                    if tries >= LINK_TRIES {
                        record.require_link = false;
                    }
                    tokio::time::sleep(LINK_WAIT).await;
                }
                other => return other,
            }
        }
    }

    /// Queues the echo of an upstream message (once per upstream id, however often it is
    /// redelivered).
    async fn echo(&self, m: &pushgate_proto::ccs::UpstreamMessage) {
        let data = m
            .data
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        let payload = Payload {
            data,
            ttl_secs: self.echo_ttl,
            ..Default::default()
        };
        let msg = NewMessage {
            id: Uuid::now_v7(),
            app: self.app.clone(),
            payload: payload.to_json(),
            channel_override: Some(self.channel.clone()),
            default_channel: self.channel.clone(),
            ttl_secs: i64::from(self.echo_ttl.max(1)),
            idempotency_key: Some(format!("echo:{}", m.message_id)),
            request_hash: None,
            created_at: OffsetDateTime::now_utc(),
            channels: None,
        };
        let targets = Targets {
            tokens: vec![m.from.clone()],
            ..Default::default()
        };
        match self.store.insert_message(msg, &targets).await {
            Ok(out) => {
                if !out.duplicate {
                    self.channels.wake(&self.app, &self.channel);
                    info!(app = %self.app, to = %short_token(&m.from), "echo queued");
                }
            }
            Err(e) => warn!(app = %self.app, error = %e, "cannot queue an echo"),
        }
    }
}
