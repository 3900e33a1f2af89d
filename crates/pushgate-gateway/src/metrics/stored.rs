//! The figures the database holds, read at each scrape at a cost that does not grow with
//! history: totals the store keeps as the writes happen (deliveries by final state, events
//! by kind, rotations and invalidations among them), exported as counters; the queue's depth
//! and due age (read through the index of active deliveries) and the webhook backlog,
//! exported as gauges. Every instance sharing a database reports the same values.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use pushgate_store::{ChannelQueue, DeliveryState, EventKind, Store};
use time::OffsetDateTime;

use super::{AppLabels, ChannelLabels, EventLabels, StateLabels};

/// What one scrape read from the store, before any family is touched.
pub(super) struct Snapshot {
    now: OffsetDateTime,
    deliveries: Vec<(String, String, DeliveryState, u64)>,
    events: Vec<(String, EventKind, u64)>,
    queues: Vec<ChannelQueue>,
    /// (app, events not yet delivered, failed attempts in a row).
    hooks: Vec<(String, u64, i64)>,
}

impl Snapshot {
    /// Reads every stored figure: a fixed set of statements (one more per app with a
    /// webhook), none of which counts finished deliveries or old events.
    pub(super) async fn read(store: &dyn Store, webhook_apps: &[String]) -> Result<Self, String> {
        let now = OffsetDateTime::now_utc();
        let text = |e: pushgate_store::StoreError| e.to_string();
        let deliveries = store.delivery_counts().await.map_err(text)?;
        let queues = store.queue_by_channel(now).await.map_err(text)?;
        let events = store.event_counts().await.map_err(text)?;
        let mut hooks = Vec::new();
        for app in webhook_apps {
            if let Some(state) = store.webhook_state(app).await.map_err(text)? {
                let backlog = store
                    .count_events_after(app, state.delivered_seq)
                    .await
                    .map_err(text)?;
                hooks.push((app.clone(), backlog, state.attempts));
            }
        }
        Ok(Self {
            now,
            deliveries,
            events,
            queues,
            hooks,
        })
    }
}

/// The families filled from the store.
#[derive(Debug, Clone, Default)]
pub(super) struct StoredMetrics {
    deliveries: Family<StateLabels, Counter>,
    events: Family<EventLabels, Counter>,
    rotations: Family<AppLabels, Counter>,
    invalidations: Family<AppLabels, Counter>,
    queue_pending: Family<ChannelLabels, Gauge>,
    queue_due: Family<ChannelLabels, Gauge>,
    queue_oldest_age: Family<ChannelLabels, Gauge<f64, AtomicU64>>,
    webhook_backlog: Family<AppLabels, Gauge>,
    webhook_failures: Family<AppLabels, Gauge>,
}

/// Sets a counter to the total the database keeps (which only grows).
fn set_total(counter: &Counter, n: u64) {
    counter.inner().store(n, Ordering::Relaxed);
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl StoredMetrics {
    /// Registers every family.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "deliveries",
            "Deliveries that reached each final state (sent, failed, token_dead, expired), kept by the database as they settle",
            m.deliveries.clone(),
        );
        registry.register(
            "events",
            "Events written, by app and kind, kept by the database",
            m.events.clone(),
        );
        registry.register(
            "token_rotations",
            "Token rotations (canonical ids) recorded",
            m.rotations.clone(),
        );
        registry.register(
            "device_invalidations",
            "Devices invalidated because the provider said their token is dead",
            m.invalidations.clone(),
        );
        registry.register(
            "queue_pending",
            "Deliveries queued, waiting to retry or in flight",
            m.queue_pending.clone(),
        );
        registry.register(
            "queue_due",
            "Deliveries that may be sent now",
            m.queue_due.clone(),
        );
        registry.register(
            "queue_oldest_due_age_seconds",
            "How long the oldest due delivery has been due",
            m.queue_oldest_age.clone(),
        );
        registry.register(
            "webhook_backlog_events",
            "Events the app's webhook has not delivered yet",
            m.webhook_backlog.clone(),
        );
        registry.register(
            "webhook_failed_attempts",
            "Failed webhook attempts in a row",
            m.webhook_failures.clone(),
        );
        m
    }

    /// Puts a scrape's figures in the families (the caller makes scrapes take turns). Every
    /// configured app and channel (`configured`: each app with its channels) has its queue
    /// and registry series, at zero when empty, so dashboards never see them vanish.
    pub(super) fn apply(&self, s: Snapshot, configured: &[(String, Vec<String>)]) {
        for (app, channel, state, n) in s.deliveries {
            let labels = StateLabels {
                app,
                channel,
                state: state.as_str().to_string(),
            };
            set_total(&self.deliveries.get_or_create(&labels), n);
        }
        for (app, kind, n) in s.events {
            let labels = AppLabels { app: app.clone() };
            match kind {
                EventKind::TokenRotated => set_total(&self.rotations.get_or_create(&labels), n),
                EventKind::DeviceInvalidated => {
                    set_total(&self.invalidations.get_or_create(&labels), n)
                }
                _ => {}
            }
            let labels = EventLabels {
                app,
                kind: kind.as_str().to_string(),
            };
            set_total(&self.events.get_or_create(&labels), n);
        }
        self.queue_pending.clear();
        self.queue_due.clear();
        self.queue_oldest_age.clear();
        for q in s.queues {
            let labels = ChannelLabels {
                app: q.app,
                channel: q.channel,
            };
            self.queue_pending
                .get_or_create(&labels)
                .set(gauge_value(q.stats.pending));
            self.queue_due
                .get_or_create(&labels)
                .set(gauge_value(q.stats.due));
            let age = q
                .stats
                .oldest_due
                .map(|t| (s.now - t).as_seconds_f64().max(0.0))
                .unwrap_or(0.0);
            self.queue_oldest_age.get_or_create(&labels).set(age);
        }
        for (app, channels) in configured {
            let labels = AppLabels { app: app.clone() };
            let _ = self.rotations.get_or_create(&labels);
            let _ = self.invalidations.get_or_create(&labels);
            for channel in channels {
                let labels = ChannelLabels {
                    app: app.clone(),
                    channel: channel.clone(),
                };
                let _ = self.queue_pending.get_or_create(&labels);
                let _ = self.queue_due.get_or_create(&labels);
                let _ = self.queue_oldest_age.get_or_create(&labels);
            }
        }
        self.webhook_backlog.clear();
        self.webhook_failures.clear();
        for (app, backlog, attempts) in s.hooks {
            let labels = AppLabels { app };
            self.webhook_backlog
                .get_or_create(&labels)
                .set(gauge_value(backlog));
            self.webhook_failures.get_or_create(&labels).set(attempts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(sent: u64, rotated: u64) -> Snapshot {
        Snapshot {
            now: OffsetDateTime::UNIX_EPOCH,
            deliveries: vec![("a".into(), "c".into(), DeliveryState::Sent, sent)],
            events: vec![("a".into(), EventKind::TokenRotated, rotated)],
            queues: Vec::new(),
            hooks: Vec::new(),
        }
    }

    #[test]
    fn counters_show_the_database_totals_however_often_scraped() {
        let mut registry = Registry::with_prefix("pushgate");
        let m = StoredMetrics::register(&mut registry);
        let configured = [("a".to_string(), vec!["c".to_string()])];
        for (sent, rotated) in [(5, 1), (5, 1), (9, 2)] {
            m.apply(snapshot(sent, rotated), &configured);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("# TYPE pushgate_deliveries counter"), "{out}");
        assert!(
            out.contains(r#"pushgate_deliveries_total{app="a",channel="c",state="sent"} 9"#),
            "{out}"
        );
        assert!(
            out.contains(r#"pushgate_events_total{app="a",kind="token_rotated"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"pushgate_token_rotations_total{app="a"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"pushgate_device_invalidations_total{app="a"} 0"#),
            "{out}"
        );
        assert!(
            out.contains(r#"pushgate_queue_pending{app="a",channel="c"} 0"#),
            "{out}"
        );
    }
}
