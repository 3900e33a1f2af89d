//! An upstream message survives a gateway killed between its receipt and its commit: CCS (the
//! emulator) never got the ack, redelivers it on the restarted gateway's connection, and the
//! event is recorded exactly once.

mod support;

use std::time::Duration;

use pushgate_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};
use support::{GatewayProcess, TempDir, client, free_port, wait_healthy};

const KEY: &str = "upstream-crash-key-0123456789";

async fn sender(http: &reqwest::Client, emu: &str) -> Value {
    http.get(format!("{emu}/emulator/xmpp/senders/1234567890"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    pushgate_testkit::eventually(what, Duration::from_secs(30), async || {
        ok().await.then_some(())
    })
    .await
}

async fn upstream_events(http: &reqwest::Client, gw: &str) -> Vec<Value> {
    let r = http
        .get(format!("{gw}/v1/apps/up/events?type=upstream_message"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_receipt_and_commit_loses_no_upstream_message() {
    let emulator = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        xmpp: Some("127.0.0.1:0".parse().unwrap()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let emu = emulator.base_url();
    let http = client();
    let dir = TempDir::new("pushgate-upstream");
    let ca = dir.0.join("emulator.pem");
    std::fs::write(&ca, emulator.tls_cert_pem().unwrap()).unwrap();
    let db = dir.0.join("gw.db");
    let port = free_port();
    let config = dir.0.join("pushgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
database = "{db}"
[storage]
busy_timeout = "60s"
[apps.up]
api_keys = ["{KEY}"]
[apps.up.channels.xmpp]
kind = "ccs"
sender_id = "1234567890"
api_key = "emulator-key"
host = "{xmpp}"
ca = "{ca}"
"#,
            db = db.display(),
            xmpp = emulator.xmpp_addr().unwrap(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    let gw = format!("http://127.0.0.1:{port}");
    let token = {
        let r: Value = http
            .post(format!("{emu}/emulator/devices"))
            .json(&json!({"count": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["devices"][0]["token"].as_str().unwrap().to_string()
    };

    let mut first = GatewayProcess::spawn(&dir.0, &config, "first");
    wait_healthy(&http, &gw, &mut first).await;
    wait_for("the CCS connection", async || {
        sender(&http, &emu).await["connections"] == 1
    })
    .await;

    // Hold the database's write lock: the gateway receives the message but cannot commit it.
    let mut blocker = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .connect()
        .await
        .unwrap();
    let mut tx = blocker.begin_with("BEGIN EXCLUSIVE").await.unwrap();
    let sent: Value = http
        .post(format!("{emu}/emulator/devices/{token}/upstream"))
        .json(&json!({"data": {"hello": "survive"}, "message_id": "up-crash-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sent["sent"], true,
        "the emulator handed it to the gateway's connection: {sent}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sender(&http, &emu).await["unacked_upstream"],
        1,
        "not acked before its commit"
    );
    first.kill();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    drop(blocker);

    // Nothing was recorded; the restarted gateway gets the redelivery and records it once.
    let mut second = GatewayProcess::spawn(&dir.0, &config, "second");
    wait_healthy(&http, &gw, &mut second).await;
    wait_for("the redelivered message", async || {
        upstream_events(&http, &gw).await.len() == 1
    })
    .await;
    wait_for("the ack", async || {
        sender(&http, &emu).await["unacked_upstream"] == 0
    })
    .await;
    let events = upstream_events(&http, &gw).await;
    assert_eq!(events[0]["data"]["data"]["hello"], "survive");
    assert_eq!(events[0]["data"]["message_id"], "up-crash-1");
    // The same id again (a second redelivery) is not a second event; a new one is.
    for (id, text) in [("up-crash-1", "survive"), ("up-crash-2", "next")] {
        http.post(format!("{emu}/emulator/devices/{token}/upstream"))
            .json(&json!({"data": {"hello": text}, "message_id": id}))
            .send()
            .await
            .unwrap();
    }
    wait_for("the second message", async || {
        upstream_events(&http, &gw).await.len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = upstream_events(&http, &gw).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["up-crash-1", "up-crash-2"]);
    second.kill();
    emulator.shutdown().await;
}
