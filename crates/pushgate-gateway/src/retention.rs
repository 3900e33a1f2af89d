//! The retention task: every `retention.interval`, deletes each stored app's history older
//! than its limits ([`RetentionSettings`]) through [`Store::purge`], one batch per call, until
//! a call leaves nothing more (no table gave a full batch). Each batch is its own short
//! transaction (on SQLite one job of the batching writer, between the API's writes) and the
//! task pauses briefly between batches, so cleanup never holds the database for long.
//!
//! Every instance sharing a PostgreSQL database runs it: its deletes are idempotent (a row
//! another instance deleted first is simply not counted), so no lease is needed.

use std::sync::Arc;
use std::time::Duration;

use pushgate_store::{PurgeLimits, PurgeReport, Store};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{RetentionLimits, RetentionSettings};

/// The pause between two batches of one pass: other writers get the database in between.
const BATCH_PAUSE: Duration = Duration::from_millis(20);

/// Deletes old history until stopped.
pub struct Retention {
    /// The database.
    pub store: Arc<dyn Store>,
    /// The limits and the pace.
    pub settings: RetentionSettings,
    /// Ends the loop (between two batches).
    pub stop: CancellationToken,
}

impl Retention {
    /// The loop: a pass every `interval`, the first one interval after start (once the
    /// webhook senders have created their cursors, which hold back the events they still
    /// need), until `stop`.
    pub async fn run(self) {
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(self.settings.interval) => {}
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "retention: cannot delete old history; trying again next interval");
            }
        }
    }

    /// One pass over every app stored (also apps no longer configured: their history ages out
    /// under the default limits); what it deleted, over all apps.
    pub async fn pass(&self) -> pushgate_store::Result<PurgeReport> {
        let mut total = PurgeReport::default();
        for app in self.store.apps().await? {
            if self.stop.is_cancelled() {
                break;
            }
            let limits = self.settings.limits_for(&app.name);
            if limits.keeps_everything() {
                continue;
            }
            let report = self.purge_app(&app.name, &limits).await?;
            if !report.is_empty() {
                tracing::info!(
                    app = %app.name,
                    messages = report.messages,
                    deliveries = report.deliveries,
                    events = report.events,
                    devices = report.devices,
                    "retention: deleted old history"
                );
            }
            total.add(&report);
        }
        Ok(total)
    }

    /// Purges one app batch by batch until a batch leaves nothing more (or `stop`).
    async fn purge_app(
        &self,
        app: &str,
        limits: &RetentionLimits,
    ) -> pushgate_store::Result<PurgeReport> {
        let limits = PurgeLimits {
            messages: limits.messages,
            events: limits.events,
            invalid_devices: limits.invalid_devices,
            batch: self.settings.batch,
        };
        let mut total = PurgeReport::default();
        loop {
            let report = self
                .store
                .purge(app, &limits, OffsetDateTime::now_utc())
                .await?;
            tracing::debug!(%app, ?report, "retention: one batch");
            total.add(&report);
            if !report.more_left(limits.batch) {
                return Ok(total);
            }
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(total),
                _ = tokio::time::sleep(BATCH_PAUSE) => {}
            }
        }
    }
}
