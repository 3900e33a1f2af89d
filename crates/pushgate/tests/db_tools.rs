//! `pushgate db backup|check|stats` as an operator runs them: against the database of a
//! running `pushgate serve` that keeps accepting messages meanwhile.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{TempDir, sandbox};

const KEY: &str = "db-tools-test-key-0123456789";

fn db(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .arg("db")
        .args(args)
        .current_dir(dir)
        .env_remove("PUSHGATE_DATABASE")
        .output()
        .expect("pushgate db runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Posts one message to `n` raw tokens; returns its id.
async fn send(http: &reqwest::Client, base: &str, n: usize) -> String {
    let tokens: Vec<String> = (0..n).map(|i| format!("db-tools-token-{i:04}")).collect();
    let r = http
        .post(format!("{base}/v1/apps/sandbox/messages"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"targets": {"tokens": tokens}, "data": {"k": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_gateway_is_backed_up_checked_and_measured() {
    let dir = TempDir::new("db-tools");
    let (mut gw, base) = sandbox(
        &dir.0,
        "live",
        4096,
        &[],
        &[("PUSHGATE_SANDBOX_API_KEY", KEY)],
    )
    .await;
    let http = support::client();
    let live = dir.0.join("live.db");
    let live = live.to_str().unwrap();
    for _ in 0..20 {
        send(&http, &base, 5).await;
    }

    // Senders keep going while the copy is taken.
    let sender = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            for _ in 0..50 {
                send(&http, &base, 5).await;
            }
        })
    };
    let out = db(&["--database", live, "backup", "copy.db"], &dir.0);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("copy.db"), "{}", text(&out));
    sender.await.unwrap();
    gw.check_alive();

    let out = db(&["--database", "copy.db", "check"], &dir.0);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("integrity: ok"), "{}", text(&out));

    // The copy holds at least the 20 messages sent before it and at most all 70, with 5
    // deliveries each.
    let out = db(&["--database", "copy.db", "stats"], &dir.0);
    assert!(out.status.success(), "{}", text(&out));
    let rows = |table: &str| -> u64 {
        text(&out)
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no {table} line in\n{}", text(&out)))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    let messages = rows("messages");
    assert!((20..=70).contains(&messages), "{}", text(&out));
    assert_eq!(rows("deliveries"), messages * 5, "{}", text(&out));

    // A second backup to the same name is refused and the first copy is kept.
    let before = std::fs::metadata(dir.0.join("copy.db")).unwrap().len();
    let out = db(&["--database", live, "backup", "copy.db"], &dir.0);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists"), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(dir.0.join("copy.db")).unwrap().len(),
        before
    );
    gw.check_alive();
}

#[test]
fn check_fails_on_a_damaged_or_missing_database_and_says_why() {
    let dir = TempDir::new("db-tools-bad");
    let out = db(&["--database", "missing.db", "check"], &dir.0);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no SQLite database at missing.db"),
        "{}",
        text(&out)
    );
    assert!(!dir.0.join("missing.db").exists());

    std::fs::write(dir.0.join("junk.db"), vec![0x42u8; 8192]).unwrap();
    let out = db(&["--database", "junk.db", "check"], &dir.0);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not a database"), "{}", text(&out));
}

#[test]
fn the_database_comes_from_the_configuration_file_when_not_given() {
    let dir = TempDir::new("db-tools-config");
    std::fs::write(
        dir.0.join("pushgate.toml"),
        "database = \"from-config.db\"\n",
    )
    .unwrap();
    let out = db(&["check"], &dir.0);
    assert!(
        text(&out).contains("no SQLite database at from-config.db"),
        "{}",
        text(&out)
    );
}
