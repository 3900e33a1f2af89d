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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pushgate_proto::outcome::Outcome;
    use pushgate_store::{Completion, NewDevice, NewMessage, SqliteStore, Targets};

    use super::*;

    /// A store with apps `a` and `b`, each with `n` finished messages accepted an hour ago.
    async fn store_with_old_messages(n: usize) -> Arc<dyn Store> {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
        for app in ["a", "b"] {
            s.upsert_app(app, app == "a").await.unwrap();
            let device = NewDevice {
                device_id: "d".into(),
                token: format!("token-{app}"),
                ..Default::default()
            };
            s.put_device(app, device, hour_ago).await.unwrap();
            for _ in 0..n {
                let m = NewMessage {
                    id: uuid::Uuid::now_v7(),
                    app: app.into(),
                    payload: serde_json::json!({"data": {}}),
                    channel_override: None,
                    default_channel: "main".into(),
                    ttl_secs: 600,
                    idempotency_key: None,
                    request_hash: None,
                    created_at: hour_ago,
                    channels: None,
                };
                let to = Targets {
                    device_ids: vec!["d".into()],
                    ..Default::default()
                };
                s.insert_message(m, &to).await.unwrap();
            }
            let claimed = s
                .claim_due(app, "main", hour_ago, 100, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(claimed.len(), n);
            let done = claimed
                .iter()
                .map(|d| Completion {
                    delivery_id: d.id,
                    attempt: d.attempts,
                    outcome: Outcome::Delivered {
                        message_id: "p".into(),
                    },
                    retry_at: None,
                })
                .collect();
            s.complete(done, hour_ago).await.unwrap();
        }
        Arc::new(s)
    }

    #[tokio::test]
    async fn a_pass_deletes_batch_after_batch_until_done_under_each_apps_limits() {
        let store = store_with_old_messages(5).await;
        let minute = RetentionLimits {
            messages: Some(Duration::from_secs(60)),
            events: None,
            invalid_devices: None,
        };
        let task = Retention {
            store: store.clone(),
            settings: RetentionSettings {
                default: minute,
                // `b` keeps its messages for a day: an hour-old one stays.
                apps: BTreeMap::from([(
                    "b".to_string(),
                    RetentionLimits {
                        messages: Some(Duration::from_secs(24 * 3600)),
                        ..minute
                    },
                )]),
                batch: 2,
                interval: Duration::from_secs(60),
            },
            stop: CancellationToken::new(),
        };
        let report = task.pass().await.unwrap();
        assert_eq!((report.messages, report.deliveries), (5, 5), "{report:?}");
        let a = store.purged_through("a").await.unwrap();
        assert!(a.is_some());
        assert_eq!(store.purged_through("b").await.unwrap(), None);
        // Nothing is left to delete.
        assert!(task.pass().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_stopped_task_returns_without_deleting() {
        let store = store_with_old_messages(3).await;
        let stop = CancellationToken::new();
        stop.cancel();
        let task = Retention {
            store: store.clone(),
            settings: RetentionSettings {
                // Limits that would delete every message of the store.
                default: RetentionLimits {
                    messages: Some(Duration::from_secs(60)),
                    events: None,
                    invalid_devices: None,
                },
                batch: 1,
                ..RetentionSettings::default()
            },
            stop,
        };
        task.run().await;
        assert_eq!(store.purged_through("a").await.unwrap(), None);
        assert_eq!(store.purged_through("b").await.unwrap(), None);
    }
}
