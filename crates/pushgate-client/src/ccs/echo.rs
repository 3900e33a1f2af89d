//! The classic CCS echo server: ack every upstream message and send the device a downstream
//! message with the same data. Run by `pushgate ccs-echo`.

use tokio::task::JoinSet;

use super::{CcsClient, CcsMessage, UpstreamEvent, UpstreamStream};

/// What [`run`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoSummary {
    /// Upstream messages handed to an echo send (each is acked once CCS answered the echo).
    pub echoed: u64,
    /// Delivery receipts acked.
    pub receipts: u64,
}

/// Echoes until the upstream stream ends (the client was closed). Each upstream message is
/// acked once its echo got an answer from CCS (so a crash in between redelivers it).
pub async fn run(client: CcsClient, mut upstream: UpstreamStream) -> EchoSummary {
    let mut summary = EchoSummary::default();
    let mut tasks = JoinSet::new();
    while let Some(message) = upstream.recv().await {
        match &message.event {
            UpstreamEvent::Receipt(r) => {
                tracing::info!(original = %r.data.original_message_id, "delivery receipt");
                summary.receipts += 1;
                message.ack();
            }
            UpstreamEvent::Message(m) => {
                let reply = CcsMessage::to(m.from.clone()).data_map(m.data.clone());
                let client = client.clone();
                summary.echoed += 1;
                tasks.spawn(async move {
                    match client.send(reply).await {
                        Ok(outcome) => {
                            tracing::info!(?outcome, "echoed");
                            message.ack();
                        }
                        // Closed: leave it unacked; CCS redelivers it to the next run.
                        Err(e) => tracing::warn!(error = %e, "echo not sent"),
                    }
                });
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    summary
}
