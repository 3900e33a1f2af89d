//! C2DM over real sockets: ClientLogin and `/c2dm/send` (docs/protocols.md, "C2DM",
//! "Emulator checklist: C2DM").

mod common;

use common::{Answer, Emu, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

const EMAIL: &str = "c2dm@example.com";
const PASSWORD: &str = "emulator-password";

async fn form(emu: &Emu, path: &str, auth: Option<&str>, pairs: &[(&str, &str)]) -> Answer {
    let mut req = emu.http.post(emu.url(path)).form(pairs);
    if let Some(a) = auth {
        req = req.header("Authorization", format!("GoogleLogin auth={a}"));
    }
    let resp = req.send().await.unwrap();
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

async fn login(emu: &Emu, email: &str, password: &str, service: &str) -> Answer {
    form(
        emu,
        "/accounts/ClientLogin",
        None,
        &[
            ("accountType", "HOSTED_OR_GOOGLE"),
            ("Email", email),
            ("Passwd", password),
            ("service", service),
            ("source", "com.example-app-1"),
        ],
    )
    .await
}

fn auth_of(a: &Answer) -> String {
    a.text
        .lines()
        .find_map(|l| l.strip_prefix("Auth="))
        .unwrap_or_else(|| panic!("no Auth= in {:?}", a.text))
        .to_string()
}

async fn auth(emu: &Emu) -> String {
    let a = login(emu, EMAIL, PASSWORD, "ac2dm").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    auth_of(&a)
}

async fn c2dm_devices(emu: &Emu, n: usize) -> Vec<String> {
    emu.devices(json!({"count": n, "protocol": "c2dm"})).await
}

async fn send(emu: &Emu, auth: &str, id: &str, extra: &[(&str, &str)]) -> Answer {
    let mut pairs = vec![("registration_id", id)];
    pairs.extend_from_slice(extra);
    form(emu, "/c2dm/send", Some(auth), &pairs).await
}

fn error_of(a: &Answer) -> Option<&str> {
    a.text.lines().find_map(|l| l.strip_prefix("Error="))
}

#[tokio::test]
async fn client_login_success_and_failures() {
    let emu = start().await;
    let a = login(&emu, EMAIL, PASSWORD, "ac2dm").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.text.contains("SID=") && a.text.contains("LSID="),
        "{}",
        a.text
    );
    assert!(!auth_of(&a).is_empty());
    let a = login(&emu, EMAIL, "wrong", "ac2dm").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&a), Some("BadAuthentication"));
    let a = login(&emu, "nobody@example.com", PASSWORD, "ac2dm").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&a), Some("BadAuthentication"));
    let a = login(&emu, EMAIL, PASSWORD, "mail").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&a), Some("ServiceDisabled"));
    // A registered account works; after a reset only the default one does.
    let (s, _) = emu
        .control(
            Method::POST,
            "/emulator/c2dm/accounts",
            Some(json!({"email": "role@example.org", "password": "pw"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        login(&emu, "role@example.org", "pw", "ac2dm").await.status,
        StatusCode::OK
    );
    let (s, _) = emu.control(Method::POST, "/emulator/reset", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        login(&emu, "role@example.org", "pw", "ac2dm").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        login(&emu, EMAIL, PASSWORD, "ac2dm").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn send_delivers_and_answers_id() {
    let emu = start().await;
    let auth = auth(&emu).await;
    let ids = c2dm_devices(&emu, 1).await;
    let a = send(
        &emu,
        &auth,
        &ids[0],
        &[("collapse_key", "ck"), ("data.msg", "hi")],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(a.text.starts_with("id="), "{}", a.text);
    let inbox = emu.inbox(&ids[0]).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["via"], "c2dm");
    assert_eq!(inbox[0]["data"]["msg"], "hi");
    let (_, stats) = emu.control(Method::GET, "/emulator/stats", None).await;
    assert_eq!(stats["c2dm_logins"], 1);
    assert_eq!(stats["c2dm_sends"], 1);
}

#[tokio::test]
async fn every_error_code() {
    let emu = start().await;
    let auth = auth(&emu).await;
    let ids = c2dm_devices(&emu, 2).await;
    let gcm = emu.device(1).await;
    let ck = ("collapse_key", "ck");

    let a = form(&emu, "/c2dm/send", Some(&auth), &[ck]).await;
    assert_eq!(error_of(&a), Some("MissingRegistration"), "{}", a.text);
    let a = send(&emu, &auth, &ids[0], &[]).await;
    assert_eq!(error_of(&a), Some("MissingCollapseKey"));
    let big = "x".repeat(1100);
    let a = send(&emu, &auth, &ids[0], &[ck, ("data.k", &big)]).await;
    assert_eq!(error_of(&a), Some("MessageTooBig"));
    let a = send(&emu, &auth, "garbage", &[ck]).await;
    assert_eq!(error_of(&a), Some("InvalidRegistration"));
    // A GCM token is not a C2DM registration id, and vice versa.
    let a = send(&emu, &auth, &gcm[0], &[ck]).await;
    assert_eq!(error_of(&a), Some("InvalidRegistration"));
    let r = emu.send(json!({"to": ids[0]})).await;
    assert_eq!(r.json()["results"][0]["error"], "InvalidRegistration");
    // Another sender's device.
    let (s, _) = emu
        .control(
            Method::POST,
            "/emulator/senders",
            Some(json!({"sender_id": "777", "api_key": "k777"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let other = emu
        .devices(json!({"count": 1, "protocol": "c2dm", "sender_id": "777"}))
        .await;
    let a = send(&emu, &auth, &other[0], &[ck]).await;
    assert_eq!(error_of(&a), Some("MismatchSenderId"));
    emu.uninstall(&ids[1]).await;
    let a = send(&emu, &auth, &ids[1], &[ck]).await;
    assert_eq!(error_of(&a), Some("NotRegistered"));
    // Every Error= answer is HTTP 200 text/plain.
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn unauthorized_is_401() {
    let emu = start().await;
    let ids = c2dm_devices(&emu, 1).await;
    let a = form(
        &emu,
        "/c2dm/send",
        None,
        &[("registration_id", &ids[0]), ("collapse_key", "c")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(&emu, "not-a-token", &ids[0], &[("collapse_key", "c")]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn quotas_per_sender_and_per_device() {
    let emu = start().await;
    let auth = auth(&emu).await;
    let ids = c2dm_devices(&emu, 2).await;
    let ck = ("collapse_key", "c");
    let (s, _) = emu
        .control(
            Method::PUT,
            "/emulator/c2dm/quotas",
            Some(json!({"per_device": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        send(&emu, &auth, &ids[0], &[ck])
            .await
            .text
            .starts_with("id=")
    );
    let a = send(&emu, &auth, &ids[0], &[ck]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(error_of(&a), Some("DeviceQuotaExceeded"));
    let (s, _) = emu
        .control(
            Method::PUT,
            "/emulator/c2dm/quotas",
            Some(json!({"per_sender": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        send(&emu, &auth, &ids[0], &[ck])
            .await
            .text
            .starts_with("id=")
    );
    let a = send(&emu, &auth, &ids[1], &[ck]).await;
    assert_eq!(error_of(&a), Some("QuotaExceeded"));
}

#[tokio::test]
async fn unavailable_with_retry_after_through_faults() {
    let emu = start().await;
    let auth = auth(&emu).await;
    let ids = c2dm_devices(&emu, 1).await;
    let (s, v) = emu
        .fault(json!({"path": "/c2dm/send", "status": 503, "retry_after": "7", "count": 1}))
        .await;
    assert!(s.is_success(), "{v}");
    let a = send(&emu, &auth, &ids[0], &[("collapse_key", "c")]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers["retry-after"], "7");
    let a = send(&emu, &auth, &ids[0], &[("collapse_key", "c")]).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn update_client_auth_rotation() {
    let emu = start().await;
    let old = auth(&emu).await;
    let ids = c2dm_devices(&emu, 1).await;
    let ck = ("collapse_key", "c");
    let a = send(&emu, &old, &ids[0], &[ck]).await;
    assert!(a.headers.get("update-client-auth").is_none());
    let (s, _) = emu
        .control(Method::POST, "/emulator/c2dm/rotate-auth", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let a = send(&emu, &old, &ids[0], &[ck]).await;
    assert_eq!(a.status, StatusCode::OK);
    let new = a.headers["update-client-auth"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old);
    // Only the next answer carries it; the old token still works meanwhile.
    let a = send(&emu, &old, &ids[0], &[ck]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers.get("update-client-auth").is_none());
    // Once the new token is used, the old one is retired.
    let a = send(&emu, &new, &ids[0], &[ck]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = send(&emu, &old, &ids[0], &[ck]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
