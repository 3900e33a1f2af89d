//! The Grafana dashboard in packaging/ queries only metrics a real `/metrics` scrape exports.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use std::time::Duration;

use common::start_with;
use pushgate_gateway::config::{Secret, WebhookSpec};
use pushgate_testkit::eventually_ok;
use reqwest::Method;
use serde_json::{Value, json};

/// Every sample name a scrape can carry: each `# TYPE` family with the suffixes its type
/// gives its samples in the OpenMetrics text format.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{family}{suffix}"));
        }
    }
    names
}

/// The `pushgate_*` metric names in a PromQL expression.
fn queried_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("pushgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    // A gateway with a webhook (to a port nothing answers on) and traffic of every kind, so
    // that every metric family has samples (families without samples are not exported).
    let env = start_with(|spec| {
        spec.apps[0].webhook = Some(WebhookSpec {
            url: "http://127.0.0.1:1/hook".into(),
            secret: Secret::new("dashboard-test-webhook-secret", "test"),
            batch: 10,
            timeout: Duration::from_secs(1),
            replay_existing: false,
        })
    })
    .await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("phone", &token, json!({"channel": "xmpp"}))
        .await;
    let sent = env
        .send(json!({"targets": {"device_ids": ["phone"]}, "data": {"k": "v"}}))
        .await;
    env.wait_done(sent["id"].as_str().unwrap()).await;
    let needed = [
        "pushgate_provider_outcomes_total",
        "pushgate_upstream_total",
        "pushgate_webhook_backlog_events",
        "pushgate_http_request_duration_seconds_bucket",
    ];
    let exported = eventually_ok("every metric family", Duration::from_secs(15), async || {
        // Upstream traffic until the gateway has recorded some.
        env.emu(
            Method::POST,
            &format!("/emulator/devices/{token}/upstream"),
            Some(json!({"data": {"hello": "metrics"}})),
        )
        .await;
        let scrape = env
            .http
            .get(format!("{}/metrics", env.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let exported = exported_names(&scrape);
        if needed.iter().all(|n| exported.contains(*n)) {
            Ok(exported)
        } else {
            Err(scrape)
        }
    })
    .await;
    let mut queried = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 6,
        "delivery, latency, queue, age, webhook and API panels"
    );
    for panel in panels {
        let targets = panel["targets"]
            .as_array()
            .expect("each panel queries something");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            queried.extend(queried_names(target["expr"].as_str().unwrap()));
        }
    }
    queried.extend(queried_names(
        dashboard["templating"]["list"][1]["query"]
            .as_str()
            .unwrap(),
    ));
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}");
    for wanted in [
        "pushgate_provider_outcomes_total",
        "pushgate_provider_request_duration_seconds_bucket",
        "pushgate_deliveries_total",
        "pushgate_queue_pending",
        "pushgate_queue_oldest_due_age_seconds",
        "pushgate_webhook_backlog_events",
    ] {
        assert!(queried.contains(wanted), "the dashboard shows {wanted}");
    }
}

#[test]
fn names_are_read_from_expressions() {
    assert_eq!(
        queried_names("sum(rate(pushgate_a_total{x=\"pushgate_not\"}[5m])) / pushgate_b"),
        ["pushgate_a_total", "pushgate_not", "pushgate_b"]
    );
}
