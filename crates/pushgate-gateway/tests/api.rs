//! The API's contract: idempotent sends, apps isolated from each other, and bad input
//! refused with a clear JSON error that names the field, storing nothing.

mod common;

use common::{APP, KEY, OTHER_KEY, cases, count_rows, start, start_with, with_other_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_post_with_the_same_idempotency_key_sends_once() {
    let env = start().await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("p", &token, json!({})).await;
    let body = json!({"targets": {"device_ids": ["p"]}, "data": {"case": "once"}});
    let post = |body: serde_json::Value, key: &'static str| {
        let env = &env;
        async move {
            env.http
                .post(format!("{}/v1/apps/{APP}/messages", env.base))
                .bearer_auth(KEY)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = post(body.clone(), "order-42").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    env.wait_done(first["id"].as_str().unwrap()).await;
    let second = post(body.clone(), "order-42").await;
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second, first, "the first answer, again");
    let changed = post(
        json!({"targets": {"device_ids": ["p"]}, "data": {"case": "other"}}),
        "order-42",
    )
    .await;
    assert_eq!(changed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let changed: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(changed["error"]["code"], "idempotency_key_reused");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(cases(&env.inbox(&token).await), ["once"]);
    assert_eq!(count_rows(&env, "messages").await, 1);
    let bad_key = env
        .http
        .post(format!("{}/v1/apps/{APP}/messages", env.base))
        .bearer_auth(KEY)
        .header("idempotency-key", "x".repeat(300))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apps_key_cannot_see_or_send_for_another() {
    let env = start_with(with_other_app).await;
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("mine", &token, json!({})).await;
    let sent = env
        .send(json!({"targets": {"all": true}, "data": {"case": "a"}}))
        .await;
    let id = sent["id"].as_str().unwrap();

    let other = Some(OTHER_KEY);
    let cases_403 = [
        (Method::GET, format!("/v1/apps/{APP}/devices")),
        (Method::GET, format!("/v1/apps/{APP}/devices/mine")),
        (Method::DELETE, format!("/v1/apps/{APP}/devices/mine")),
        (Method::GET, format!("/v1/apps/{APP}")),
        (Method::GET, format!("/v1/apps/{APP}/messages/{id}")),
    ];
    for (method, path) in cases_403 {
        let a = env.call_as(other, method.clone(), &path, None).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            a.text
        );
        assert_eq!(a.body["error"]["code"], "forbidden");
    }
    let a = env
        .call_as(
            other,
            Method::POST,
            &format!("/v1/apps/{APP}/messages"),
            Some(json!({"targets": {"all": true}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = env
        .call_as(
            other,
            Method::PUT,
            &format!("/v1/apps/{APP}/devices/x"),
            Some(json!({"token": "t"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Another app's message does not exist for this key.
    let a = env
        .call_as(other, Method::GET, &format!("/v1/messages/{id}"), None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Its own app's view is empty.
    let a = env
        .call_as(other, Method::GET, "/v1/apps/other/devices", None)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["devices"], json!([]));
    // No key, a wrong key, an unknown app.
    let a = env
        .call_as(None, Method::GET, &format!("/v1/apps/{APP}/devices"), None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers.get("www-authenticate").is_some());
    let a = env
        .call_as(
            Some("not-a-key-of-anyone-at-all"),
            Method::GET,
            &format!("/v1/apps/{APP}/devices"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["error"]["code"], "unauthenticated");
    let a = env.call(Method::GET, "/v1/apps/nope/devices", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Nothing of the refused calls was stored.
    assert_eq!(count_rows(&env, "messages").await, 1);
    assert_eq!(count_rows(&env, "devices").await, 1);
    // Errors carry a request id, the same as the header.
    let rid = a.headers["x-request-id"].to_str().unwrap();
    assert_eq!(a.body["request_id"], rid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let env = start().await;
    let gcm = env.tokens(2, "gcm").await;
    let c2dm = env.tokens(1, "c2dm").await;
    env.register("v1", &gcm[0], json!({})).await;
    env.register("legacy", &gcm[1], json!({"channel": "legacy"}))
        .await;
    env.register("old", &c2dm[0], json!({"channel": "c2dm"}))
        .await;
    let path = format!("/v1/apps/{APP}/messages");

    let check = |status: StatusCode, code: &'static str, field: Option<&'static str>| {
        move |a: &common::Answer| {
            assert_eq!(a.status, status, "{}", a.text);
            assert_eq!(a.body["error"]["code"], code, "{}", a.text);
            if let Some(field) = field {
                assert_eq!(a.body["error"]["field"], field, "{}", a.text);
                assert!(a.body["error"]["message"].as_str().unwrap().contains(field));
            }
            assert!(a.body["request_id"].is_string());
        }
    };
    let a = env
        .raw(
            Method::POST,
            &path,
            "application/json",
            b"{\"targets\": {".to_vec(),
        )
        .await;
    check(StatusCode::BAD_REQUEST, "invalid_request", Some("body"))(&a);
    let a = env
        .raw(Method::POST, &path, "text/plain", b"{}".to_vec())
        .await;
    check(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    )(&a);
    let huge = format!(
        "{{\"targets\":{{\"all\":true}},\"data\":{{\"k\":\"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let a = env
        .raw(Method::POST, &path, "application/json", huge.into_bytes())
        .await;
    check(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None)(&a);
    for (body, field) in [
        (
            json!({"targets": {"all": true}, "colapse_key": "x"}),
            "colapse_key",
        ),
        (json!({"targets": {"everyone": true}}), "targets.everyone"),
        (json!({"targets": {"all": true}, "ttl": -1}), "ttl"),
        (
            json!({"targets": {"all": true}, "data": {"google.x": "1"}}),
            "data.google.x",
        ),
        (
            json!({"targets": {"all": true}, "channel": "nope"}),
            "channel",
        ),
        (json!({"targets": {}}), "targets"),
        // 4 KiB of data is too much for the legacy device it reaches.
        (
            json!({"targets": {"device_ids": ["legacy"]}, "data": {"k": "x".repeat(5000)}}),
            "data",
        ),
        // C2DM needs a collapse key, and carries no notification.
        (
            json!({"targets": {"all": true}, "data": {"a": "b"}}),
            "collapse_key",
        ),
        (
            json!({"targets": {"device_ids": ["old"]}, "collapse_key": "k", "notification": {"title": "t"}}),
            "notification",
        ),
        // Named devices too: the C2DM one among others refuses the whole message.
        (
            json!({"targets": {"device_ids": ["v1", "old"]}, "data": {"a": "b"}}),
            "collapse_key",
        ),
        (
            json!({"targets": {"tokens": [c2dm[0]]}, "data": {"a": "b"}}),
            "collapse_key",
        ),
    ] {
        let a = env.call(Method::POST, &path, Some(body.clone())).await;
        check(StatusCode::BAD_REQUEST, "invalid_request", Some(field))(&a);
    }
    let reach = env
        .call(
            Method::POST,
            &path,
            Some(json!({"targets": {"device_ids": ["legacy"]}, "data": {"k": "x".repeat(5000)}})),
        )
        .await;
    assert!(
        reach.text.contains("legacy"),
        "the error names the channel: {}",
        reach.text
    );
    assert_eq!(count_rows(&env, "messages").await, 0);
    assert_eq!(count_rows(&env, "deliveries").await, 0);
    // Only channels that would carry the message check it: a token of a disabled C2DM device
    // is answered with its settled delivery, not refused for a missing collapse key.
    env.register(
        "old",
        &c2dm[0],
        json!({"channel": "c2dm", "state": "disabled"}),
    )
    .await;
    let sent = env
        .send(json!({"targets": {"tokens": [c2dm[0]]}, "data": {"a": "b"}}))
        .await;
    assert_eq!(
        (sent["deliveries"].as_u64(), sent["queued"].as_u64()),
        (Some(1), Some(0)),
        "{sent}"
    );
    let done = env.wait_done(sent["id"].as_str().unwrap()).await;
    assert_eq!(done["results"][0]["error"], "device_disabled", "{done:#}");

    // Devices: unknown fields, wrong types, bad labels, unknown channel; nothing stored.
    let dev = |id: &str| format!("/v1/apps/{APP}/devices/{id}");
    for (body, field) in [
        (json!({"token": "t", "colour": "red"}), "colour"),
        (json!({"tokn": "t"}), "tokn"),
        (json!({"token": 5}), "token"),
        (json!({"token": ""}), "token"),
        (json!({"token": "t", "tags": ["ok", ""]}), "tags[1]"),
        (json!({"token": "t", "topics": ["bad topic"]}), "topics[0]"),
        (json!({"token": "t", "channel": "nope"}), "channel"),
        (json!({"token": "t", "state": "invalid"}), "state"),
    ] {
        let a = env
            .call(Method::PUT, &dev("fresh"), Some(body.clone()))
            .await;
        check(StatusCode::BAD_REQUEST, "invalid_request", Some(field))(&a);
    }
    let a = env.call(Method::GET, &dev("fresh"), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // An import with one bad entry stores none of them.
    let a = env
        .call(
            Method::POST,
            &format!("/v1/apps/{APP}/devices:import"),
            Some(json!({"devices": [{"device_id": "i1", "token": "t1"}, {"device_id": "i2", "token": ""}]})),
        )
        .await;
    check(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("devices[1].token"),
    )(&a);
    assert_eq!(count_rows(&env, "devices").await, 3);
    // Unknown routes and methods are JSON errors too.
    let a = env.call(Method::GET, "/v1/nowhere", None).await;
    check(StatusCode::NOT_FOUND, "not_found", None)(&a);
    let a = env.call(Method::PATCH, &dev("v1"), None).await;
    check(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)(&a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_registry_lists_pages_imports_and_deletes() {
    let env = start().await;
    let entries: Vec<_> = (0..25)
        .map(|i| json!({"device_id": format!("dev-{i:02}"), "token": format!("tok-{i}"), "user": format!("u{}", i % 3), "tags": if i % 2 == 0 { json!(["even"]) } else { json!([]) }}))
        .collect();
    let a = env
        .call(
            Method::POST,
            &format!("/v1/apps/{APP}/devices:import"),
            Some(json!({"devices": entries})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        (a.body["imported"].as_u64(), a.body["created"].as_u64()),
        (Some(25), Some(25))
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=10&cursor={c}"),
            None => "?limit=10".into(),
        };
        let a = env
            .call(Method::GET, &format!("/v1/apps/{APP}/devices{q}"), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        for d in a.body["devices"].as_array().unwrap() {
            seen.push(d["device_id"].as_str().unwrap().to_string());
        }
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("dev-{i:02}")).collect();
    assert_eq!(seen, expected);
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/devices?user=u1&tag=even"),
            None,
        )
        .await;
    let ids: Vec<&str> = a.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-04", "dev-10", "dev-16", "dev-22"]);
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/devices?state=bogus"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // A second device registering a known token takes it over.
    let a = env
        .call(
            Method::PUT,
            &format!("/v1/apps/{APP}/devices/newcomer"),
            Some(json!({"token": "tok-3"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["took_over_from"], "dev-03");
    assert_eq!(env.device("dev-03").await["state"], "invalid");
    // Updating answers 200; disabling is the application's own state.
    let a = env
        .call(
            Method::PUT,
            &format!("/v1/apps/{APP}/devices/newcomer"),
            Some(json!({"token": "tok-3", "state": "disabled"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["state"], "disabled");
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/devices?state=disabled"),
            None,
        )
        .await;
    assert_eq!(a.body["devices"].as_array().unwrap().len(), 1);
    let a = env
        .call(
            Method::DELETE,
            &format!("/v1/apps/{APP}/devices/newcomer"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = env
        .call(
            Method::DELETE,
            &format!("/v1/apps/{APP}/devices/newcomer"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
