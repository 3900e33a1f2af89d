//! Stopping and starting: a graceful shutdown hands back what it could not finish, and a
//! gateway started again on the same database delivers it.

mod common;

use std::time::{Duration, Instant};

use common::{cases, start_with};
use pushgate_gateway::Gateway;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_unanswered_work_and_a_restart_delivers_it() {
    let mut env =
        start_with(|spec| spec.delivery.shutdown_grace = Duration::from_millis(300)).await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("slow", &token, json!({"channel": "legacy"}))
        .await;
    // The provider takes 3 s to answer: longer than the shutdown grace.
    env.emu(
        Method::POST,
        "/emulator/faults",
        Some(json!({"path": "/gcm/send", "delay_ms": 3000, "count": 1})),
    )
    .await;
    let sent = env
        .send(json!({"targets": {"device_ids": ["slow"]}, "data": {"case": "held"}}))
        .await;
    let id = sent["id"].as_str().unwrap().to_string();
    env.wait_until(
        &id,
        |m| m["counts"]["in_flight"] == 1,
        Duration::from_secs(5),
    )
    .await;
    let stopping = Instant::now();
    env.stop_gateway().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "the grace period bounds shutdown"
    );
    // Handed back, with the attempt it never finished undone.
    let store = pushgate_store::open(&env.spec.database, &Default::default())
        .await
        .unwrap();
    let page = store
        .list_deliveries(id.parse().unwrap(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.items[0].state, pushgate_store::DeliveryState::Queued);
    assert_eq!(page.items[0].attempts, 0);
    store.close().await;

    // The same database, a new gateway: the work goes out (the delayed answer may also have
    // reached the device: at-least-once).
    let gw = Gateway::start(&env.spec).await.unwrap();
    env.base = gw.base_url();
    env.gw = Some(gw);
    let done = env.wait_done(&id).await;
    assert_eq!(done["counts"]["sent"], 1, "{done:#}");
    let got = cases(&env.inbox(&token).await);
    assert!(
        !got.is_empty() && got.iter().all(|c| c == "held"),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_database_fails_the_start_without_its_password() {
    let env = start_with(|_| {}).await;
    let mut spec = env.spec.clone();
    // Nothing listens on port 1.
    spec.database = "postgres://gw:hunter2-secret@127.0.0.1:1/pushgate".into();
    spec.storage.pool_acquire_timeout = std::time::Duration::from_secs(2);
    spec.listen = "127.0.0.1:0".parse().unwrap();
    let err = Gateway::start(&spec)
        .await
        .err()
        .expect("no PostgreSQL on port 1");
    assert!(
        matches!(err, pushgate_gateway::StartError::Store { .. }),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("postgres://gw:***@127.0.0.1:1/pushgate"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
