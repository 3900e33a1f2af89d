//! Topic and condition fan-out over real sockets (docs/protocols.md,
//! "Legacy HTTP: topic and condition responses", the "Topics: ..." sections and
//! "Emulator checklist").

mod common;

use common::{Emu, KEY, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn inbox_len(emu: &Emu, token: &str) -> usize {
    emu.inbox(token).await.len()
}

#[tokio::test]
async fn legacy_topic_send_reaches_exactly_the_subscribers() {
    let emu = start().await;
    let tokens = emu.device(4).await;
    emu.subscribe("news", &tokens[..2]).await;
    let a = emu
        .send(json!({"to": "/topics/news", "data": {"k": "v"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    // docs/protocols.md, "Legacy HTTP: topic and condition responses": a numeric message id,
    // nothing else.
    assert!(v["message_id"].is_i64() || v["message_id"].is_u64(), "{v}");
    assert!(v.get("results").is_none());
    for (i, t) in tokens.iter().enumerate() {
        let inbox = emu.inbox(t).await;
        if i < 2 {
            assert_eq!(inbox.len(), 1, "device {i}");
            assert_eq!(inbox[0]["data"]["k"], "v", "{}", inbox[0]);
        } else {
            assert!(inbox.is_empty(), "device {i}");
        }
    }
    // The control API lists the subscribers.
    let (status, v) = emu
        .control(Method::GET, "/emulator/topics/news", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = v["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&tokens[0].as_str()) && listed.contains(&tokens[1].as_str()));
}

#[tokio::test]
async fn dry_run_uninstalled_and_other_senders_get_nothing() {
    let emu = start().await;
    let tokens = emu.device(2).await;
    emu.subscribe("t", &tokens).await;
    emu.uninstall(&tokens[1]).await;
    let a = emu
        .send(json!({"to": "/topics/t", "dry_run": true, "data": {"a": "1"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(inbox_len(&emu, &tokens[0]).await, 0);
    // Another sender's topic of the same name reaches nobody here.
    let (s, _) = emu
        .control(
            Method::POST,
            "/emulator/senders",
            Some(json!({"sender_id": "555", "api_key": "other-key"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let a = emu
        .send_to("/gcm/send", "other-key", json!({"to": "/topics/t"}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(inbox_len(&emu, &tokens[0]).await, 0);
    let a = emu
        .send_to("/fcm/send", KEY, json!({"to": "/topics/t"}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(inbox_len(&emu, &tokens[0]).await, 1);
}

#[tokio::test]
async fn condition_reaches_exactly_the_matching_devices() {
    let emu = start().await;
    let t = emu.device(5).await;
    // d0: A B, d1: A C, d2: A, d3: B C, d4: nothing
    emu.subscribe("TopicA", &t[0..3]).await;
    emu.subscribe("TopicB", &[t[0].clone(), t[3].clone()]).await;
    emu.subscribe("TopicC", &[t[1].clone(), t[3].clone()]).await;
    // The example of docs/protocols.md, "Topics: conditions".
    let cond = "'TopicA' in topics && ('TopicB' in topics || 'TopicC' in topics)";
    let a = emu
        .send(json!({"condition": cond, "data": {"n": "1"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.json()["message_id"].is_number());
    let got: Vec<usize> = futures_len(&emu, &t).await;
    assert_eq!(got, vec![1, 1, 0, 0, 0]);
    // docs/protocols.md, "Topics: conditions": a negation also matches instances subscribed to
    // nothing.
    let a = emu
        .send(json!({"condition": "!('TopicA' in topics)", "data": {"n": "2"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let got: Vec<usize> = futures_len(&emu, &t).await;
    assert_eq!(got, vec![1, 1, 0, 1, 1]);
}

async fn futures_len(emu: &Emu, tokens: &[String]) -> Vec<usize> {
    let mut out = Vec::new();
    for t in tokens {
        out.push(inbox_len(emu, t).await);
    }
    out
}

#[tokio::test]
async fn v1_topic_and_condition_fan_out() {
    let emu = start().await;
    let t = emu.device(3).await;
    emu.subscribe("weather", &t[..2]).await;
    emu.subscribe("alerts", &t[1..]).await;
    let bearer = emu.access_token().await;
    let send = |body: Value| {
        let req = emu
            .http
            .post(emu.url("/v1/projects/pushgate-emulator/messages:send"))
            .bearer_auth(&bearer)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = send(json!({"message": {"topic": "weather", "data": {"x": "1"}}})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["name"]
            .as_str()
            .unwrap()
            .starts_with("projects/pushgate-emulator/messages/")
    );
    assert_eq!(futures_len(&emu, &t).await, vec![1, 1, 0]);
    let (status, v) = send(json!({"message": {
        "condition": "'weather' in topics && 'alerts' in topics", "data": {"x": "2"}}}))
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(futures_len(&emu, &t).await, vec![1, 2, 0]);
    let inbox = emu.inbox(&t[1]).await;
    assert_eq!(inbox[1]["data"]["x"], "2");
    // validate_only delivers nothing.
    let (status, _) = send(json!({"validate_only": true,
        "message": {"topic": "weather", "data": {"x": "3"}}}))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(futures_len(&emu, &t).await, vec![1, 2, 0]);
}
