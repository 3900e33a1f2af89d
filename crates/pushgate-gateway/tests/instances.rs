//! Several gateway instances on one PostgreSQL database: work stored by another instance
//! wakes this instance's idle workers at once (LISTEN/NOTIFY), not at their next poll.
//! Runs on PostgreSQL whatever `PUSHGATE_TEST_DATABASE` says (SQLite has no other instance).

mod common;

use std::time::Duration;

use common::{APP, cases, start_with};
use pushgate_store::{NewMessage, PostgresStore, Store, Targets};
use pushgate_testkit::postgres::fresh_schema;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_stored_by_another_instance_wakes_the_idle_workers() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let url = schema.url().to_string();
    // Idle workers poll once an hour, and a lease (the due time of in-flight work, which an
    // idle worker also waits for) lasts an hour: only an announcement can bring them the
    // second message within the test.
    let env = start_with(|spec| {
        spec.database = url.clone();
        spec.delivery.idle_poll = Duration::from_secs(3600);
        spec.delivery.lease = Duration::from_secs(3600);
    })
    .await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("d1", &token, json!({"channel": "legacy"}))
        .await;
    let first = env
        .send(json!({"targets": {"device_ids": ["d1"]}, "data": {"case": "first"}}))
        .await;
    let first_id = first["id"].as_str().unwrap().to_string();
    env.wait_done(&first_id).await;

    // The other instance: a store of its own on the same database, storing a message as the
    // API would (the first message's payload, with another case).
    let other = PostgresStore::open(&url).await.unwrap();
    let stored = other
        .get_message(first_id.parse().unwrap())
        .await
        .unwrap()
        .expect("the first message is stored");
    let payload: serde_json::Value = serde_json::from_str(
        &stored
            .payload
            .to_string()
            .replace("\"first\"", "\"second\""),
    )
    .unwrap();
    let second = NewMessage {
        id: uuid::Uuid::now_v7(),
        app: APP.into(),
        payload,
        channel_override: None,
        default_channel: "legacy".into(),
        ttl_secs: 600,
        idempotency_key: None,
        request_hash: None,
        created_at: time::OffsetDateTime::now_utc(),
        channels: None,
    };
    let targets = Targets {
        device_ids: vec!["d1".into()],
        ..Default::default()
    };
    let out = other
        .insert_message(second.clone(), &targets)
        .await
        .unwrap();
    assert_eq!(out.queued, 1);
    let done = env.wait_done(&second.id.to_string()).await;
    assert_eq!(done["counts"]["sent"], 1, "{done:#}");
    assert_eq!(cases(&env.inbox(&token).await), ["first", "second"]);
    other.close().await;
}
