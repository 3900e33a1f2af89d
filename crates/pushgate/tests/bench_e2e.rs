//! `pushgate bench e2e` as a user runs it, with tiny sizes: the gateway and the emulator are
//! processes of their own (started by the benchmark from its own executable), every message
//! sent is delivered, and the figures are the gateway's, not the benchmark's.

mod support;

use std::process::Command;

use support::TempDir;

/// Runs `pushgate bench e2e` with tiny sizes and `extra` flags in `dir`; returns its JSON
/// report, its stdout and its pid, after checking that it succeeded.
fn run_bench(dir: &TempDir, extra: &[&str]) -> (serde_json::Value, String, u32) {
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
        ])
        .args(extra)
        .arg("--report-json")
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
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench e2e failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["bench_pid"], bench_pid, "{report:#}");
    (report, stdout, bench_pid)
}

/// The pids of a scenario's gateway instances.
fn gateway_pids(scenario: &serde_json::Value) -> Vec<u64> {
    scenario["gateway_pids"]
        .as_array()
        .expect("gateway_pids")
        .iter()
        .map(|p| p.as_u64().expect("a pid"))
        .collect()
}

#[test]
fn bench_e2e_runs_the_gateway_and_the_emulator_as_their_own_processes() {
    let dir = TempDir::new("pushgate-bench-e2e-test");
    let (report, stdout, bench_pid) = run_bench(&dir, &[]);
    let emulator_pid = report["emulator_pid"].as_u64().expect("an emulator pid");
    assert_ne!(emulator_pid, u64::from(bench_pid));

    for (scenario, sent) in [("fanout", "devices"), ("singles", "messages")] {
        let s = &report[scenario];
        assert_eq!(s[sent], 200, "{scenario}: {s:#}");
        assert_eq!(s["emulator_delivered"], 200, "{scenario}: {s:#}");
        assert_eq!(s["emulator_duplicates"], 0, "{scenario}: {s:#}");
        let pids = gateway_pids(s);
        assert_eq!(pids.len(), 1, "{scenario}: {s:#}");
        assert_ne!(pids[0], u64::from(bench_pid), "{scenario}");
        assert_ne!(pids[0], emulator_pid, "{scenario}");
        // Read from the gateway's own /proc entry while it ran.
        assert!(
            s["gateway_peak_rss_kib"].as_u64().unwrap() > 0,
            "{scenario}: {s:#}"
        );
        assert_eq!(
            s["recorded_by_instance"],
            serde_json::json!([200]),
            "{scenario}: {s:#}"
        );
    }
    // One gateway process per scenario, each on a fresh database.
    assert_ne!(
        report["fanout"]["gateway_pids"],
        report["singles"]["gateway_pids"]
    );
    assert_eq!(report["raw"]["units"], 2000, "{report:#}");
    assert!(report["raw"]["per_s"].as_f64().unwrap() > 0.0);
    assert!(stdout.contains("result: OK"), "{stdout}");
}

/// `--instances 2` on PostgreSQL: two gateway processes share the database and the load, and
/// every message is still delivered exactly once.
#[tokio::test]
async fn bench_e2e_spreads_the_load_over_several_instances_on_postgres() {
    let Some(schema) = pushgate_testkit::postgres::fresh_schema().await else {
        return;
    };
    let dir = TempDir::new("pushgate-bench-e2e-instances");
    let (report, stdout, _) = tokio::task::spawn_blocking({
        let url = schema.url().to_string();
        move || run_bench(&dir, &["--instances", "2", "--database", &url])
    })
    .await
    .unwrap();
    assert_eq!(report["instances"], 2, "{report:#}");
    for (scenario, sent) in [("fanout", "devices"), ("singles", "messages")] {
        let s = &report[scenario];
        assert_eq!(s["emulator_delivered"], 200, "{scenario}: {s:#}");
        assert_eq!(s["emulator_duplicates"], 0, "{scenario}: {s:#}");
        let pids = gateway_pids(s);
        assert_eq!(pids.len(), 2, "{scenario}: {s:#}");
        assert_ne!(pids[0], pids[1], "{scenario}");
        let shares: Vec<u64> = s["recorded_by_instance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(
            shares.iter().sum::<u64>(),
            s[sent].as_u64().unwrap(),
            "{scenario}: {s:#}"
        );
        if scenario == "singles" {
            // The senders were spread over both instances, and each instance's workers
            // took work from the shared queue.
            assert!(shares.iter().all(|&n| n > 0), "{scenario}: {s:#}");
        }
    }
    assert!(stdout.contains("result: OK"), "{stdout}");
}
