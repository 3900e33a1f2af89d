//! The control API, fault injection, stats, activity, reset and h2c, over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::{KEY, codes_of, start, start_with};
use pushgate_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn status_fault_with_retry_after_seconds_fires_count_times() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let (status, v) = emu
        .fault(json!({"path": "/gcm/send", "status": 503, "retry_after": "5", "count": 2}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(v["id"].is_u64(), "{v}");
    for _ in 0..2 {
        let a = emu.send(json!({"to": &t})).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.header("retry-after"), Some("5"));
        assert!(
            a.content_type().starts_with("text/plain"),
            "{}",
            a.content_type()
        );
    }
    let a = emu.send(json!({"to": &t})).await;
    assert_eq!(a.status, StatusCode::OK, "count exhausted");
    assert!(a.header("retry-after").is_none());
    assert_eq!(emu.inbox(&t).await.len(), 1);
}

#[tokio::test]
async fn status_fault_with_http_date_and_path_filter() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let date = "Fri, 31 Dec 1999 23:59:59 GMT";
    let (status, _) = emu
        .fault(json!({"path": "/fcm/send", "status": 500, "retry_after": date, "count": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Another path is untouched.
    assert_eq!(emu.send(json!({"to": &t})).await.status, StatusCode::OK);
    let a = emu.send_to("/fcm/send", KEY, json!({"to": &t})).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.header("retry-after"), Some(date));
    assert_eq!(
        emu.send_to("/fcm/send", KEY, json!({"to": &t}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_bound_status_fault_only_hits_requests_naming_it() {
    let emu = start().await;
    let [a, b]: [String; 2] = emu.device(2).await.try_into().unwrap();
    emu.fault(json!({"token": &b, "status": 503, "count": 1}))
        .await;
    assert_eq!(emu.send(json!({"to": &a})).await.status, StatusCode::OK);
    assert_eq!(
        emu.send(json!({"registration_ids": [&a, &b]})).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(emu.send(json!({"to": &b})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn recipient_error_fault_in_json_and_plain_text() {
    let emu = start().await;
    let [a, b]: [String; 2] = emu.device(2).await.try_into().unwrap();
    emu.fault(json!({"token": &b, "error": "Unavailable", "retry_after": "7", "count": 1}))
        .await;
    let r = emu
        .send(json!({"registration_ids": [&a, &b], "data": {"k": "v"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("retry-after"), Some("7"));
    let v = r.json();
    assert_eq!(codes_of(&v), ["ok", "Unavailable"]);
    assert_eq!(v["success"], 1);
    assert_eq!(v["failure"], 1);
    // Spent: the retry goes through.
    let v = emu.send(json!({"registration_ids": [&b]})).await.json();
    assert_eq!(codes_of(&v), ["ok"]);

    // Plain text turns Unavailable into a 503 and InternalServerError into a 500.
    emu.fault(json!({"error": "Unavailable", "count": 1, "retry_after": "3"}))
        .await;
    let r = emu.plain(&format!("registration_id={a}")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert!(!r.text.contains("Error="), "{}", r.text);
    emu.fault(json!({"error": "InternalServerError", "count": 1}))
        .await;
    let r = emu.plain(&format!("registration_id={a}")).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Any other injected code is an Error= line.
    emu.fault(json!({"error": "DeviceMessageRateExceeded", "count": 1}))
        .await;
    let r = emu.plain(&format!("registration_id={a}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "Error=DeviceMessageRateExceeded\n");
    // Only the undisturbed sends reached the inbox.
    assert_eq!(emu.inbox(&a).await.len(), 1);
    assert_eq!(emu.inbox(&b).await.len(), 1);
}

#[tokio::test]
async fn delay_fault_delays_the_answer() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    emu.fault(json!({"delay_ms": 300, "count": 1})).await;
    let started = Instant::now();
    let a = emu.send(json!({"to": &t})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Delay plus status.
    emu.fault(json!({"delay_ms": 200, "status": 503, "count": 1}))
        .await;
    let started = Instant::now();
    assert_eq!(
        emu.send(json!({"to": &t})).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn faults_are_validated_listed_and_cleared() {
    let emu = start().await;
    let bad = [
        (json!({"status": 503, "count": 0}), "count"),
        (json!({"status": 503}), "count"),
        (json!({"status": 200, "count": 1}), "status"),
        (json!({"status": 600, "count": 1}), "status"),
        (
            json!({"status": 503, "retry_after": "soon", "count": 1}),
            "retry_after",
        ),
        (
            json!({"status": 503, "count": 1, "colour": "red"}),
            "colour",
        ),
        (json!({"status": "503", "count": 1}), "status"),
        (json!({"error": "", "count": 1}), "error"),
    ];
    for (spec, field) in bad {
        let (status, v) = emu.fault(spec.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spec}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(field), "{spec}: {msg}");
    }
    let t = emu.device(1).await.remove(0);
    emu.fault(json!({"status": 503, "count": 5})).await;
    let (_, v) = emu.control(Method::GET, "/emulator/faults", None).await;
    assert_eq!(v["faults"].as_array().unwrap().len(), 1);
    let (status, _) = emu.control(Method::DELETE, "/emulator/faults", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emu.send(json!({"to": &t})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn device_view_counters_and_inbox_limit() {
    let emu = start_with(EmulatorConfig {
        inbox_limit: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let t = emu.device(1).await.remove(0);
    for i in 1..=3 {
        emu.send(json!({"to": &t, "data": {"i": i.to_string()}}))
            .await;
    }
    let (status, v) = emu
        .control(Method::GET, &format!("/emulator/devices/{t}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "active");
    assert_eq!(v["sender_id"], "1234567890");
    assert_eq!(v["package"], "com.example.app");
    assert_eq!(v["canonical_token"], json!(null));
    assert_eq!(v["received"], 3);
    assert_eq!(v["inbox_len"], 2);
    assert_eq!(v["dropped"], 1);
    let inbox = emu.inbox(&t).await;
    assert_eq!(inbox[0]["data"]["i"], "2");
    assert_eq!(inbox[1]["data"]["i"], "3");

    let new = emu.rotate(&t).await;
    let (_, v) = emu
        .control(Method::GET, &format!("/emulator/devices/{t}"), None)
        .await;
    assert_eq!(v["canonical_token"], json!(new));
    emu.uninstall(&new).await;
    let (_, v) = emu
        .control(Method::GET, &format!("/emulator/devices/{t}"), None)
        .await;
    assert_eq!(v["state"], "uninstalled");
    assert_eq!(
        codes_of(&emu.send(json!({"to": &t})).await.json()),
        ["NotRegistered"]
    );
}

#[tokio::test]
async fn control_errors_name_the_field() {
    let emu = start().await;
    let (status, v) = emu
        .control(
            Method::POST,
            "/emulator/devices",
            Some(json!({"sender_id": "999"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("sender_id"), "{v}");
    let (status, v) = emu
        .control(Method::POST, "/emulator/devices", Some(json!({"count": 0})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("count"), "{v}");
    let (status, v) = emu
        .control(
            Method::POST,
            "/emulator/devices",
            Some(json!({"count": 100_001})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = emu
        .control(
            Method::POST,
            "/emulator/senders",
            Some(json!({"sender_id": "1"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("api_key"), "{v}");
    for (method, path) in [
        (Method::GET, "/emulator/devices/nope"),
        (Method::GET, "/emulator/devices/nope/messages"),
        (Method::POST, "/emulator/devices/nope/rotate"),
        (Method::POST, "/emulator/devices/nope/uninstall"),
    ] {
        let (status, v) = emu.control(method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(v["error"].is_string());
    }
    // Defaults: one device of the default sender and package.
    let (status, v) = emu.control(Method::POST, "/emulator/devices", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let d = &v["devices"][0];
    assert_eq!(d["sender_id"], "1234567890");
    assert_eq!(d["package"], "com.example.app");
    assert_eq!(d["state"], "active");
}

#[tokio::test]
async fn stats_count_duplicates() {
    let emu = start().await;
    let [a, b]: [String; 2] = emu.device(2).await.try_into().unwrap();
    let same = json!({"registration_ids": [&a, &b], "data": {"k": "v"}});
    emu.send(same.clone()).await;
    emu.send(json!({"registration_ids": [&a], "data": {"k": "other"}}))
        .await;
    let (_, v) = emu.control(Method::GET, "/emulator/stats", None).await;
    assert_eq!(v["requests"], 2);
    assert_eq!(v["delivered"], 3);
    assert_eq!(v["duplicates"], 0);
    emu.send(json!({"to": &a, "data": {"k": "v"}})).await;
    emu.send(json!({"to": &a, "data": {"k": "v"}})).await;
    let (_, v) = emu.control(Method::GET, "/emulator/stats", None).await;
    assert_eq!(v["requests"], 4);
    assert_eq!(v["delivered"], 5);
    assert_eq!(v["duplicates"], 2);
    assert_eq!(v["duplicate_pairs"], json!([{"token": &a, "count": 3}]));
}

#[tokio::test]
async fn activity_logs_requests_newest_last() {
    let emu = start().await;
    let t = emu.device(2).await;
    emu.send(json!({"registration_ids": &t})).await;
    emu.raw("/fcm/send", Some("bad"), None, "").await;
    emu.plain(&format!("registration_id={}", t[0])).await;
    let (_, v) = emu.control(Method::GET, "/emulator/activity", None).await;
    let r = v["requests"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["path"], "/gcm/send");
    assert_eq!(r[0]["status"], 200);
    assert_eq!(r[0]["recipients"], 2);
    assert_eq!(r[1]["path"], "/fcm/send");
    assert_eq!(r[1]["status"], 401);
    assert_eq!(r[2]["recipients"], 1);
    assert!(r[2]["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn reset_returns_to_the_start_state() {
    let emu = start().await;
    emu.control(
        Method::POST,
        "/emulator/senders",
        Some(json!({"sender_id": "77", "api_key": "k77"})),
    )
    .await;
    let t = emu.device(1).await.remove(0);
    emu.send(json!({"to": &t})).await;
    emu.fault(json!({"status": 503, "count": 9})).await;
    let (status, _) = emu.control(Method::POST, "/emulator/reset", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, v) = emu.control(Method::GET, "/emulator/stats", None).await;
    assert_eq!(v["requests"], 0);
    assert_eq!(v["delivered"], 0);
    let (_, v) = emu.control(Method::GET, "/emulator/activity", None).await;
    assert_eq!(v["requests"], json!([]));
    // Faults gone, device forgotten (well-formed: NotRegistered), default key still works.
    let a = emu.send(json!({"to": &t})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(codes_of(&a.json()), ["NotRegistered"]);
    // The custom sender is gone.
    assert_eq!(
        emu.send_to("/gcm/send", "k77", json!({"to": &t}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = emu
        .control(Method::GET, &format!("/emulator/devices/{t}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn h2c_with_prior_knowledge_and_http11_on_one_port() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2
        .post(emu.url("/gcm/send"))
        .header("Authorization", format!("key={KEY}"))
        .header("Content-Type", "application/json")
        .body(json!({"to": &t, "data": {"k": "v"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["success"], 1);
    let resp = emu
        .http
        .get(emu.url("/emulator/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    emu.running.shutdown().await;
}

#[tokio::test]
async fn shutdown_handle_ends_wait() {
    let emu = start().await;
    let handle = emu.running.shutdown_handle();
    let addr = emu.running.http_addr();
    let waiter = tokio::spawn(emu.running.wait());
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("wait returns after shutdown")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Every control route answers JSON from its handler: none is left out of the router, and
/// none answers the router's bare 404/405. A bogus body makes the mutating ones refuse
/// before they change anything.
#[tokio::test]
async fn every_control_route_is_mounted() {
    let emu = start().await;
    let routes = [
        (Method::POST, "/emulator/senders"),
        (Method::POST, "/emulator/devices"),
        (Method::GET, "/emulator/devices/nope"),
        (Method::GET, "/emulator/devices/nope/messages"),
        (Method::POST, "/emulator/devices/nope/uninstall"),
        (Method::POST, "/emulator/devices/nope/rotate"),
        (Method::POST, "/emulator/devices/nope/upstream"),
        (Method::POST, "/emulator/faults"),
        (Method::GET, "/emulator/faults"),
        (Method::DELETE, "/emulator/faults"),
        (Method::GET, "/emulator/activity"),
        (Method::GET, "/emulator/stats"),
        (Method::GET, "/emulator/topics/news"),
        (Method::POST, "/emulator/projects"),
        (Method::GET, "/emulator/projects/nope/key"),
        (Method::PUT, "/emulator/projects/nope/quota"),
        (Method::PUT, "/emulator/oauth"),
        (Method::POST, "/emulator/c2dm/accounts"),
        (Method::PUT, "/emulator/c2dm/quotas"),
        (Method::POST, "/emulator/c2dm/rotate-auth"),
        (Method::POST, "/emulator/xmpp/drain"),
        (Method::POST, "/emulator/xmpp/kill"),
        (Method::GET, "/emulator/xmpp/connections"),
        (Method::GET, "/emulator/xmpp/senders/1"),
        (Method::GET, "/emulator/xmpp/settings"),
        (Method::POST, "/emulator/xmpp/settings"),
        (Method::POST, "/emulator/reset"),
    ];
    for (method, path) in routes {
        let body = (method != Method::GET).then(|| json!({"bogus": true}));
        let (status, v) = emu.control(method.clone(), path, body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(v.is_object(), "{method} {path}: {status} {v}");
    }
    // The check above does tell an unmounted path apart.
    let (status, v) = emu.control(Method::GET, "/emulator/nope", None).await;
    assert_eq!(
        (status, v),
        (StatusCode::NOT_FOUND, serde_json::Value::Null)
    );
}
