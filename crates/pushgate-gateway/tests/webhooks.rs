//! Webhooks: a receiver that fails for a while and then recovers gets every event exactly
//! once, in order, in batches whose signature it can verify with the documented algorithm
//! (HMAC-SHA256 over "<timestamp>.<body>", checked here with the RustCrypto crates, not the
//! gateway's own code); the cursor survives a restart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pushgate_testkit::eventually_ok;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{APP, start_with};
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use pushgate_gateway::Gateway;
use pushgate_gateway::config::{Secret, WebhookSpec};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "whsec_0123456789abcdef";

#[derive(Default)]
struct Receiver {
    /// Answer this status (when not 0) to the next `failures` requests.
    failures: AtomicU32,
    fail_with: AtomicU32,
    batches: Mutex<Vec<Vec<Value>>>,
    bad_signatures: AtomicU32,
    attempts: AtomicU32,
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers
        .get("pushgate-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    if !verify(&headers, &body) {
        r.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let left = r.failures.load(Ordering::SeqCst);
    if left > 0 {
        r.failures.store(left - 1, Ordering::SeqCst);
        return StatusCode::from_u16(r.fail_with.load(Ordering::SeqCst) as u16).unwrap();
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["app"], APP);
    r.batches
        .lock()
        .push(v["events"].as_array().unwrap().clone());
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

fn hook(url: &str) -> WebhookSpec {
    WebhookSpec {
        url: url.to_string(),
        secret: Secret::new(SECRET, "test"),
        batch: 5,
        timeout: Duration::from_secs(5),
        replay_existing: false,
    }
}

/// Makes `n` devices whose tokens are dead and sends to them: 2n events.
async fn dead_devices(env: &common::Env, prefix: &str, n: usize) {
    let tokens = env.tokens(n, "gcm").await;
    for (i, t) in tokens.iter().enumerate() {
        env.register(&format!("{prefix}{i}"), t, json!({})).await;
        env.emu(
            Method::POST,
            &format!("/emulator/devices/{t}/uninstall"),
            None,
        )
        .await;
    }
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let m = env.send(json!({"targets": {"device_ids": ids}})).await;
    env.wait_done(m["id"].as_str().unwrap()).await;
}

async fn received_ids(r: &Receiver) -> Vec<i64> {
    r.batches
        .lock()
        .iter()
        .flatten()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

async fn wait_for(r: &Receiver, n: usize) -> Vec<i64> {
    eventually_ok(
        &format!("{n} events at the receiver"),
        Duration::from_secs(20),
        || async {
            let got = received_ids(r).await;
            if got.len() >= n {
                Ok(got)
            } else {
                Err(got.len())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_then_recovers_gets_every_event_once_in_order() {
    let (receiver, url) = start_receiver().await;
    receiver.fail_with.store(500, Ordering::SeqCst);
    receiver.failures.store(3, Ordering::SeqCst);
    let env = start_with(|spec| spec.apps[0].webhook = Some(hook(&url))).await;
    dead_devices(&env, "d", 12).await;
    // While it fails, the webhook's state says so.
    let a = eventually_ok(
        "a recorded webhook failure",
        Duration::from_secs(10),
        || async {
            let a = env
                .call(Method::GET, &format!("/v1/apps/{APP}/webhook"), None)
                .await;
            if a.body["failed_attempts"].as_u64().unwrap_or(0) >= 1 {
                Ok(a)
            } else {
                Err(a.text)
            }
        },
    )
    .await;
    assert_eq!(
        a.body["last_error"], "receiver answered HTTP 500",
        "{}",
        a.text
    );
    assert!(a.body["backlog"].as_u64().unwrap() > 0);
    assert!(!a.text.contains(SECRET));
    let got = wait_for(&receiver, 24).await;
    let listed = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/events?limit=1000"),
            None,
        )
        .await;
    let all: Vec<i64> = listed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(all.len(), 24);
    assert_eq!(got, all, "every event exactly once, in order");
    assert!(
        receiver.batches.lock().iter().all(|b| b.len() <= 5),
        "batches of at most 5"
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    assert!(receiver.attempts.load(Ordering::SeqCst) >= 3 + 24 / 5);
    // Later events follow, and the state is clean again.
    dead_devices(&env, "e", 2).await;
    let got = wait_for(&receiver, 28).await;
    assert_eq!(got.len(), 28);
    // The cursor passes the last event once the receiver's answer is recorded, just after
    // the receiver has it.
    let last = json!(got.last().unwrap());
    let a = eventually_ok(
        "the cursor at the last event",
        Duration::from_secs(10),
        || async {
            let a = env
                .call(Method::GET, &format!("/v1/apps/{APP}/webhook"), None)
                .await;
            if a.body["delivered_through"] == last {
                Ok(a)
            } else {
                Err(a.text)
            }
        },
    )
    .await;
    assert_eq!(a.body["failed_attempts"], 0);
    assert_eq!(a.body["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_events_wait_across_a_restart() {
    let (receiver, url) = start_receiver().await;
    receiver.fail_with.store(503, Ordering::SeqCst);
    receiver.failures.store(u32::MAX, Ordering::SeqCst);
    let mut env = start_with(|spec| spec.apps[0].webhook = Some(hook(&url))).await;
    dead_devices(&env, "d", 4).await;
    env.stop_gateway().await;
    assert!(received_ids(&receiver).await.is_empty());
    receiver.failures.store(0, Ordering::SeqCst);
    let gw = Gateway::start(&env.spec).await.unwrap();
    env.base = gw.base_url();
    env.gw = Some(gw);
    let got = wait_for(&receiver, 8).await;
    assert_eq!(got.len(), 8, "the 8 events, none twice");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    // Nothing is left behind: the cursor passes the 8 events once the receiver's answer is
    // recorded (just after the receiver has them).
    eventually_ok("an empty backlog", Duration::from_secs(10), async || {
        let a = env
            .call(Method::GET, &format!("/v1/apps/{APP}/webhook"), None)
            .await;
        if a.body["backlog"] == 0 {
            Ok(())
        } else {
            Err(a.text)
        }
    })
    .await;
}

/// The cursor is made while the gateway starts, not later by the sender's task: once
/// `Gateway::start` has returned it exists at the end of the log, so the events of the very
/// first requests reach the receiver. (On one runtime thread the sender's task cannot have
/// run before the test looks, so a cursor made by that task would be missing here.)
#[tokio::test(flavor = "current_thread")]
async fn the_cursor_exists_before_the_first_request() {
    let (receiver, url) = start_receiver().await;
    let env = start_with(|spec| spec.apps[0].webhook = Some(hook(&url))).await;
    let store = env.gw.as_ref().unwrap().store();
    let cursor = store.webhook_state(APP).await.unwrap();
    assert_eq!(
        cursor.map(|c| c.delivered_seq),
        Some(0),
        "a cursor at the end of the (empty) log as soon as the gateway has started"
    );
    dead_devices(&env, "first", 2).await;
    let got = wait_for(&receiver, 4).await;
    assert_eq!(got.len(), 4, "the first requests' 4 events, none twice");
}
