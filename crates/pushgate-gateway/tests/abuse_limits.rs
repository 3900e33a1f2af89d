//! Limits that keep one client from starving the others: each API key's request rate (429
//! with Retry-After when over it), per app.

mod common;

use common::{APP, KEY, OTHER_KEY, start_with, with_other_app};
use pushgate_gateway::config::KeyRate;
use reqwest::StatusCode;

/// A status, its `Retry-After`, and its error code.
type Answer = (StatusCode, Option<String>, Option<String>);

/// Sends `n` requests at once with `key` to its app's device list; the statuses.
async fn burst(env: &common::Env, key: &str, app: &str, n: usize) -> Vec<Answer> {
    let calls = (0..n).map(|_| async {
        let r = env
            .http
            .get(format!("{}/v1/apps/{app}/devices", env.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("the gateway answers");
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("a JSON answer");
        (
            status,
            retry_after,
            body["error"]["code"].as_str().map(str::to_string),
        )
    });
    futures_util::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429_while_another_apps_key_is_served() {
    let env = start_with(|spec| {
        with_other_app(spec);
        // The sandbox app is tight; the other app has room for everything it sends.
        spec.apps[0].key_rate = Some(KeyRate {
            per_second: 2,
            burst: 5,
        });
        spec.apps[1].key_rate = Some(KeyRate {
            per_second: 1000,
            burst: 1000,
        });
    })
    .await;
    let (tight, roomy) = tokio::join!(
        burst(&env, KEY, APP, 40),
        burst(&env, OTHER_KEY, "other", 40)
    );
    let ok = tight.iter().filter(|(s, ..)| *s == StatusCode::OK).count();
    let limited: Vec<_> = tight
        .iter()
        .filter(|(s, ..)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(ok + limited.len(), 40, "only 200s and 429s: {tight:?}");
    // The burst, plus at most what two per second refill while the burst is answered.
    assert!(
        (5..=7).contains(&ok),
        "{ok} of 40 answered within a burst of 5"
    );
    assert!(
        limited.iter().all(|(_, after, code)| {
            after
                .as_deref()
                .is_some_and(|a| a.parse::<u64>().unwrap() >= 1)
                && code.as_deref() == Some("rate_limited")
        }),
        "every 429 is the API's error and says when to come back: {limited:?}"
    );
    assert!(
        roomy.iter().all(|(s, ..)| *s == StatusCode::OK),
        "the other app is never refused: {roomy:?}"
    );
    // After a second, the tight key is served again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = burst(&env, KEY, APP, 1).await;
    assert_eq!(again[0].0, StatusCode::OK);
}
