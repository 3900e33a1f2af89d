//! Regression tests for input that once got through or hurt the server: bytes after a JSON
//! body, query strings that are not UTF-8, and a refused oversized body that left its
//! connection unusable for the client's next request.

mod common;

use common::{APP, KEY, count_rows, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_a_json_body_are_refused_and_nothing_is_stored() {
    let env = start().await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("d1", &token, json!({})).await;
    let cases = [
        (
            Method::POST,
            format!("/v1/apps/{APP}/messages"),
            r#"{"targets":{"all":true}} xyz"#,
        ),
        (
            Method::PUT,
            format!("/v1/apps/{APP}/devices/d2"),
            r#"{"token":"t"} xyz"#,
        ),
        (
            Method::POST,
            format!("/v1/apps/{APP}/devices:import"),
            r#"{"devices":[{"device_id":"d3","token":"t3"}]}{}"#,
        ),
    ];
    for (method, path, body) in cases {
        let a = env
            .raw(method, &path, "application/json", body.as_bytes().to_vec())
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        assert_eq!(a.body["error"]["field"], "body", "{}", a.text);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("after the JSON object"),
            "{}",
            a.text
        );
    }
    assert_eq!(count_rows(&env, "messages").await, 0);
    assert_eq!(count_rows(&env, "devices").await, 1, "only d1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_is_not_utf8_is_a_400_naming_the_parameter() {
    let env = start().await;
    for (path, field) in [
        (format!("/v1/apps/{APP}/devices?user=%FF%FE"), "user"),
        (format!("/v1/apps/{APP}/devices?limit=5&tag=%C3"), "tag"),
        (format!("/v1/apps/{APP}/events?type=%80"), "type"),
    ] {
        let a = env.call(Method::GET, &path, None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        assert_eq!(a.body["error"]["field"], field, "{}", a.text);
    }
    // The same parameter, valid, is answered.
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/devices?user=%C3%A9"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // The C2DM-era flow answers with a bare status, as django-c2dm did.
    let r = env
        .http
        .get(format!(
            "{}/c2dm/registration?device_id=%FF%FF%FF%FF%FF%FF%FF%FF&registration_id=abcdefghij",
            env.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(count_rows(&env, "devices").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_oversized_body_says_the_connection_closes_and_the_next_call_works() {
    let env = start().await;
    // One pooled client, as an application would hold it.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let huge = format!(
        "{{\"targets\":{{\"all\":true}},\"data\":{{\"k\":\"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    for round in 0..20 {
        let r = client
            .post(format!("{}/v1/apps/{APP}/messages", env.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the 413 itself: {e}"));
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "round {round}");
        assert_eq!(
            r.headers().get("connection").map(|v| v.as_bytes()),
            Some(&b"close"[..]),
            "round {round}: the client is told not to reuse the connection"
        );
        let next = client
            .get(format!("{}/v1/apps/{APP}/devices", env.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the call after the 413 failed: {e}"));
        assert_eq!(next.status(), StatusCode::OK, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token() {
    let token = "metrics-token-0123456789";
    let env = common::start_with(|spec| {
        spec.metrics.token = Some(pushgate_gateway::config::Secret::new(token, "test"));
    })
    .await;
    let url = format!("{}/metrics", env.base);
    let anonymous = env.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let text = anonymous.text().await.unwrap();
    assert!(!text.contains("pushgate_"), "no metric leaks: {text}");
    let wrong = env.http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(
        wrong.status(),
        StatusCode::UNAUTHORIZED,
        "an app key is not the token"
    );
    let right = env.http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("pushgate_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_live_on_a_listener_of_their_own() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let env = common::start_with(|spec| spec.metrics.listen = Some(addr)).await;
    let on_api = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    let own = env
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.unwrap().contains("pushgate_"));
    // Only metrics there: the API is not reachable through the metrics listener.
    let api = env
        .http
        .get(format!("http://{addr}/v1/apps/{APP}/devices"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
}
