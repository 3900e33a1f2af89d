//! Upstream messages from devices over CCS become events (acked to CCS once stored), are
//! recorded once however often CCS redelivers them, and with `echo` are answered; delivery
//! receipts are linked to the delivery they report.

mod common;

use std::time::Duration;

use pushgate_testkit::{eventually, eventually_ok};

use common::{APP, start_with};
use pushgate_gateway::config::ChannelSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn ccs_options(
    echo_on: bool,
    receipts_on: bool,
) -> impl FnOnce(&mut pushgate_gateway::config::GatewaySpec) {
    move |spec| {
        for c in &mut spec.apps[0].channels {
            if let ChannelSettings::Ccs { echo, receipts, .. } = &mut c.settings {
                *echo = echo_on;
                *receipts = receipts_on;
            }
        }
    }
}

async fn events_of(env: &common::Env, kind: &str) -> Vec<Value> {
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/events?type={kind}&limit=1000"),
            None,
        )
        .await;
    a.body["events"].as_array().unwrap().clone()
}

async fn wait_events(env: &common::Env, kind: &str, n: usize) -> Vec<Value> {
    eventually_ok(
        &format!("{n} {kind} events"),
        Duration::from_secs(10),
        || async {
            let got = events_of(env, kind).await;
            if got.len() >= n {
                Ok(got)
            } else {
                Err(got.len())
            }
        },
    )
    .await
}

async fn unacked(env: &common::Env) -> u64 {
    let a = env
        .emu(Method::GET, "/emulator/xmpp/senders/1234567890", None)
        .await;
    a.body["unacked_upstream"].as_u64().unwrap_or(u64::MAX)
}

async fn connected(env: &common::Env) {
    eventually_ok(
        "the gateway's CCS connection",
        Duration::from_secs(10),
        || async {
            let a = env
                .emu(Method::GET, "/emulator/xmpp/senders/1234567890", None)
                .await;
            if a.body["connections"].as_u64() == Some(1) {
                Ok(())
            } else {
                Err(a.text)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_messages_become_events_once_and_are_echoed() {
    let env = start_with(ccs_options(true, false)).await;
    // The CCS channel connects at start, without any downstream traffic.
    connected(&env).await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("phone", &token, json!({"channel": "xmpp"}))
        .await;
    for i in 0..3 {
        let a = env
            .emu(
                Method::POST,
                &format!("/emulator/devices/{token}/upstream"),
                Some(json!({"data": {"hello": format!("n{i}")}, "message_id": format!("up-{i}")})),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    }
    let got = wait_events(&env, "upstream_message", 3).await;
    let hellos: Vec<&str> = got
        .iter()
        .map(|e| e["data"]["data"]["hello"].as_str().unwrap())
        .collect();
    assert_eq!(hellos, ["n0", "n1", "n2"]);
    assert!(
        got.iter()
            .all(|e| e["device_id"] == "phone" && e["data"]["from"] == token.as_str())
    );
    // Acked once stored.
    eventually(
        "every upstream message acked",
        Duration::from_secs(10),
        || async { (unacked(&env).await == 0).then_some(()) },
    )
    .await;
    // The same stanza again (as after a lost ack): recorded once.
    env.emu(
        Method::POST,
        &format!("/emulator/devices/{token}/upstream"),
        Some(json!({"data": {"hello": "n0"}, "message_id": "up-0"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events_of(&env, "upstream_message").await.len(), 3);
    // Echo: each upstream message comes back to the device once, with its data.
    let inbox = eventually_ok("three echoes", Duration::from_secs(10), || async {
        let inbox = env.inbox(&token).await;
        if inbox.len() >= 3 {
            Ok(inbox)
        } else {
            Err(inbox)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let inbox = if inbox.len() == 3 {
        env.inbox(&token).await
    } else {
        inbox
    };
    let mut echoed: Vec<&str> = inbox
        .iter()
        .map(|m| m["data"]["hello"].as_str().unwrap())
        .collect();
    echoed.sort();
    assert_eq!(echoed, ["n0", "n1", "n2"], "{inbox:?}");
    assert!(inbox.iter().all(|m| m["via"] == "ccs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_linked_to_their_delivery() {
    let env = start_with(ccs_options(false, true)).await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("phone", &token, json!({"channel": "xmpp"}))
        .await;
    let sent = env
        .send(json!({"targets": {"device_ids": ["phone"]}, "data": {"k": "v"}}))
        .await;
    let id = sent["id"].as_str().unwrap();
    let done = env.wait_done(id).await;
    let delivery = &done["results"][0];
    let receipts = wait_events(&env, "delivery_receipt", 1).await;
    let r = &receipts[0];
    assert_eq!(r["device_id"], "phone");
    assert_eq!(r["data"]["status"], "MESSAGE_SENT_TO_DEVICE");
    assert_eq!(
        r["data"]["original_message_id"],
        delivery["provider_message_id"]
    );
    assert_eq!(r["data"]["delivery_id"], delivery["delivery_id"]);
    assert_eq!(r["data"]["message"], id);
}
