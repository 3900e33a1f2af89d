//! The systemd unit in packaging/ is one systemd accepts, with the properties the README
//! promises (its own user, a state directory, restart on failure, graceful SIGTERM stop,
//! hardening).

use std::path::Path;
use std::process::Command;

fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/pushgate.service");
    std::fs::read_to_string(path).expect("packaging/pushgate.service")
}

/// The value of `key=` in the unit (the last one wins, as in systemd).
fn setting(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .next_back()
        .map(str::to_string)
}

#[test]
fn the_unit_runs_the_gateway_hardened_as_its_own_user() {
    let unit = unit();
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "pushgate"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
    ] {
        assert_eq!(setting(&unit, key).as_deref(), Some(value), "{key}");
    }
    let exec = setting(&unit, "ExecStart").unwrap();
    assert!(
        exec.ends_with(" serve --config /etc/pushgate/pushgate.toml"),
        "{exec}"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing in CI (.ci/run installs the systemd package)"
        );
        eprintln!("skipped: systemd-analyze is not installed; the unit was not verified");
        return;
    };
    assert!(probe.status.success());
    // The unit names the installed binary; verify it against the one just built.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pushgate.service");
    let text = unit().replace("/usr/local/bin/pushgate", env!("CARGO_BIN_EXE_pushgate"));
    std::fs::write(&file, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("pushgate.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}
