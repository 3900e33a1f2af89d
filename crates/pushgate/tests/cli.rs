//! The `pushgate send` and `pushgate topics` commands against the in-process emulator: what
//! an operator types, checked by exit code, printed table and the devices' inboxes.

use std::process::{Command, Output};

use pushgate_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

async fn start() -> RunningEmulator {
    Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

async fn control(emu: &RunningEmulator, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", emu.base_url()))
        .json(&body)
        .send()
        .await
        .expect("control call");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn devices(emu: &RunningEmulator, spec: Value) -> Vec<String> {
    let answer = control(emu, reqwest::Method::POST, "/emulator/devices", spec).await;
    answer["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["token"].as_str().unwrap().to_string())
        .collect()
}

async fn inbox(emu: &RunningEmulator, token: &str) -> Vec<Value> {
    let answer = reqwest::get(format!(
        "{}/emulator/devices/{token}/messages",
        emu.base_url()
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    answer["messages"].as_array().unwrap().clone()
}

async fn pushgate(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("PUSHGATE_API_KEY")
            .output()
            .expect("pushgate runs")
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn send_legacy_prints_a_row_per_token_and_fails_on_a_bad_key() {
    let emu = start().await;
    let tokens = devices(&emu, json!({"count": 2})).await;
    let endpoint = format!("{}/gcm/send", emu.base_url());
    let out = pushgate(args(&[
        "send",
        "--legacy",
        "--endpoint",
        &endpoint,
        "--api-key",
        "emulator-key",
        "--to",
        &tokens[0],
        "--to",
        &tokens[1],
        "--data",
        "score=4x8",
        "--collapse-key",
        "scores",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("delivered").count(), 2, "{stdout}");
    for token in &tokens {
        let messages = inbox(&emu, token).await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["data"], json!({"score": "4x8"}));
        assert_eq!(messages[0]["collapse_key"], "scores");
    }
    let out = pushgate(args(&[
        "send",
        "--legacy",
        "--endpoint",
        &endpoint,
        "--api-key",
        "wrong",
        "--to",
        &tokens[0],
    ]))
    .await;
    assert!(
        !out.status.success(),
        "a refused key is a whole-request failure"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    assert_eq!(inbox(&emu, &tokens[0]).await.len(), 1);
}

#[tokio::test]
async fn send_fcm_v1_with_the_emulators_key_file() {
    let emu = start().await;
    let key = reqwest::get(format!(
        "{}/emulator/projects/pushgate-emulator/key",
        emu.base_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.json");
    std::fs::write(&key_file, key).unwrap();
    let tokens = devices(&emu, json!({"count": 1, "project_id": "pushgate-emulator"})).await;
    let out = pushgate(args(&[
        "send",
        "--fcm-v1",
        "--service-account",
        key_file.to_str().unwrap(),
        "--endpoint",
        &emu.base_url(),
        "--to",
        &tokens[0],
        "--data",
        "a=b",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("projects/pushgate-emulator/messages/"),
        "{stdout}"
    );
    let messages = inbox(&emu, &tokens[0]).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["via"], "fcm-v1");
}

#[tokio::test]
async fn send_c2dm_logs_in_and_delivers() {
    let emu = start().await;
    let tokens = devices(&emu, json!({"count": 1, "protocol": "c2dm"})).await;
    let base = emu.base_url();
    let out = pushgate(args(&[
        "send",
        "--c2dm",
        "--email",
        "c2dm@example.com",
        "--password",
        "emulator-password",
        "--login-url",
        &format!("{base}/accounts/ClientLogin"),
        "--endpoint",
        &format!("{base}/c2dm/send"),
        "--to",
        &tokens[0],
        "--collapse-key",
        "k",
        "--data",
        "x=1",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = inbox(&emu, &tokens[0]).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["via"], "c2dm");
    assert_eq!(messages[0]["data"], json!({"x": "1"}));
}

#[tokio::test]
async fn topics_subscribe_reports_the_bad_token_and_topic_sends_reach_subscribers() {
    let emu = start().await;
    let tokens = devices(&emu, json!({"count": 3})).await;
    let base = emu.base_url();
    let out = pushgate(args(&[
        "topics",
        "subscribe",
        "--endpoint",
        &base,
        "--api-key",
        "emulator-key",
        "--topic",
        "news",
        "--to",
        &tokens[0],
        "--to",
        "-not-a-token", // a leading hyphen is a value here, not a flag,
        "--to",
        &tokens[1],
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 succeeded, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("#1 "),
        "the failure is the second token: {stdout}"
    );
    let out = pushgate(args(&[
        "send",
        "--legacy",
        "--endpoint",
        &format!("{base}/gcm/send"),
        "--api-key",
        "emulator-key",
        "--topic",
        "news",
        "--data",
        "h=1",
    ]))
    .await;
    assert!(out.status.success());
    assert_eq!(inbox(&emu, &tokens[0]).await.len(), 1);
    assert_eq!(inbox(&emu, &tokens[1]).await.len(), 1);
    assert_eq!(inbox(&emu, &tokens[2]).await.len(), 0, "not subscribed");
}
