//! Interop: third-party Python client libraries (from PyPI) against the emulator.
//!
//! The Python side lives in `tests/interop/` at the repository root. Its virtual environment
//! is created on first use (`python3 -m venv` + `pip install -r requirements.txt`); a machine
//! without Python fails this test loudly instead of skipping it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use pushgate_emulator::{Emulator, EmulatorConfig};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Returns the venv's python, running `tests/interop/setup.sh` (venv + pip install) first,
/// once per test process: the tests run in parallel, and two `python3 -m venv` on one
/// directory at once fail.
fn venv_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(set_up_venv).clone()
}

/// Runs `tests/interop/setup.sh` and returns the venv's python.
fn set_up_venv() -> PathBuf {
    let dir = interop_dir();
    let status = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .status()
        .expect("bash runs tests/interop/setup.sh");
    assert!(
        status.success(),
        "tests/interop/setup.sh failed ({status}): the interop tests need python3 with venv and pip"
    );
    dir.join(".venv/bin/python")
}

/// Runs one pytest file against a fresh in-process emulator and fails with its output.
async fn run_pytest(file: &str) {
    let python = venv_python();
    let emulator = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        xmpp: Some("127.0.0.1:0".parse().unwrap()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let base = emulator.base_url();
    // CCS (XMPP over TLS): its address and the instance certificate, as a file, for the CA.
    let xmpp = emulator.xmpp_addr().expect("xmpp listener").to_string();
    let ca_file = std::env::temp_dir().join(format!(
        "pushgate-interop-ca-{}-{}.pem",
        std::process::id(),
        xmpp.replace([':', '.'], "_")
    ));
    std::fs::write(
        &ca_file,
        emulator.tls_cert_pem().expect("instance certificate"),
    )
    .expect("CA file written");
    let ca_path = ca_file.clone();
    let dir = interop_dir();
    let file = file.to_string();
    let output = tokio::task::spawn_blocking(move || {
        support::loopback_only(&mut Command::new(python))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &file])
            .current_dir(dir)
            .env("EMULATOR_URL", base)
            .env("EMULATOR_XMPP", xmpp)
            .env("EMULATOR_CA", ca_path)
            .output()
            .expect("pytest runs")
    })
    .await
    .expect("pytest task");
    emulator.shutdown().await;
    let _ = std::fs::remove_file(&ca_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "pytest {file_name} failed:\n{stdout}\n{stderr}",
        file_name = "interop"
    );
    assert!(
        stdout.contains(" passed") && !stdout.contains("skipped"),
        "pytest ran no test or skipped some:\n{stdout}"
    );
}

#[tokio::test]
async fn slixmpp_against_the_ccs_emulator() {
    run_pytest("test_slixmpp.py").await;
}

#[tokio::test]
async fn python_gcm_against_the_legacy_emulator() {
    run_pytest("test_python_gcm.py").await;
}

#[tokio::test]
async fn firebase_admin_against_the_v1_emulator() {
    run_pytest("test_firebase_admin.py").await;
}
