//! Device groups (notification keys) over real sockets (docs/protocols.md,
//! "Legacy HTTP: device-group responses", "Device groups").

mod common;

use common::{Answer, Emu, KEY, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SENDER: &str = "1234567890";

async fn manage(emu: &Emu, path: &str, project_id: Option<&str>, body: Value) -> Answer {
    let mut req = emu
        .http
        .post(emu.url(path))
        .header("Authorization", format!("key={KEY}"))
        .json(&body);
    if let Some(p) = project_id {
        req = req.header("project_id", p);
    }
    let resp = req.send().await.unwrap();
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

async fn create(emu: &Emu, name: &str, members: &[String]) -> String {
    let a = manage(
        emu,
        "/fcm/notification",
        Some(SENDER),
        json!({"operation": "create", "notification_key_name": name, "registration_ids": members}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["notification_key"].as_str().unwrap().to_string()
}

async fn retrieve(emu: &Emu, name: &str) -> Answer {
    let resp = emu
        .http
        .get(emu.url(&format!("/gcm/notification?notification_key_name={name}")))
        .header("Authorization", format!("key={KEY}"))
        .header("project_id", SENDER)
        .send()
        .await
        .unwrap();
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

#[tokio::test]
async fn create_add_remove_get() {
    let emu = start().await;
    let t = emu.device(3).await;
    let key = create(&emu, "appUser-Chris", &t[..1]).await;
    assert!(key.starts_with("APA91b"), "{key}");
    assert!(!t.contains(&key));
    // A second create with the same name is refused.
    let a = manage(&emu, "/gcm/notification", Some(SENDER),
        json!({"operation": "create", "notification_key_name": "appUser-Chris", "registration_ids": [t[1]]})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json().get("error").is_some());

    let a = manage(
        &emu,
        "/gcm/notification",
        Some(SENDER),
        json!({"operation": "add", "notification_key_name": "appUser-Chris",
               "notification_key": key, "registration_ids": [t[1], t[2]]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["notification_key"], key.as_str());

    let a = retrieve(&emu, "appUser-Chris").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({"notification_key": key}));

    let a = manage(
        &emu,
        "/gcm/notification",
        Some(SENDER),
        json!({"operation": "remove", "notification_key": key, "registration_ids": [t[0]]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // Remaining members receive a group send.
    let a = emu.send(json!({"to": key, "data": {"g": "1"}})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json(), json!({"success": 2, "failure": 0}));
    assert_eq!(emu.inbox(&t[0]).await.len(), 0);
    assert_eq!(emu.inbox(&t[1]).await.len(), 1);
    assert_eq!(emu.inbox(&t[2]).await.len(), 1);

    // Removing every member deletes the group.
    let a = manage(
        &emu,
        "/gcm/notification",
        Some(SENDER),
        json!({"operation": "remove", "notification_key": key, "registration_ids": [t[1], t[2]]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = retrieve(&emu, "appUser-Chris").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json().get("error").is_some());
}

#[tokio::test]
async fn twenty_member_cap() {
    let emu = start().await;
    let t = emu.device(21).await;
    let a = manage(
        &emu,
        "/fcm/notification",
        Some(SENDER),
        json!({"operation": "create", "notification_key_name": "big", "registration_ids": t}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["error"].is_string());
    let key = create(&emu, "big", &t[..20]).await;
    let a = manage(
        &emu,
        "/fcm/notification",
        Some(SENDER),
        json!({"operation": "add", "notification_key": key, "registration_ids": [t[20]]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["error"].is_string());
}

#[tokio::test]
async fn project_id_header_must_match_the_key() {
    let emu = start().await;
    let t = emu.device(1).await;
    let body = json!({"operation": "create", "notification_key_name": "n", "registration_ids": t});
    let a = manage(&emu, "/fcm/notification", None, body.clone()).await;
    assert!(matches!(
        a.status,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
    ));
    assert!(a.json()["error"].is_string());
    let a = manage(&emu, "/fcm/notification", Some("999"), body.clone()).await;
    assert!(matches!(
        a.status,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
    ));
    assert!(a.json()["error"].is_string());
    let a = manage(&emu, "/fcm/notification", Some(SENDER), body).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn group_send_partial_and_total_failure() {
    let emu = start().await;
    let t = emu.device(3).await;
    let key = create(&emu, "g", &t).await;
    emu.uninstall(&t[1]).await;
    let a = emu
        .send(json!({"notification_key": key, "data": {"x": "y"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.json(),
        json!({"success": 2, "failure": 1, "failed_registration_ids": [t[1]]})
    );
    assert_eq!(emu.inbox(&t[0]).await.len(), 1);
    assert_eq!(emu.inbox(&t[2]).await.len(), 1);
    emu.uninstall(&t[0]).await;
    emu.uninstall(&t[2]).await;
    let a = emu.send(json!({"to": key, "data": {"x": "z"}})).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        serde_json::from_str::<Value>(&a.text).is_err(),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn v1_token_may_be_a_notification_key() {
    let emu = start().await;
    let t = emu.device(2).await;
    let key = create(&emu, "v1group", &t).await;
    let bearer = emu.access_token().await;
    let resp = emu
        .http
        .post(emu.url("/v1/projects/pushgate-emulator/messages:send"))
        .bearer_auth(&bearer)
        .json(&json!({"message": {"token": key, "data": {"v": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["name"]
            .as_str()
            .unwrap()
            .starts_with("projects/pushgate-emulator/messages/")
    );
    for token in &t {
        assert_eq!(emu.inbox(token).await.len(), 1);
    }
}
