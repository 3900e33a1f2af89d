//! `/metrics`: what an operator paged at night needs, in the Prometheus/OpenMetrics text
//! format. Latencies are measured in process (provider requests by app, channel, outcome and
//! reason; API requests by route and status). What is stored is read from the database at
//! scrape time ([`stored`]), so every instance sharing it reports the same figures, at a cost
//! that does not grow with history: deliveries by final state
//! (`pushgate_deliveries_total{app,channel,state}`), events by kind
//! (`pushgate_events_total{app,kind}`), token rotations and device invalidations are totals the
//! database keeps as the writes happen, exported as counters that deleting old rows never
//! lowers; the queue's depth and due age (`pushgate_queue_*`, the active states: queued,
//! waiting to retry, in flight) and the webhook backlog are gauges read through indexes.

mod http;
mod instance;
mod stored;

pub use instance::InstanceMetrics;

pub mod activity;

use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use pushgate_proto::Outcome;
use pushgate_store::{EventKind, Store};

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

/// Labels of the delivery loop's store steps.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// The step: `claim` or `commit` (see [`QueueStep`]).
    pub step: String,
}

/// The store's steps in a channel's delivery loop, timed as the loop waits for them: where a
/// fan-out spends its time when the store, not the provider, sets the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStep {
    /// Leasing due deliveries (`Store::claim_due`), waiting for the writer included.
    Claim,
    /// Recording a group of provider answers with their effects (`Store::complete`).
    Commit,
}

impl QueueStep {
    fn as_str(self) -> &'static str {
        match self {
            QueueStep::Claim => "claim",
            QueueStep::Commit => "commit",
        }
    }
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
    /// The event kind (`token_rotated`, `delivery_failed`, ...).
    pub kind: String,
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

fn step_histogram() -> Histogram {
    // 100 µs .. ~26 s: a claim or commit of a few hundred deliveries takes milliseconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// Every metric of one gateway.
pub struct Metrics {
    registry: Registry,
    provider_latency: HistogramFamily<OutcomeLabels>,
    provider_outcomes: Family<OutcomeLabels, Counter>,
    http_latency: HistogramFamily<HttpLabels>,
    queue_steps: HistogramFamily<StepLabels>,
    upstream: Family<UpstreamLabels, Counter>,
    stored: stored::StoredMetrics,
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
        let queue_steps: HistogramFamily<StepLabels> = Family::new_with_constructor(step_histogram);
        registry.register(
            "queue_step_duration_seconds",
            "Time a channel's delivery loop waited for the store to claim work or to record answers",
            queue_steps.clone(),
        );
        let upstream = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream",
            "Upstream messages and receipts received from CCS and recorded",
            upstream.clone(),
        );
        let stored = stored::StoredMetrics::register(&mut registry);
        let instance = InstanceMetrics::register(&mut registry);
        Self {
            registry,
            instance,
            provider_latency,
            provider_outcomes,
            http_latency,
            queue_steps,
            upstream,
            stored,
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

    /// Records how long one store step of a channel's delivery loop took.
    pub fn queue_step(&self, app: &str, channel: &str, step: QueueStep, took: Duration) {
        self.queue_steps
            .get_or_create(&StepLabels {
                app: app.to_string(),
                channel: channel.to_string(),
                step: step.as_str().to_string(),
            })
            .observe(took.as_secs_f64());
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

    /// Reads the stored figures from the database and renders everything. Every configured
    /// app and channel (`configured`: each app with its channels) has its queue and registry
    /// series, at zero when empty, so dashboards never see them vanish.
    pub async fn render(
        &self,
        store: &dyn Store,
        webhook_apps: &[String],
        configured: &[(String, Vec<String>)],
    ) -> Result<String, String> {
        let snapshot = stored::Snapshot::read(store, webhook_apps).await?;
        // One scrape at a time: the gauge families are cleared and refilled.
        let _one = self.scrape.lock();
        self.stored.apply(snapshot, configured);
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
