//! The admin console in a real browser: a sandbox `pushgate serve` (gateway and emulator) and
//! a second gateway with two apps and an admin key, driven by Playwright (Node,
//! `playwright-core`) through Debian's Chromium (`/usr/bin/chromium`; no browser is ever
//! downloaded). The Node side lives in `tests/console/`; its `setup.sh` installs the locked
//! packages on first use (`npm ci`). Screenshots land in `target/console-test-output/<test>/`.
//!
//! Without Node or Chromium the test fails under CI (env `CI` set) and says so loudly
//! elsewhere.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{GatewayProcess, TempDir, client, free_port, loopback_only, sandbox, wait_healthy};

const CHROMIUM: &str = "/usr/bin/chromium";
const SANDBOX_KEY: &str = "console-sandbox-key-0123456789";
const SHOP_KEY: &str = "console-shop-key-0123456789";
const NEWS_KEY: &str = "console-news-key-0123456789";
const ADMIN_KEY: &str = "console-admin-key-0123456789";
/// A tag and data value only the `news` app holds; no page of `shop` may show it.
const NEWS_SECRET: &str = "news-only-7f3a";
/// How many browser tests `console.test.js` has.
const BROWSER_TESTS: usize = 7;

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/console")
}

/// `target/console-test-output`.
fn output_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("console-test-output")
}

/// Whether Node and Chromium are here; under CI their absence is a failure.
fn prerequisites() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let chromium = Path::new(CHROMIUM).exists();
    if !(node && chromium) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the console's browser tests need Node.js ({node}) and {CHROMIUM} ({chromium}) in CI \
             (.ci/run installs Debian's chromium)"
        );
        eprintln!(
            "SKIPPED LOUDLY: the console's browser tests did not run (node: {node}, {CHROMIUM}: {chromium})"
        );
        return false;
    }
    let status = Command::new("bash")
        .arg(console_dir().join("setup.sh"))
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .expect("bash runs tests/console/setup.sh");
    assert!(
        status.success(),
        "tests/console/setup.sh failed ({status}): it needs npm and the npm registry (or a cache)"
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            console_dir().join("node_modules").join(package).is_dir(),
            "tests/console/node_modules/{package} is missing after setup.sh"
        );
    }
    true
}

/// The line of the sandbox's banner that starts with `label`, its first word after it.
fn banner_value(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the sandbox banner has no {label:?} line:\n{stdout}"))
        .to_string()
}

/// A gateway with apps `shop` and `news` (legacy channels towards the sandbox's emulator) and
/// an admin key.
fn isolation_config(dir: &Path, port: u16, emulator: &str) -> PathBuf {
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
database = "{db}"
admin_keys = ["env:CONSOLE_TEST_ADMIN_KEY"]

[apps.shop]
default = true
api_keys = ["{SHOP_KEY}"]
default_channel = "gcm"
[apps.shop.channels.gcm]
kind = "legacy"
api_key = "{emu_key}"
endpoint = "{emulator}/gcm/send"

[apps.news]
api_keys = ["{NEWS_KEY}"]
default_channel = "gcm"
[apps.news.channels.gcm]
kind = "legacy"
api_key = "{emu_key}"
endpoint = "{emulator}/gcm/send"
"#,
        db = dir.join("isolation.db").display(),
        emu_key = pushgate_emulator::DEFAULT_API_KEY,
    );
    let path = dir.join("isolation.toml");
    std::fs::write(&path, config).unwrap();
    path
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Value,
) -> Value {
    let r = http
        .request(method, url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_console_in_a_real_browser() {
    if !prerequisites() {
        return;
    }
    let dir = TempDir::new("pushgate-console");
    let http = client();

    // The sandbox, as a user starts it; its banner names the console and the emulator.
    let (mut sandbox_gw, base) = sandbox(
        &dir.0,
        "console-sandbox",
        4096,
        &[],
        &[("PUSHGATE_SANDBOX_API_KEY", SANDBOX_KEY)],
    )
    .await;
    // The banner is printed just after the listener answers.
    let banner = dir.0.join("console-sandbox.stdout");
    let stdout = pushgate_testkit::eventually_ok(
        "the sandbox's banner",
        std::time::Duration::from_secs(10),
        async || {
            let text = std::fs::read_to_string(&banner).unwrap_or_default();
            if text.contains("  emulator ") {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await;
    assert_eq!(banner_value(&stdout, "console"), format!("{base}/admin"));
    let emulator = banner_value(&stdout, "emulator");

    // The second gateway: two apps, an admin key; `news` holds a device and a message.
    let port = free_port();
    let config = isolation_config(&dir.0, port, &emulator);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    serve
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("CONSOLE_TEST_ADMIN_KEY", ADMIN_KEY);
    let mut iso_gw = GatewayProcess::spawn_command(serve, &dir.0, "console-isolation");
    let iso = format!("http://127.0.0.1:{port}");
    wait_healthy(&http, &iso, &mut iso_gw).await;
    let news_device = "news-device-1".to_string();
    let created: Value = http
        .post(format!("{emulator}/emulator/devices"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let news_token = created["devices"][0]["token"].as_str().unwrap().to_string();
    call(
        &http,
        reqwest::Method::PUT,
        &format!("{iso}/v1/apps/news/devices/{news_device}"),
        NEWS_KEY,
        json!({"token": news_token, "tags": [NEWS_SECRET]}),
    )
    .await;
    let sent = call(
        &http,
        reqwest::Method::POST,
        &format!("{iso}/v1/apps/news/messages"),
        NEWS_KEY,
        json!({"targets": {"device_ids": [news_device]}, "data": {"k": NEWS_SECRET}}),
    )
    .await;
    let news_message = sent["id"].as_str().unwrap().to_string();
    // The shop key is no key of news through the API either (the console must agree).
    let refused = http
        .get(format!("{iso}/v1/apps/news/devices/{news_device}"))
        .bearer_auth(SHOP_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let output = output_dir();
    let _ = std::fs::remove_dir_all(&output);
    std::fs::create_dir_all(&output).unwrap();
    let run_dir = console_dir();
    let env: Vec<(&str, String)> = vec![
        ("GATEWAY_URL", base.clone()),
        ("EMULATOR_URL", emulator.clone()),
        ("API_KEY", SANDBOX_KEY.into()),
        ("ISO_URL", iso.clone()),
        ("ISO_SHOP_KEY", SHOP_KEY.into()),
        ("ISO_ADMIN_KEY", ADMIN_KEY.into()),
        ("ISO_NEWS_DEVICE", news_device.clone()),
        ("ISO_NEWS_MESSAGE", news_message),
        ("ISO_NEWS_SECRET", NEWS_SECRET.into()),
        ("OUTPUT_DIR", output.to_string_lossy().into_owned()),
        ("CHROMIUM", CHROMIUM.into()),
        ("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1".into()),
    ];
    let result = tokio::task::spawn_blocking(move || {
        let mut node = Command::new("node");
        loopback_only(&mut node)
            .args(["--test", "--test-reporter=tap", "console.test.js"])
            .current_dir(run_dir)
            .envs(env);
        node.output().expect("node runs")
    })
    .await
    .expect("node task");
    sandbox_gw.check_alive();
    iso_gw.check_alive();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        result.status.success(),
        "the browser tests failed:\n{stdout}\n{stderr}\n{}\n{}",
        sandbox_gw.logs(),
        iso_gw.logs()
    );
    assert!(
        stdout.contains(&format!("# pass {BROWSER_TESTS}"))
            && stdout.contains("# fail 0")
            && stdout.contains("# skipped 0"),
        "node ran fewer browser tests than expected or skipped some:\n{stdout}"
    );
    // Every test saved its screenshots.
    let folders: Vec<PathBuf> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(folders.len(), BROWSER_TESTS, "{folders:?}");
    for folder in folders {
        let shots: Vec<u64> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "png"))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        assert!(
            !shots.is_empty() && shots.iter().all(|&n| n > 1000),
            "{} holds no real screenshot: {shots:?}",
            folder.display()
        );
    }
}
