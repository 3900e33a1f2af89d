//! This process among the gateway instances sharing one database: its id (in its start-up
//! log line, its metrics and as the owner of the webhook leases it takes) and a heartbeat that
//! counts the instances alive, so that a provider's per-project rate (FCM v1's quota) is
//! divided between them: each paces at `rate_per_minute / instances alive`.

use std::sync::Arc;
use std::time::Duration;

use pushgate_store::Store;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::worker::ChannelSet;

/// How often an instance beats.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long an instance that stopped beating still counts (three beats missed).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(15);

/// The configured id, or `<host>-<pid>-<4 random hex>`: unique among instances, readable in a
/// log line.
pub fn instance_id(configured: Option<&str>) -> String {
    if let Some(id) = configured.map(str::trim).filter(|id| !id.is_empty()) {
        return id.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pushgate".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..4])
}

/// Beats until `stop`, then leaves the count.
pub struct Heartbeat {
    /// This instance.
    pub id: String,
    /// The shared database.
    pub store: Arc<dyn Store>,
    /// The channels whose budgets are shared.
    pub channels: ChannelSet,
    /// Where the count is shown.
    pub metrics: Arc<Metrics>,
    /// Ends the loop.
    pub stop: CancellationToken,
}

impl Heartbeat {
    /// The loop: beat, share the budgets, wait.
    pub async fn run(self) {
        let mut last = 0;
        loop {
            match self
                .store
                .heartbeat(&self.id, OffsetDateTime::now_utc(), HEARTBEAT_TTL)
                .await
            {
                Ok(alive) => {
                    if alive != last {
                        tracing::info!(instance = %self.id, alive, "gateway instances sharing the database");
                        for (_, _, entry) in self.channels.iter() {
                            entry.channel.share_budget(alive);
                        }
                        self.metrics.instance.set_alive(alive);
                        last = alive;
                    }
                }
                Err(e) => tracing::warn!(instance = %self.id, error = %e, "heartbeat failed"),
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
        if let Err(e) = self.store.leave(&self.id).await {
            tracing::warn!(instance = %self.id, error = %e, "could not leave the instance count");
        }
    }
}
