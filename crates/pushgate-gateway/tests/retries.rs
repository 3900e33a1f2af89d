//! Retries obey the provider: nothing is sent before the time a Retry-After gave, and work
//! that cannot be sent before its TTL runs out expires instead of being sent late.

mod common;

use std::time::Duration;

use common::{APP, cases, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn times_of(activity: &[Value], path: &str) -> Vec<(u64, u64)> {
    activity
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| {
            (
                r["time_ms"].as_u64().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_is_waited_out_exactly_as_retry_after_says() {
    let env = start().await;
    let tokens = env.tokens(3, "gcm").await;
    for (i, t) in tokens.iter().enumerate() {
        env.register(&format!("p{i}"), t, json!({"channel": "legacy"}))
            .await;
    }
    let fault = env
        .emu(
            Method::POST,
            "/emulator/faults",
            Some(json!({"path": "/gcm/send", "status": 503, "retry_after": "1", "count": 3})),
        )
        .await;
    assert_eq!(fault.status, StatusCode::CREATED, "{}", fault.text);
    let sent = env
        .send(json!({"targets": {"all": true}, "data": {"case": "storm"}}))
        .await;
    let done = env
        .wait_until(
            sent["id"].as_str().unwrap(),
            |m| m["done"] == true,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(done["counts"]["sent"], 3, "{done:#}");
    let sends = times_of(&env.activity().await, "/gcm/send");
    let statuses: Vec<u64> = sends.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses,
        [503, 503, 503, 200],
        "one multicast per round: {sends:?}"
    );
    for pair in sends.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= 1000,
            "a request {gap} ms after a 503 with Retry-After: 1 ({sends:?})"
        );
    }
    for t in &tokens {
        assert_eq!(cases(&env.inbox(t).await), ["storm"]);
    }
    let results = done["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["attempts"] == 4), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_cannot_be_sent_within_its_ttl_expires() {
    let env = start().await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("late", &token, json!({"channel": "legacy"}))
        .await;
    env.emu(
        Method::POST,
        "/emulator/faults",
        Some(json!({"path": "/gcm/send", "status": 500, "count": 1000})),
    )
    .await;
    let sent = env
        .send(json!({"targets": {"device_ids": ["late"]}, "data": {"case": "ttl"}, "ttl": 2}))
        .await;
    let id = sent["id"].as_str().unwrap();
    let done = env
        .wait_until(id, |m| m["done"] == true, Duration::from_secs(15))
        .await;
    assert_eq!(done["counts"]["expired"], 1, "{done:#}");
    let result = &done["results"][0];
    assert_eq!(
        result["error"], "HTTP 500",
        "the last provider answer is kept"
    );
    assert!(
        result["attempts"].as_u64().unwrap() >= 2,
        "it was retried: {result}"
    );
    // Nothing reached the device, and it stays active: the provider, not the token, failed.
    env.emu(Method::DELETE, "/emulator/faults", None).await;
    assert!(env.inbox(&token).await.is_empty());
    assert_eq!(env.device("late").await["state"], "active");
    let store = env.gw().store();
    let failed = store
        .events_after(APP, 0, 10, Some(pushgate_store::EventKind::DeliveryFailed))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].data["state"], "expired");
    // The provider is asked for what is left of the TTL, not the whole of it again.
    let fresh = env
        .send(json!({"targets": {"device_ids": ["late"]}, "data": {"case": "ok"}, "ttl": 600}))
        .await;
    env.wait_done(fresh["id"].as_str().unwrap()).await;
    let inbox = env.inbox(&token).await;
    let ttl = inbox[0]["time_to_live"].as_u64().unwrap();
    assert!((598..=600).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_pauses_its_channel_only_and_the_work_waits() {
    let env = start().await;
    let tokens = env.tokens(2, "gcm").await;
    env.register("on-legacy", &tokens[0], json!({"channel": "legacy"}))
        .await;
    env.register("on-v1", &tokens[1], json!({})).await;
    env.emu(
        Method::POST,
        "/emulator/faults",
        Some(json!({"path": "/gcm/send", "status": 401, "count": 1})),
    )
    .await;
    let sent = env
        .send(json!({"targets": {"all": true}, "data": {"case": "auth"}}))
        .await;
    let id = sent["id"].as_str().unwrap();
    // The v1 channel is not held up by the legacy channel's refused key.
    let m = env
        .wait_until(
            id,
            |m| m["counts"]["sent"] == 1 && m["counts"]["retry_wait"] == 1,
            Duration::from_secs(10),
        )
        .await;
    let legacy = m["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["channel"] == "legacy")
        .unwrap()
        .clone();
    assert_eq!(legacy["state"], "retry_wait", "{m:#}");
    assert!(legacy["error"].as_str().unwrap().contains("AuthFailed"));
    let app = env.call(Method::GET, "/v1/apps/sandbox", None).await;
    let channel = app.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "legacy")
        .unwrap()
        .clone();
    assert!(channel["status"]["paused_until"].is_string(), "{channel:#}");
    assert!(
        channel["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("401")
    );
    // Its key was never shown: only the reference and fingerprint.
    assert!(!app.text.contains("emulator-key"), "{}", app.text);
}
