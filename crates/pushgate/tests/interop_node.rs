//! Interop: firebase-admin for Node (from npm) against the emulator's HTTPS listener, on its
//! HTTP/2 batch path (`sendEach`, `sendEachForMulticast`), which sends `:scheme: https:`.
//!
//! The Node side lives in `tests/interop/node/`; `setup.sh` there installs its locked
//! dependencies on first use (`npm ci`). Without Node the test fails under CI (env `CI`
//! set) and says so loudly elsewhere.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use pushgate_emulator::{Emulator, EmulatorConfig};

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/node")
}

/// Whether `node` runs here; under CI its absence is a failure.
fn node_available() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "Node.js is required for the Node interop tests in CI"
        );
        eprintln!(
            "SKIPPED LOUDLY: Node.js not found; the firebase-admin (Node) interop test did not run"
        );
    }
    found
}

#[tokio::test]
async fn firebase_admin_node_send_each_over_http2() {
    if !node_available() {
        return;
    }
    let dir = node_dir();
    let status = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .status()
        .expect("bash runs tests/interop/node/setup.sh");
    assert!(
        status.success(),
        "tests/interop/node/setup.sh failed ({status}): it needs npm and the npm registry (or a cache)"
    );
    let emulator = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        https: Some("127.0.0.1:0".parse().unwrap()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let https = emulator.https_base_url().expect("https listener");
    let ca_file = std::env::temp_dir().join(format!(
        "pushgate-interop-node-ca-{}-{}.pem",
        std::process::id(),
        emulator.http_addr().port()
    ));
    std::fs::write(&ca_file, emulator.tls_cert_pem().expect("certificate")).expect("CA file");
    let base = emulator.base_url();
    let ca_path = ca_file.clone();
    let output = tokio::task::spawn_blocking(move || {
        support::loopback_only(&mut Command::new("node"))
            .args(["--test", "send_each.test.js"])
            .current_dir(dir)
            .env("EMULATOR_URL", base)
            .env("EMULATOR_HTTPS", https)
            .env("EMULATOR_CA", ca_path)
            // Nothing may leave the machine (loopback_only), and no extra trust.
            .env_remove("NODE_EXTRA_CA_CERTS")
            .output()
            .expect("node runs")
    })
    .await
    .expect("node task");
    emulator.shutdown().await;
    let _ = std::fs::remove_file(&ca_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "node --test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# pass 2")
            && stdout.contains("# fail 0")
            && stdout.contains("# skipped 0"),
        "node ran fewer tests than expected or skipped some:\n{stdout}"
    );
}
