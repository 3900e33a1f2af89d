//! `pushgate emulator` with a taken CCS port: the error an operator reads names the CCS
//! listener and its address, not the HTTP one.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

#[test]
fn taken_ccs_port_names_the_ccs_address_on_stderr() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let ccs = taken.local_addr().unwrap();
    // A free HTTP port, released just before the child binds it.
    let http = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(["emulator", "--http", &http.to_string(), "--xmpp"])
        .arg(ccs.to_string())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pushgate runs");
    // It must exit on its own; if it starts serving instead, stop it and fail.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("pushgate emulator kept running with a taken CCS port");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("CCS (XMPP) listener on {ccs}")),
        "{stderr}"
    );
    assert!(!stderr.contains(&http.to_string()), "{stderr}");
    drop(taken);
}
