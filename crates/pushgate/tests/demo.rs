//! `pushgate demo` runs end to end (with fewer devices than its default, to fit CI) and its
//! summary agrees with the emulator's own counts.

use std::process::Command;

#[test]
fn the_demo_runs_and_its_figures_agree_with_the_emulator() {
    let out = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args([
            "demo",
            "--devices",
            "1200",
            "--upstream",
            "20",
            "--timeout",
            "120s",
        ])
        .output()
        .expect("pushgate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed\n{stdout}\n{stderr}");
    let line = |label: &str| -> String {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in\n{stdout}"))
            .to_string()
    };
    let numbers = |l: &str| -> Vec<u64> {
        l.split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    // "rotated N (tokens rotated in the emulator: M)": N == M, and something did rotate.
    let rotated = numbers(&line("rotated"));
    assert!(rotated[0] > 0 && rotated[0] == rotated[1], "{stdout}");
    let invalidated = numbers(&line("invalidated"));
    assert!(
        invalidated[0] > 0 && invalidated[0] == invalidated[1],
        "{stdout}"
    );
    let upstream = numbers(&line("upstream"));
    assert_eq!((upstream[0], upstream[1]), (20, 20), "{stdout}");
    // "delivered N (emulator received E, of which C confirmations; D duplicates)".
    let delivered = numbers(&line("delivered"));
    assert_eq!(delivered[0] + delivered[2], delivered[1], "{stdout}");
    assert_eq!(
        delivered[2], 300,
        "a quarter of 1200 registered through the C2DM-era flow"
    );
    assert_eq!(delivered[3], 0, "no duplicates");
    let broadcast = numbers(&line("broadcast"));
    assert_eq!(broadcast[0], 1200, "{stdout}");
    assert!(stdout.contains("every figure agrees with the emulator's own counts"));
}
