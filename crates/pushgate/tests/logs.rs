//! Log lines for machines as well as people: `--log-format json` writes one JSON object per
//! line with the request's id as a field, and text written to a file carries no colour codes.

mod support;

use serde_json::Value;
use support::{TempDir, sandbox};

/// The variables of both tests: debug lines for requests, a fixed key.
const ENV: [(&str, &str); 2] = [
    ("RUST_LOG", "info,pushgate_gateway::api=debug"),
    ("PUSHGATE_SANDBOX_API_KEY", "logs-test-key-0123456789"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = TempDir::new("logs-json");
    let (mut gw, base) = sandbox(&dir.0, "json", 4096, &["--log-format", "json"], &ENV).await;
    let r = support::client()
        .get(format!("{base}/v1/apps/sandbox/devices"))
        .bearer_auth("logs-test-key-0123456789")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let logs = pushgate_testkit::eventually_ok(
        "the request's log line",
        std::time::Duration::from_secs(10),
        async || {
            let logs = gw.stderr();
            if logs.contains("trace-me-42") {
                Ok(logs)
            } else {
                Err(logs)
            }
        },
    )
    .await;
    gw.check_alive();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["fields"].is_object())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "gateway listening"),
        "{logs}"
    );
    let request = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no line carries the request id as a field:\n{logs}"));
    assert_eq!(request["span"]["path"], "/v1/apps/sandbox/devices");
    assert!(!logs.contains('\u{1b}'), "no colour codes in JSON");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_written_to_a_file_carry_no_colour_codes() {
    let dir = TempDir::new("logs-text");
    let (mut gw, _base) = sandbox(&dir.0, "text", 4096, &[], &ENV).await;
    // The line is written just after the listener starts answering.
    let logs = pushgate_testkit::eventually_ok(
        "the start-up line",
        std::time::Duration::from_secs(10),
        async || {
            let logs = gw.stderr();
            if logs.contains("gateway listening") {
                Ok(logs)
            } else {
                Err(logs)
            }
        },
    )
    .await;
    gw.check_alive();
    assert!(!logs.contains('\u{1b}'), "escape codes in a file: {logs:?}");
}
