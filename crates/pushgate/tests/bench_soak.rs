//! `pushgate bench soak` as an operator runs it, shortened: a steady load with retention in
//! seconds, where the rows the gateway holds stop growing with the messages it accepted.

mod support;

use std::process::Command;

use support::TempDir;

#[test]
fn a_short_soak_holds_only_the_retained_window_and_delivers_everything() {
    let dir = TempDir::new("pushgate-bench-soak-test");
    let report_path = dir.0.join("soak.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args([
            "bench",
            "soak",
            "--duration",
            "16s",
            "--rate",
            "100",
            "--devices",
            "200",
            "--retention",
            "3s",
            "--retention-interval",
            "1s",
            "--every",
            "4s",
            "--report-json",
        ])
        .arg(&report_path)
        .env("TMPDIR", &dir.0)
        .env("RUST_LOG", "warn")
        .output()
        .expect("pushgate bench soak runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench soak failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let accepted = report["accepted"].as_u64().unwrap();
    // 16 s at 100/s, give or take a slow start on a loaded machine.
    assert!(accepted >= 1000, "{report:#}");
    assert_eq!(report["delivered"], accepted, "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    let samples = report["samples"].as_array().unwrap();
    let last_sending = samples
        .iter()
        .rev()
        .find(|s| s["sending"] == true)
        .expect("a sample under load");
    // Without retention every accepted message would still be stored; with 3 s of it, the
    // stored messages are those of the last few seconds (plus one interval of lag).
    let stored = last_sending["messages"].as_u64().unwrap();
    let accepted_then = last_sending["accepted"].as_u64().unwrap();
    assert!(
        stored < accepted_then / 2,
        "{stored} of {accepted_then} messages still stored: {report:#}"
    );
    assert!(stdout.contains("levels"), "{stdout}");
}
