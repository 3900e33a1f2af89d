//! Retention in a running gateway: its background task deletes finished messages once they
//! are older than the limit, and the API then answers a deleted message's id with 404
//! `expired_from_history` (never a 500), while an unknown newer id stays a plain 404.

mod common;

use std::time::Duration;

use common::{APP, start_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_deleted_by_retention_answers_404_expired_from_history() {
    let env = start_with(|spec| {
        spec.retention.default.messages = Some(Duration::from_secs(1));
        spec.retention.interval = Duration::from_secs(1);
    })
    .await;
    let token = env.tokens(1, "fcm").await.remove(0);
    env.register("a", &token, json!({})).await;
    let sent = env
        .send(json!({"targets": {"device_ids": ["a"]}, "data": {"case": "old"}}))
        .await;
    let id = sent["id"].as_str().unwrap().to_string();
    let done = env.wait_done(&id).await;
    assert_eq!(done["counts"]["sent"], 1, "{done:#}");

    let gone = pushgate_testkit::eventually_ok(
        "the retention task deletes the message",
        Duration::from_secs(30),
        || async {
            let a = env
                .call(Method::GET, &format!("/v1/messages/{id}"), None)
                .await;
            if a.status == StatusCode::NOT_FOUND {
                Ok(a)
            } else {
                Err((a.status, a.text))
            }
        },
    )
    .await;
    assert_eq!(
        gone.body["error"]["code"], "expired_from_history",
        "{}",
        gone.text
    );
    let said = gone.body["error"]["message"].as_str().unwrap();
    assert!(
        said.contains(&id) && said.contains("retention (1s)"),
        "{said}"
    );
    // The same under the app's path, with any page of results.
    let in_app = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/messages/{id}?limit=10&cursor=5"),
            None,
        )
        .await;
    assert_eq!(in_app.status, StatusCode::NOT_FOUND, "{}", in_app.text);
    assert_eq!(in_app.body["error"]["code"], "expired_from_history");
    // Its deliveries went with it.
    assert_eq!(common::count_rows(&env, "deliveries").await, 0);

    // An id made after the purge was never a message: a plain 404.
    let unknown = uuid::Uuid::now_v7();
    let a = env
        .call(Method::GET, &format!("/v1/messages/{unknown}"), None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "not_found", "{}", a.text);
    // And a message sent now is there until it, too, is old.
    let fresh = env
        .send(json!({"targets": {"device_ids": ["a"]}, "data": {"case": "new"}}))
        .await;
    let fresh = fresh["id"].as_str().unwrap();
    let a = env
        .call(Method::GET, &format!("/v1/messages/{fresh}"), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}
