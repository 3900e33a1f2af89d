//! The CCS client against the in-process emulator over real sockets and TLS (the emulator's
//! own certificate as the trust root): window, nack codes, rotation, draining under load,
//! killed connections, upstream at-least-once, receipts, echo.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use pushgate_client::RetryPolicy;
use pushgate_client::ccs::{CcsClient, CcsConfig, CcsMessage, NackCode, UpstreamEvent};
use pushgate_emulator::{
    CcsSettings, DEFAULT_API_KEY, DEFAULT_SENDER_ID, Emulator, EmulatorConfig, RunningEmulator,
};
use pushgate_proto::{Outcome, OutcomeKind};
use pushgate_testkit::eventually_ok;
use serde_json::{Value, json};

struct Emu {
    running: RunningEmulator,
    http: reqwest::Client,
}

async fn start(settings: CcsSettings) -> Emu {
    let running = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        xmpp: Some("127.0.0.1:0".parse().unwrap()),
        ccs: settings,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Emu { running, http }
}

impl Emu {
    fn config(&self) -> CcsConfig {
        let addr = self.running.xmpp_addr().unwrap();
        CcsConfig::new("127.0.0.1", addr.port(), DEFAULT_SENDER_ID, DEFAULT_API_KEY)
            .with_ca_pem(self.running.tls_cert_pem().unwrap())
            .with_reconnect(fast())
            .with_retry(fast())
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.running.base_url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn devices(&self, spec: Value) -> Vec<String> {
        self.post("/emulator/devices", spec).await["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["token"].as_str().unwrap().to_string())
            .collect()
    }

    async fn inbox(&self, token: &str) -> Vec<Value> {
        self.get(&format!("/emulator/devices/{token}/messages"))
            .await["messages"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn stats(&self) -> Value {
        self.get("/emulator/stats").await
    }

    async fn wait_for(&self, key: &str, value: u64) {
        eventually_ok(
            &format!("emulator stat {key} = {value}"),
            Duration::from_secs(3),
            || async {
                let stats = self.stats().await;
                if stats[key].as_u64() == Some(value) {
                    Ok(())
                } else {
                    Err(stats)
                }
            },
        )
        .await;
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(100))
        .with_max_attempts(3)
}

fn delayed(ms: u64) -> CcsSettings {
    CcsSettings {
        ack_delay: Duration::from_millis(ms),
        drain_grace: Duration::from_millis(300),
        ..CcsSettings::default()
    }
}

/// Sends `n` messages spread over `tokens` (payload `{"n": i}`, unique per message) with up
/// to `concurrency` sends at once; returns the outcomes in order.
async fn send_many(client: &CcsClient, tokens: &[String], n: usize) -> Vec<Outcome> {
    stream::iter(0..n)
        .map(|i| {
            let m = CcsMessage::to(tokens[i % tokens.len()].clone()).data("n", i.to_string());
            let client = client.clone();
            async move { client.send(m).await.expect("client open") }
        })
        .buffered(2 * n.max(1))
        .collect()
        .await
}

/// Every `n` value present in the inboxes of `tokens`, with duplicates.
async fn delivered_ns(emu: &Emu, tokens: &[String]) -> Vec<u64> {
    let mut all = Vec::new();
    for t in tokens {
        for m in emu.inbox(t).await {
            assert_eq!(m["via"], "ccs");
            all.push(m["data"]["n"].as_str().unwrap().parse().unwrap());
        }
    }
    all.sort_unstable();
    all
}

#[tokio::test]
async fn ten_thousand_messages_never_exceed_the_window() {
    let emu = start(delayed(3)).await;
    let tokens = emu.devices(json!({"count": 100})).await;
    let (client, _up) = CcsClient::connect(emu.config().with_window(100))
        .await
        .unwrap();
    let outcomes = send_many(&client, &tokens, 10_000).await;
    assert!(outcomes.iter().all(|o| o.kind() == OutcomeKind::Delivered));
    let stats = emu.stats().await;
    let max = stats["ccs_max_pending"].as_u64().unwrap();
    assert!(max <= 100, "window exceeded: {max}");
    assert!(max >= 50, "the window was hardly used: {max}");
    assert_eq!(stats["ccs_pending_rejected"], 0);
    assert_eq!(stats["ccs_connections_total"], 1);
    assert_eq!(stats["duplicates"], 0);
    let ns = delivered_ns(&emu, &tokens).await;
    assert_eq!(ns, (0..10_000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn nack_codes_and_states_map_to_outcomes() {
    let emu = start(CcsSettings::default()).await;
    let tokens = emu.devices(json!({"count": 3})).await;
    let (client, _up) = CcsClient::connect(emu.config()).await.unwrap();
    let t = &tokens[0];
    let send = |to: &str| client.send(CcsMessage::to(to).data("k", "v"));

    let ok = send(t).await.unwrap();
    assert_eq!(ok.kind(), OutcomeKind::Delivered);

    let fault = |code: &str, count: u32| {
        emu.post(
            "/emulator/faults",
            json!({"path": "/ccs", "token": t, "error": code, "count": count}),
        )
    };
    for code in NackCode::ALL
        .iter()
        .chain([&NackCode::parse("SOMETHING_NEW")])
    {
        if matches!(
            code,
            NackCode::ConnectionDraining | NackCode::ServiceUnavailable
        ) {
            continue;
        }
        fault(code.as_str(), 1).await;
        let outcome = send(t).await.unwrap();
        assert_eq!(outcome, code.outcome(), "{code}");
        assert_eq!(outcome.reason(), Some(code.as_str()));
    }
    // SERVICE_UNAVAILABLE: retried with backoff, then given up as RetryLater.
    fault("SERVICE_UNAVAILABLE", 1).await;
    assert_eq!(send(t).await.unwrap().kind(), OutcomeKind::Delivered);
    fault("SERVICE_UNAVAILABLE", 10).await;
    let gave_up = send(t).await.unwrap();
    assert_eq!(gave_up.kind(), OutcomeKind::RetryLater);
    assert_eq!(gave_up.reason(), Some("SERVICE_UNAVAILABLE"));
    emu.call(reqwest::Method::DELETE, "/emulator/faults", None)
        .await;
    assert!(client.stats().retries >= 3);
    // CONNECTION_DRAINING nack: resent at once on another connection.
    fault("CONNECTION_DRAINING", 1).await;
    assert_eq!(send(t).await.unwrap().kind(), OutcomeKind::Delivered);
    assert_eq!(client.stats().resent_after_draining, 1);

    // Token states.
    let new = emu
        .post(
            &format!("/emulator/devices/{}/rotate", tokens[1]),
            json!({}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    match send(&tokens[1]).await.unwrap() {
        Outcome::Rotated { new_token, .. } => assert_eq!(new_token, new),
        other => panic!("{other:?}"),
    }
    emu.post(
        &format!("/emulator/devices/{}/uninstall", tokens[2]),
        json!({}),
    )
    .await;
    let dead = send(&tokens[2]).await.unwrap();
    assert_eq!(dead.kind(), OutcomeKind::TokenDead);
    assert_eq!(dead.reason(), Some("DEVICE_UNREGISTERED"));
    let bad = send("not-a-token").await.unwrap();
    assert_eq!(bad.reason(), Some("BAD_REGISTRATION"));
    let big = client
        .send(CcsMessage::to(t.as_str()).data("k", "x".repeat(5000)))
        .await
        .unwrap();
    assert_eq!(big.kind(), OutcomeKind::MessageRejected);
    assert_eq!(big.reason(), Some("INVALID_JSON"));
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_failure() {
    let emu = start(CcsSettings::default()).await;
    let mut config = emu.config();
    config.api_key = "wrong".into();
    let err = CcsClient::connect(config).await.unwrap_err();
    assert!(err.is_auth_failure(), "{err}");
    assert!(!err.to_string().contains("wrong"));
}

#[tokio::test]
async fn draining_under_load_loses_and_duplicates_nothing() {
    let emu = start(delayed(2)).await;
    let tokens = emu.devices(json!({"count": 50})).await;
    let (client, _up) = CcsClient::connect(emu.config()).await.unwrap();
    let sending = {
        let client = client.clone();
        let tokens = tokens.clone();
        tokio::spawn(async move { send_many(&client, &tokens, 3000).await })
    };
    tokio::time::sleep(Duration::from_millis(40)).await;
    let drained = emu
        .post(
            "/emulator/xmpp/drain",
            json!({"sender_id": DEFAULT_SENDER_ID}),
        )
        .await;
    assert_eq!(drained["connections"], 1);
    let outcomes = sending.await.unwrap();
    assert!(outcomes.iter().all(|o| o.kind() == OutcomeKind::Delivered));
    let stats = emu.stats().await;
    assert_eq!(stats["duplicates"], 0, "{stats}");
    assert!(stats["ccs_connections_total"].as_u64().unwrap() >= 2);
    assert!(client.stats().connections_opened >= 2);
    let ns = delivered_ns(&emu, &tokens).await;
    assert_eq!(ns, (0..3000).collect::<Vec<u64>>());
    // The drained connection is closed by the emulator after its grace period.
    emu.wait_for("ccs_connections", 1).await;
}

#[tokio::test]
async fn a_killed_connection_loses_nothing() {
    let window = 100;
    let emu = start(delayed(3)).await;
    let tokens = emu.devices(json!({"count": 50})).await;
    let (client, _up) = CcsClient::connect(emu.config().with_window(window))
        .await
        .unwrap();
    let sending = {
        let client = client.clone();
        let tokens = tokens.clone();
        tokio::spawn(async move { send_many(&client, &tokens, 3000).await })
    };
    tokio::time::sleep(Duration::from_millis(40)).await;
    let killed = emu.post("/emulator/xmpp/kill", json!({})).await;
    assert_eq!(killed["connections"], 1);
    let outcomes = sending.await.unwrap();
    assert!(outcomes.iter().all(|o| o.kind() == OutcomeKind::Delivered));
    assert!(client.stats().resent_after_loss > 0);
    let mut ns = delivered_ns(&emu, &tokens).await;
    let total = ns.len();
    ns.dedup();
    assert_eq!(
        ns,
        (0..3000).collect::<Vec<u64>>(),
        "every message delivered"
    );
    // Only messages whose ack was lost with the connection can be delivered twice.
    let duplicates = emu.stats().await["duplicates"].as_u64().unwrap();
    assert_eq!(duplicates as usize, total - 3000);
    assert!(duplicates as usize <= window, "{duplicates} duplicates");
}

#[tokio::test]
async fn upstream_is_at_least_once_without_duplicates() {
    let emu = start(CcsSettings::default()).await;
    let token = emu.devices(json!({"count": 1})).await.remove(0);
    let (client, mut upstream) = CcsClient::connect(emu.config()).await.unwrap();
    let path = format!("/emulator/devices/{token}/upstream");
    let inject = |id: &str| emu.post(&path, json!({"data": {"id": id}, "message_id": id}));
    inject("u1").await;
    let u1 = tokio::time::timeout(Duration::from_secs(5), upstream.recv())
        .await
        .unwrap()
        .unwrap();
    let UpstreamEvent::Message(m) = &u1.event else {
        panic!("{:?}", u1.event)
    };
    assert_eq!(m.from, token);
    assert_eq!(m.data["id"], "u1");
    // Held by the application (not acked) while the connection dies: CCS redelivers it on
    // the new connection, the client suppresses the duplicate, and the ack goes there.
    emu.post("/emulator/xmpp/kill", json!({})).await;
    emu.wait_for("ccs_upstream_redelivered", 1).await;
    eventually_ok(
        "the redelivered duplicate suppressed",
        Duration::from_secs(1),
        || async {
            match client.stats().upstream_duplicates {
                1 => Ok(()),
                n => Err(n),
            }
        },
    )
    .await;
    u1.ack();
    emu.wait_for("ccs_upstream_acked", 1).await;

    // Dropped without an ack: delivered to the application again after a reconnect.
    inject("u2").await;
    let u2 = upstream.recv().await.unwrap();
    assert_eq!(u2.event.message_id(), "u2");
    drop(u2);
    emu.post("/emulator/xmpp/kill", json!({})).await;
    let again = tokio::time::timeout(Duration::from_secs(5), upstream.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.event.message_id(), "u2");
    again.ack();
    emu.wait_for("ccs_upstream_acked", 2).await;
    let sender = emu
        .get(&format!("/emulator/xmpp/senders/{DEFAULT_SENDER_ID}"))
        .await;
    assert_eq!(sender["unacked_upstream"], 0);
    // Nothing else arrived.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), upstream.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn delivery_receipts_arrive_and_are_acked() {
    let emu = start(CcsSettings::default()).await;
    let token = emu.devices(json!({"count": 1})).await.remove(0);
    let (client, mut upstream) = CcsClient::connect(emu.config()).await.unwrap();
    let outcome = client
        .send(
            CcsMessage::to(token.as_str())
                .data("k", "v")
                .delivery_receipt(),
        )
        .await
        .unwrap();
    let Outcome::Delivered { message_id } = outcome else {
        panic!("{outcome:?}")
    };
    let up = tokio::time::timeout(Duration::from_secs(5), upstream.recv())
        .await
        .unwrap()
        .unwrap();
    let UpstreamEvent::Receipt(r) = &up.event else {
        panic!("{:?}", up.event)
    };
    assert_eq!(r.data.original_message_id, message_id);
    assert_eq!(r.data.device_registration_id, token);
    assert_eq!(r.message_id, format!("dr2:{message_id}"));
    up.ack();
    emu.wait_for("ccs_receipts_acked", 1).await;
}

#[tokio::test]
async fn echo_sends_the_data_back_and_acks() {
    let emu = start(CcsSettings::default()).await;
    let token = emu.devices(json!({"count": 1})).await.remove(0);
    let (client, upstream) = CcsClient::connect(emu.config()).await.unwrap();
    let echo = tokio::spawn(pushgate_client::ccs::echo::run(client.clone(), upstream));
    emu.post(
        &format!("/emulator/devices/{token}/upstream"),
        json!({"data": {"hello": "world"}}),
    )
    .await;
    emu.wait_for("ccs_upstream_acked", 1).await;
    let inbox = emu.inbox(&token).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["data"], json!({"hello": "world"}));
    client.close();
    let summary = tokio::time::timeout(Duration::from_secs(5), echo)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.echoed, 1);
}

#[tokio::test]
async fn a_pool_spreads_messages_over_its_connections() {
    let emu = start(delayed(2)).await;
    let tokens = emu.devices(json!({"count": 20})).await;
    let (client, _up) = CcsClient::connect(emu.config().with_connections(3).with_window(10))
        .await
        .unwrap();
    assert_eq!(client.open_connections(), 3);
    let outcomes = send_many(&client, &tokens, 600).await;
    assert!(outcomes.iter().all(|o| o.kind() == OutcomeKind::Delivered));
    let conns = emu.get("/emulator/xmpp/connections").await["connections"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(conns.len(), 3);
    for c in &conns {
        assert!(c["downstream"].as_u64().unwrap() > 0, "{c}");
        assert!(c["max_pending"].as_u64().unwrap() <= 10, "{c}");
    }
    assert_eq!(delivered_ns(&emu, &tokens).await.len(), 600);
}
