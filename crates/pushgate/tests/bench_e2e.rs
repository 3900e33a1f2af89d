//! `pushgate bench e2e` as a user runs it, with tiny sizes: the gateway and the emulator are
//! processes of their own (started by the benchmark from its own executable), every message
//! sent is delivered, and the figures are the gateway's, not the benchmark's.

mod support;

use std::process::Command;

use support::TempDir;

#[test]
fn bench_e2e_runs_the_gateway_and_the_emulator_as_their_own_processes() {
    let dir = TempDir::new("pushgate-bench-e2e-test");
    let report_path = dir.0.join("report.json");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    bench
        .args([
            "bench",
            "e2e",
            "--devices",
            "200",
            "--messages",
            "200",
            "--senders",
            "8",
            "--raw-units",
            "2000",
            "--timeout",
            "60",
            "--report-json",
        ])
        .arg(&report_path)
        .env("TMPDIR", &dir.0)
        .env("RUST_LOG", "warn");
    let child = bench
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pushgate bench e2e starts");
    let bench_pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench e2e failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();

    assert_eq!(report["bench_pid"], bench_pid, "{report:#}");
    let emulator_pid = report["emulator_pid"].as_u64().expect("an emulator pid");
    assert_ne!(emulator_pid, u64::from(bench_pid));

    for (scenario, sent) in [("fanout", "devices"), ("singles", "messages")] {
        let s = &report[scenario];
        assert_eq!(s[sent], 200, "{scenario}: {s:#}");
        assert_eq!(s["emulator_delivered"], 200, "{scenario}: {s:#}");
        assert_eq!(s["emulator_duplicates"], 0, "{scenario}: {s:#}");
        let gateway_pid = s["gateway_pid"].as_u64().expect("a gateway pid");
        assert_ne!(gateway_pid, u64::from(bench_pid), "{scenario}");
        assert_ne!(gateway_pid, emulator_pid, "{scenario}");
        // Read from the gateway's own /proc entry while it ran.
        assert!(
            s["gateway_peak_rss_kib"].as_u64().unwrap() > 0,
            "{scenario}: {s:#}"
        );
    }
    // One gateway process per scenario, each on a fresh database.
    assert_ne!(
        report["fanout"]["gateway_pid"],
        report["singles"]["gateway_pid"]
    );
    assert_eq!(report["raw"]["units"], 2000, "{report:#}");
    assert!(report["raw"]["per_s"].as_f64().unwrap() > 0.0);
    assert!(stdout.contains("result: OK"), "{stdout}");
}
