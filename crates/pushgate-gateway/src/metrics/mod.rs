//! `/metrics`: what an operator paged at night needs, in the Prometheus/OpenMetrics text
//! format. Latencies are measured in process (provider requests by app, channel, outcome and
//! reason; API requests by route and status); counts of what is stored (deliveries by state,
//! queue depth and age, events, webhook backlog) are read from the database at scrape time,
//! so they always agree with it, whichever gateway process did the work.

mod http;
mod instance;

pub use instance::InstanceMetrics;

pub mod activity;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use pushgate_proto::Outcome;
use pushgate_store::{EventKind, Store};
use time::OffsetDateTime;

pub use http::track as track_http;

/// Labels of provider answers.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// The outcome kind (`delivered`, `token_dead`, ...).
    pub outcome: String,
    /// The provider's reason, shortened to a stable label.
    pub reason: String,
}

/// Labels of API requests.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/v1/apps/{app}/messages`), never the raw path.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: String,
}

/// Labels of per-channel counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
}

/// Labels of per-state counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// The delivery state.
    pub state: String,
}

/// Labels of per-app counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabels {
    /// The app.
    pub app: String,
}

/// Labels of event counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The app.
    pub app: String,
    /// The event type.
    #[prometheus(flatten)]
    pub kind: KindLabel,
}

/// The event type label (`type` is a keyword, hence the wrapper).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The event type.
    pub r#type: String,
}

/// Labels of upstream counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// `upstream_message` or `delivery_receipt`.
    pub kind: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of one gateway.
pub struct Metrics {
    registry: Registry,
    provider_latency: HistogramFamily<OutcomeLabels>,
    provider_outcomes: Family<OutcomeLabels, Counter>,
    http_latency: HistogramFamily<HttpLabels>,
    upstream: Family<UpstreamLabels, Counter>,
    deliveries: Family<StateLabels, Gauge>,
    queue_pending: Family<ChannelLabels, Gauge>,
    queue_due: Family<ChannelLabels, Gauge>,
    queue_oldest_age: Family<ChannelLabels, Gauge<f64, AtomicU64>>,
    events: Family<EventLabels, Gauge>,
    rotations: Family<AppLabels, Gauge>,
    invalidations: Family<AppLabels, Gauge>,
    webhook_backlog: Family<AppLabels, Gauge>,
    webhook_failures: Family<AppLabels, Gauge>,
    /// This instance and its peers.
    pub instance: InstanceMetrics,
    scrape: Mutex<()>,
    activity: activity::Activity,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A provider reason as a label: the part before any detail (`CCS unreachable: ...` ->
/// `CCS unreachable`), at most 48 characters, so label values stay few.
pub fn reason_label(reason: Option<&str>) -> String {
    let r = reason.unwrap_or("");
    let cut = r
        .find([':', '(', '\n'])
        .map(|i| &r[..i])
        .unwrap_or(r)
        .trim();
    cut.chars().take(48).collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pushgate");
        let provider_latency: HistogramFamily<OutcomeLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "provider_request_duration_seconds",
            "Time of one provider request (one multicast or one message), per token answered",
            provider_latency.clone(),
        );
        let provider_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "provider_outcomes",
            "Provider answers per token, by outcome and reason",
            provider_outcomes.clone(),
        );
        let http_latency: HistogramFamily<HttpLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an API request, by route, method and status",
            http_latency.clone(),
        );
        let upstream = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream",
            "Upstream messages and receipts received from CCS and recorded",
            upstream.clone(),
        );
        let deliveries = Family::<StateLabels, Gauge>::default();
        registry.register(
            "deliveries",
            "Stored deliveries by state (final states: sent, failed, token_dead, expired)",
            deliveries.clone(),
        );
        let queue_pending = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "queue_pending",
            "Deliveries queued, waiting to retry or in flight",
            queue_pending.clone(),
        );
        let queue_due = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "queue_due",
            "Deliveries that may be sent now",
            queue_due.clone(),
        );
        let queue_oldest_age = Family::<ChannelLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "queue_oldest_due_age_seconds",
            "How long the oldest due delivery has been due",
            queue_oldest_age.clone(),
        );
        let events = Family::<EventLabels, Gauge>::default();
        registry.register(
            "events_stored",
            "Events in the log, by app and type",
            events.clone(),
        );
        let rotations = Family::<AppLabels, Gauge>::default();
        registry.register(
            "token_rotations_stored",
            "Token rotations (canonical ids) recorded",
            rotations.clone(),
        );
        let invalidations = Family::<AppLabels, Gauge>::default();
        registry.register(
            "device_invalidations_stored",
            "Devices invalidated because the provider said their token is dead",
            invalidations.clone(),
        );
        let webhook_backlog = Family::<AppLabels, Gauge>::default();
        registry.register(
            "webhook_backlog_events",
            "Events the app's webhook has not delivered yet",
            webhook_backlog.clone(),
        );
        let webhook_failures = Family::<AppLabels, Gauge>::default();
        registry.register(
            "webhook_failed_attempts",
            "Failed webhook attempts in a row",
            webhook_failures.clone(),
        );
        let instance = InstanceMetrics::register(&mut registry);
        Self {
            registry,
            instance,
            provider_latency,
            provider_outcomes,
            http_latency,
            upstream,
            deliveries,
            queue_pending,
            queue_due,
            queue_oldest_age,
            events,
            rotations,
            invalidations,
            webhook_backlog,
            webhook_failures,
            scrape: Mutex::new(()),
            activity: activity::Activity::default(),
        }
    }

    /// Records one provider request and its answer for each token.
    pub fn provider(&self, app: &str, channel: &str, took: Duration, outcomes: &[Outcome]) {
        for o in outcomes {
            let labels = OutcomeLabels {
                app: app.to_string(),
                channel: channel.to_string(),
                outcome: o.kind().as_str().to_string(),
                reason: reason_label(o.reason()),
            };
            self.provider_latency
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
            self.provider_outcomes.get_or_create(&labels).inc();
        }
    }

    /// Recent provider answers (the console's plot and a device's recent deliveries).
    pub fn activity(&self) -> &activity::Activity {
        &self.activity
    }

    /// Records one API request.
    pub fn http(&self, route: &str, method: &str, status: u16, took: Duration) {
        let labels = HttpLabels {
            route: route.to_string(),
            method: method.to_string(),
            status: status.to_string(),
        };
        self.http_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts one recorded upstream item.
    pub fn upstream(&self, app: &str, channel: &str, kind: EventKind) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                app: app.to_string(),
                channel: channel.to_string(),
                kind: kind.as_str().to_string(),
            })
            .inc();
    }

    /// Refreshes the stored counts from the database and renders everything. Every
    /// configured app and channel (`configured`: each app with its channels) has its queue and
    /// registry series, at zero when empty, so dashboards never see them vanish.
    pub async fn render(
        &self,
        store: &dyn Store,
        webhook_apps: &[String],
        configured: &[(String, Vec<String>)],
    ) -> Result<String, String> {
        let now = OffsetDateTime::now_utc();
        let counts = store.delivery_counts().await.map_err(|e| e.to_string())?;
        let queues = store
            .queue_by_channel(now)
            .await
            .map_err(|e| e.to_string())?;
        let events = store.event_counts().await.map_err(|e| e.to_string())?;
        let mut hooks = Vec::new();
        for app in webhook_apps {
            if let Some(state) = store.webhook_state(app).await.map_err(|e| e.to_string())? {
                let backlog = store
                    .count_events_after(app, state.delivered_seq)
                    .await
                    .map_err(|e| e.to_string())?;
                hooks.push((app.clone(), backlog, state.attempts));
            }
        }
        // One scrape at a time: the families are cleared and refilled.
        let _one = self.scrape.lock();
        self.deliveries.clear();
        for (app, channel, state, n) in counts {
            self.deliveries
                .get_or_create(&StateLabels {
                    app,
                    channel,
                    state: state.as_str().to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.queue_pending.clear();
        self.queue_due.clear();
        self.queue_oldest_age.clear();
        for q in queues {
            let labels = ChannelLabels {
                app: q.app,
                channel: q.channel,
            };
            self.queue_pending
                .get_or_create(&labels)
                .set(i64::try_from(q.stats.pending).unwrap_or(i64::MAX));
            self.queue_due
                .get_or_create(&labels)
                .set(i64::try_from(q.stats.due).unwrap_or(i64::MAX));
            let age = q
                .stats
                .oldest_due
                .map(|t| (now - t).as_seconds_f64().max(0.0))
                .unwrap_or(0.0);
            self.queue_oldest_age.get_or_create(&labels).set(age);
        }
        for (app, channels) in configured {
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
        self.events.clear();
        self.rotations.clear();
        self.invalidations.clear();
        for (app, kind, n) in events {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            let labels = AppLabels { app: app.clone() };
            match kind {
                EventKind::TokenRotated => self.rotations.get_or_create(&labels).set(n),
                EventKind::DeviceInvalidated => self.invalidations.get_or_create(&labels).set(n),
                _ => 0,
            };
            self.events
                .get_or_create(&EventLabels {
                    app,
                    kind: KindLabel {
                        r#type: kind.as_str().to_string(),
                    },
                })
                .set(n);
        }
        for (app, _) in configured {
            let labels = AppLabels { app: app.clone() };
            let _ = self.rotations.get_or_create(&labels);
            let _ = self.invalidations.get_or_create(&labels);
        }
        self.webhook_backlog.clear();
        self.webhook_failures.clear();
        for (app, backlog, attempts) in hooks {
            let labels = AppLabels { app };
            self.webhook_backlog
                .get_or_create(&labels)
                .set(i64::try_from(backlog).unwrap_or(i64::MAX));
            self.webhook_failures.get_or_create(&labels).set(attempts);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_become_few_stable_labels() {
        assert_eq!(reason_label(Some("NotRegistered")), "NotRegistered");
        assert_eq!(
            reason_label(Some("CCS unreachable: connection refused (os error 111)")),
            "CCS unreachable"
        );
        assert_eq!(
            reason_label(Some("NOT_FOUND (project or endpoint not found)")),
            "NOT_FOUND"
        );
        assert_eq!(reason_label(None), "");
        assert_eq!(reason_label(Some(&"x".repeat(100))).len(), 48);
    }

    #[test]
    fn provider_answers_are_counted_per_token() {
        let m = Metrics::new();
        let outcomes = vec![
            Outcome::Delivered {
                message_id: "1".into(),
            },
            Outcome::TokenDead {
                reason: "NotRegistered".into(),
            },
            Outcome::Delivered {
                message_id: "2".into(),
            },
        ];
        m.provider("a", "c", Duration::from_millis(20), &outcomes);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
        assert!(out.contains(r#"pushgate_provider_outcomes_total{app="a",channel="c",outcome="delivered",reason=""} 2"#), "{out}");
        assert!(out.contains(r#"pushgate_provider_outcomes_total{app="a",channel="c",outcome="token_dead",reason="NotRegistered"} 1"#), "{out}");
        assert!(
            out.contains("pushgate_provider_request_duration_seconds_bucket"),
            "{out}"
        );
    }
}
