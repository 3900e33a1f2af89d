//! The registry cleans itself from provider answers: canonical ids rewrite tokens (or retire
//! a device whose new token another device holds), and dead tokens make devices invalid and
//! are never sent to again.

mod common;

use common::{APP, cases, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canonical_id_rewrites_the_token_and_later_messages_use_it() {
    let env = start().await;
    let old = env.tokens(1, "gcm").await.remove(0);
    env.register("a", &old, json!({"channel": "legacy"})).await;
    let rotated = env
        .emu(
            Method::POST,
            &format!("/emulator/devices/{old}/rotate"),
            None,
        )
        .await;
    let new = rotated.body["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);

    let first = env
        .send(json!({"targets": {"device_ids": ["a"]}, "data": {"case": "one"}}))
        .await;
    let done = env.wait_done(first["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["sent"], 1, "{done:#}");
    let device = env.device("a").await;
    assert_eq!(device["token"], new.as_str(), "{device:#}");
    assert_eq!(device["state"], "active");

    let second = env
        .send(json!({"targets": {"device_ids": ["a"]}, "data": {"case": "two"}}))
        .await;
    env.wait_done(second["id"].as_str().unwrap()).await;
    let inbox = env.inbox(&new).await;
    assert_eq!(cases(&inbox), ["one", "two"]);
    assert_eq!(
        inbox[0]["token"],
        old.as_str(),
        "the first went to the old token"
    );
    assert_eq!(
        inbox[1]["token"],
        new.as_str(),
        "the second to the canonical one"
    );
    let store = env.gw().store();
    let rotated = store
        .events_after(APP, 0, 10, Some(pushgate_store::EventKind::TokenRotated))
        .await
        .unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].device_id.as_deref(), Some("a"));
    assert_eq!(rotated[0].data["old_token"], old.as_str());
    assert_eq!(rotated[0].data["new_token"], new.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canonical_id_another_device_holds_retires_the_old_device() {
    let env = start().await;
    let old = env.tokens(1, "gcm").await.remove(0);
    env.register("old-install", &old, json!({"channel": "legacy"}))
        .await;
    let rotated = env
        .emu(
            Method::POST,
            &format!("/emulator/devices/{old}/rotate"),
            None,
        )
        .await;
    let new = rotated.body["token"].as_str().unwrap().to_string();
    // The app already registered the new token under another device id.
    env.register("new-install", &new, json!({"channel": "legacy"}))
        .await;

    let sent = env
        .send(json!({"targets": {"device_ids": ["old-install"]}, "data": {"case": "x"}}))
        .await;
    env.wait_done(sent["id"].as_str().unwrap()).await;
    let retired = env.device("old-install").await;
    assert_eq!(retired["state"], "invalid", "{retired:#}");
    assert_eq!(
        retired["invalid_reason"],
        "canonical id held by new-install"
    );
    assert_eq!(
        retired["token"],
        old.as_str(),
        "the retired device keeps its old token"
    );
    let kept = env.device("new-install").await;
    assert_eq!(
        (kept["state"].as_str(), kept["token"].as_str()),
        (Some("active"), Some(new.as_str()))
    );

    // A broadcast now reaches the physical device once, through the live registration.
    let all = env
        .send(json!({"targets": {"all": true}, "data": {"case": "all"}}))
        .await;
    assert_eq!(all["deliveries"], 1);
    env.wait_done(all["id"].as_str().unwrap()).await;
    assert_eq!(cases(&env.inbox(&new).await), ["x", "all"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_token_invalidates_the_device_and_is_never_sent_again() {
    let env = start().await;
    let tokens = env.tokens(2, "gcm").await;
    env.register("v1-phone", &tokens[0], json!({})).await;
    env.register("legacy-phone", &tokens[1], json!({"channel": "legacy"}))
        .await;
    for t in &tokens {
        let a = env
            .emu(
                Method::POST,
                &format!("/emulator/devices/{t}/uninstall"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let sent = env
        .send(json!({"targets": {"all": true}, "data": {"case": "dead"}}))
        .await;
    let done = env.wait_done(sent["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["token_dead"], 2, "{done:#}");
    let errors: Vec<&str> = done["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(
        errors.contains(&"UNREGISTERED") && errors.contains(&"NotRegistered"),
        "{errors:?}"
    );
    for id in ["v1-phone", "legacy-phone"] {
        let d = env.device(id).await;
        assert_eq!(d["state"], "invalid", "{d:#}");
    }
    let requests_before = env.activity().await.len();

    // Naming them again: settled at once, nothing reaches the provider.
    let again = env
        .send(json!({"targets": {"device_ids": ["v1-phone", "legacy-phone"], "all": true}, "data": {"case": "again"}}))
        .await;
    assert_eq!(
        (again["deliveries"].as_u64(), again["queued"].as_u64()),
        (Some(2), Some(0))
    );
    let done = env.wait_done(again["id"].as_str().unwrap()).await;
    assert!(
        done["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["error"] == "device_invalid")
    );
    // Give a worker every chance to send anything it would.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        env.activity().await.len(),
        requests_before,
        "no request after invalidation"
    );
    let store = env.gw().store();
    let invalidated = store
        .events_after(
            APP,
            0,
            10,
            Some(pushgate_store::EventKind::DeviceInvalidated),
        )
        .await
        .unwrap();
    assert_eq!(invalidated.len(), 2);
    // The app registering a fresh token brings the device back.
    let fresh = env.tokens(1, "gcm").await.remove(0);
    env.register("v1-phone", &fresh, json!({})).await;
    assert_eq!(env.device("v1-phone").await["state"], "active");
}
