//! `/metrics` parses with a real Prometheus/OpenMetrics parser (the Python prometheus_client
//! package from PyPI, in the interop venv) and its numbers agree with the database.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{APP, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The interop venv's python (created by tests/interop/setup.sh); fails loudly without it.
fn venv_python() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    let status = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .status()
        .expect("bash runs setup.sh");
    assert!(
        status.success(),
        "tests/interop/setup.sh failed: this test needs python3 with venv and pip"
    );
    dir.join(".venv/bin/python")
}

/// Parses OpenMetrics text with prometheus_client; returns (name, labels, value) samples.
fn parse(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new(venv_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, HashMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    samples
}

fn sum(
    samples: &[(String, HashMap<String, String>, f64)],
    name: &str,
    filter: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && filter
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_agree_with_the_database() {
    let env = start().await;
    let tokens = env.tokens(9, "gcm").await;
    for (i, t) in tokens.iter().enumerate() {
        env.register(&format!("d{i}"), t, json!({"channel": "legacy"}))
            .await;
        match i % 3 {
            0 => {
                env.emu(
                    Method::POST,
                    &format!("/emulator/devices/{t}/uninstall"),
                    None,
                )
                .await;
            }
            1 => {
                env.emu(Method::POST, &format!("/emulator/devices/{t}/rotate"), None)
                    .await;
            }
            _ => {}
        }
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        let m = env
            .send(json!({"targets": {"all": true}, "data": {"k": "v"}}))
            .await;
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        env.wait_done(id).await;
    }
    let a = env.call(Method::GET, "/metrics", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let samples = parse(&a.text);

    // Deliveries by final state (counters the database keeps) agree with the messages' own
    // counts: every delivery has settled.
    let mut by_state: HashMap<String, f64> = HashMap::new();
    let mut attempts = 0.0;
    for id in &ids {
        let m = env.message(id).await;
        for (state, n) in m["counts"].as_object().unwrap() {
            *by_state.entry(state.clone()).or_default() += n.as_f64().unwrap();
        }
        attempts += m["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["attempts"].as_f64().unwrap())
            .sum::<f64>();
    }
    for (state, n) in &by_state {
        let got = sum(
            &samples,
            "pushgate_deliveries_total",
            &[("app", APP), ("channel", "legacy"), ("state", state)],
        );
        assert_eq!(got, *n, "deliveries in state {state}");
    }
    assert_eq!(by_state.get("sent").copied(), Some(12.0), "{by_state:?}");
    let settled: f64 = by_state.values().sum();
    assert_eq!(
        sum(&samples, "pushgate_deliveries_total", &[("app", APP)]),
        settled
    );
    // Totals kept by the database are exported as counters.
    for family in [
        "pushgate_deliveries",
        "pushgate_events",
        "pushgate_token_rotations",
        "pushgate_device_invalidations",
    ] {
        assert!(
            a.text.contains(&format!("# TYPE {family} counter")),
            "{family} is a counter"
        );
    }
    // Every provider answer was counted once per token, with its outcome and reason.
    let answers = sum(
        &samples,
        "pushgate_provider_outcomes_total",
        &[("app", APP), ("channel", "legacy")],
    );
    assert_eq!(answers, attempts, "one answer per attempt");
    let dead = sum(
        &samples,
        "pushgate_provider_outcomes_total",
        &[("outcome", "token_dead"), ("reason", "NotRegistered")],
    );
    assert!(dead >= 3.0, "{dead}");
    let histogram_count = sum(
        &samples,
        "pushgate_provider_request_duration_seconds_count",
        &[("channel", "legacy")],
    );
    assert_eq!(histogram_count, attempts);
    // The loop timed its store steps: at least one claim that leased the work, and a commit
    // for every group of answers (one or more per provider request, never zero).
    let step = |step: &str, suffix: &str| {
        sum(
            &samples,
            &format!("pushgate_queue_step_duration_seconds_{suffix}"),
            &[("app", APP), ("channel", "legacy"), ("step", step)],
        )
    };
    assert!(step("claim", "count") >= 1.0, "claims timed");
    assert!(step("commit", "count") >= 1.0, "commits timed");
    assert!(
        step("commit", "count") <= histogram_count,
        "at most one commit per answer"
    );
    assert!(step("claim", "sum") > 0.0 && step("commit", "sum") > 0.0);
    // Rotations, invalidations and events agree with the event log.
    let events = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/events?limit=1000"),
            None,
        )
        .await;
    let events: Vec<Value> = events.body["events"].as_array().unwrap().clone();
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count() as f64;
    assert_eq!(
        sum(&samples, "pushgate_token_rotations_total", &[("app", APP)]),
        count("token_rotated")
    );
    assert_eq!(
        sum(
            &samples,
            "pushgate_device_invalidations_total",
            &[("app", APP)]
        ),
        count("device_invalidated")
    );
    assert_eq!(count("token_rotated"), 3.0);
    assert_eq!(count("device_invalidated"), 3.0);
    for t in ["token_rotated", "device_invalidated", "delivery_failed"] {
        assert_eq!(
            sum(
                &samples,
                "pushgate_events_total",
                &[("app", APP), ("kind", t)]
            ),
            count(t),
            "{t}"
        );
    }
    // Nothing is waiting.
    assert_eq!(sum(&samples, "pushgate_queue_pending", &[]), 0.0);
    // The API's own requests, by route pattern.
    let sends = sum(
        &samples,
        "pushgate_http_request_duration_seconds_count",
        &[
            ("route", "/v1/apps/{app}/messages"),
            ("method", "POST"),
            ("status", "202"),
        ],
    );
    assert_eq!(sends, 2.0);
    // Readiness: database fine, every channel listed.
    let r = env.call(Method::GET, "/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["database"]["ok"], true);
    assert_eq!(r.body["channels"].as_array().unwrap().len(), 4);
}
