//! Virtual devices created with `confirm_via` run the device side of the C2DM-era
//! registration flow (django-c2dm style) against a gateway: here a tiny fake gateway on
//! 127.0.0.1:0, over real sockets.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use common::{Emu, KEY, start};
use pushgate_emulator::{DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD};
use pushgate_testkit::{eventually, eventually_ok};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How the fake gateway pushes the confirmation message after a registration.
#[derive(Clone, Copy, PartialEq)]
enum Push {
    /// Issues a token but pushes nothing (the test pushes, or not).
    Nothing,
    /// Legacy HTTP JSON `POST /gcm/send`.
    Legacy,
    /// `POST /c2dm/send` after ClientLogin.
    C2dm,
}

/// A fake gateway with django-c2dm's two device-facing endpoints.
struct Gateway {
    emulator: String,
    http: reqwest::Client,
    registration_answer: StatusCode,
    push: Push,
    /// `(device_id, registration_id)` of every registration call, in order.
    registrations: Mutex<Vec<(String, String)>>,
    /// `(device_id, registration_token)` of every confirmation call, in order.
    confirmations: Mutex<Vec<(String, String)>>,
    /// device_id -> the token last issued to it.
    issued: Mutex<HashMap<String, String>>,
    /// The C2DM `Auth` token, for [`Push::C2dm`].
    c2dm_auth: Mutex<Option<String>>,
}

type Params = Query<HashMap<String, String>>;

async fn registration(State(gw): State<Arc<Gateway>>, Query(q): Params) -> StatusCode {
    let (Some(device_id), Some(registration_id)) = (q.get("device_id"), q.get("registration_id"))
    else {
        return StatusCode::BAD_REQUEST;
    };
    gw.registrations
        .lock()
        .unwrap()
        .push((device_id.clone(), registration_id.clone()));
    if gw.registration_answer != StatusCode::OK {
        return gw.registration_answer;
    }
    let token = format!("{:032x}", rand::random::<u128>());
    gw.issued
        .lock()
        .unwrap()
        .insert(device_id.clone(), token.clone());
    // Like django-c2dm: the confirmation message goes out before the registration answer.
    let pushed = match gw.push {
        Push::Nothing => true,
        Push::Legacy => gw
            .http
            .post(format!("{}/gcm/send", gw.emulator))
            .header("Authorization", format!("key={KEY}"))
            .json(&json!({
                "to": registration_id,
                "collapse_key": "registration_token",
                "delay_while_idle": true,
                "data": {"registration_token": token},
            }))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK),
        Push::C2dm => {
            let auth = gw.c2dm_auth.lock().unwrap().clone().unwrap_or_default();
            let answer = gw
                .http
                .post(format!("{}/c2dm/send", gw.emulator))
                .header("Authorization", format!("GoogleLogin auth={auth}"))
                .form(&[
                    ("registration_id", registration_id.as_str()),
                    ("collapse_key", "registration_token"),
                    ("delay_while_idle", "1"),
                    ("data.registration_token", token.as_str()),
                ])
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == StatusCode::OK => {
                    r.text().await.unwrap_or_default().starts_with("id=")
                }
                _ => false,
            }
        }
    };
    if pushed {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

async fn confirmation(State(gw): State<Arc<Gateway>>, Query(q): Params) -> StatusCode {
    let (Some(device_id), Some(token)) = (q.get("device_id"), q.get("registration_token")) else {
        return StatusCode::BAD_REQUEST;
    };
    gw.confirmations
        .lock()
        .unwrap()
        .push((device_id.clone(), token.clone()));
    if gw.issued.lock().unwrap().get(device_id) == Some(token) {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// A running fake gateway; `base` is what goes into `confirm_via`.
struct Fake {
    gw: Arc<Gateway>,
    base: String,
}

impl Fake {
    fn registrations(&self) -> Vec<(String, String)> {
        self.gw.registrations.lock().unwrap().clone()
    }

    fn confirmations(&self) -> Vec<(String, String)> {
        self.gw.confirmations.lock().unwrap().clone()
    }

    fn issued(&self, device_id: &str) -> String {
        self.gw.issued.lock().unwrap()[device_id].clone()
    }
}

/// Starts a fake gateway for `emu`, mounted at `prefix` ("" for the root).
async fn gateway(emu: &Emu, prefix: &str, registration_answer: StatusCode, push: Push) -> Fake {
    let gw = Arc::new(Gateway {
        emulator: emu.base.clone(),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        registration_answer,
        push,
        registrations: Mutex::default(),
        confirmations: Mutex::default(),
        issued: Mutex::default(),
        c2dm_auth: Mutex::default(),
    });
    let routes = Router::new()
        .route("/c2dm/registration", get(registration))
        .route("/c2dm/confirmation", get(confirmation))
        .with_state(gw.clone());
    let app = if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(prefix, routes)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake {
        gw,
        base: format!("http://{addr}{prefix}"),
    }
}

/// Logs the default C2DM account in and hands its `Auth` token to the fake gateway.
async fn c2dm_login(emu: &Emu, fake: &Fake) {
    let text = emu
        .http
        .post(emu.url("/accounts/ClientLogin"))
        .form(&[
            ("accountType", "HOSTED_OR_GOOGLE"),
            ("Email", DEFAULT_C2DM_EMAIL),
            ("Passwd", DEFAULT_C2DM_PASSWORD),
            ("service", "ac2dm"),
            ("source", "com.example-app-1"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let auth = text
        .lines()
        .find_map(|l| l.strip_prefix("Auth="))
        .unwrap_or_else(|| panic!("no Auth= in {text:?}"));
    *fake.gw.c2dm_auth.lock().unwrap() = Some(auth.to_string());
}

/// `POST /emulator/devices`, expecting 201; the created devices.
async fn create(emu: &Emu, spec: Value) -> Vec<Value> {
    let (status, v) = emu
        .control(Method::POST, "/emulator/devices", Some(spec))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["devices"].as_array().unwrap().clone()
}

async fn device(emu: &Emu, token: &str) -> Value {
    let (status, v) = emu
        .control(Method::GET, &format!("/emulator/devices/{token}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// How long a `confirm_via` flow may take to reach a state.
const FLOW_LIMIT: Duration = Duration::from_secs(10);

/// Polls the device until its registration state is `want`; its view.
async fn wait_state(emu: &Emu, token: &str, want: &str) -> Value {
    let what = format!("registration state {want}");
    eventually_ok(&what, FLOW_LIMIT, || async {
        let v = device(emu, token).await;
        if v["registration"]["state"] == want {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await
}

async fn confirm_stats(emu: &Emu) -> Value {
    let (status, v) = emu.control(Method::GET, "/emulator/stats", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["confirm_via"].clone()
}

fn is_generated_device_id(id: &str) -> bool {
    id.len() == 20
        && id.strip_prefix("emu-").is_some_and(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[tokio::test]
async fn gcm_devices_register_and_confirm_with_a_root_gateway() {
    let emu = start().await;
    let fake = gateway(&emu, "", StatusCode::OK, Push::Legacy).await;
    // A trailing slash on the base is dropped, not doubled.
    let created = create(
        &emu,
        json!({"count": 3, "confirm_via": format!("{}/", fake.base)}),
    )
    .await;
    assert_eq!(created.len(), 3);

    // The answer came after the registrations: all three already arrived.
    let registrations = fake.registrations();
    assert_eq!(registrations.len(), 3, "{registrations:?}");
    let mut ids = std::collections::HashSet::new();
    for d in &created {
        let token = d["token"].as_str().unwrap();
        assert_eq!(token.len(), 152, "{d}");
        let device_id = d["device_id"].as_str().unwrap();
        assert!(is_generated_device_id(device_id), "{d}");
        assert!(
            ids.insert(device_id.to_string()),
            "duplicate id {device_id}"
        );
        assert_eq!(d["registration_status"], 200, "{d}");
        assert_eq!(d["registration_error"], Value::Null, "{d}");
        assert!(
            registrations.contains(&(device_id.to_string(), token.to_string())),
            "{registrations:?} lacks {device_id}"
        );
    }

    for d in &created {
        let token = d["token"].as_str().unwrap();
        let device_id = d["device_id"].as_str().unwrap();
        let v = wait_state(&emu, token, "confirmed").await;
        let r = &v["registration"];
        assert_eq!(r["device_id"], device_id);
        assert_eq!(r["confirm_via"], fake.base.as_str());
        assert_eq!(r["registration_status"], 200);
        assert_eq!(r["confirmation_status"], 200);
        assert_eq!(r["error"], Value::Null);
        // Confirmed with exactly the token the gateway pushed to this device.
        let issued = fake.issued(device_id);
        assert!(
            fake.confirmations()
                .contains(&(device_id.to_string(), issued.clone())),
            "{:?}",
            fake.confirmations()
        );
        let inbox = emu.inbox(token).await;
        assert_eq!(inbox.len(), 1, "{inbox:?}");
        assert_eq!(inbox[0]["data"]["registration_token"], issued.as_str());
        assert_eq!(inbox[0]["collapse_key"], "registration_token");
    }
    assert_eq!(fake.confirmations().len(), 3);
    let stats = confirm_stats(&emu).await;
    assert_eq!(
        (&stats["registered"], &stats["confirmed"], &stats["failed"]),
        (&json!(0), &json!(3), &json!(0)),
        "{stats}"
    );

    // Reset forgets it all.
    let (status, _) = emu.control(Method::POST, "/emulator/reset", None).await;
    assert_eq!(status, StatusCode::OK);
    let stats = confirm_stats(&emu).await;
    assert_eq!(
        (&stats["registered"], &stats["confirmed"], &stats["failed"]),
        (&json!(0), &json!(0), &json!(0)),
        "{stats}"
    );
    let token = created[0]["token"].as_str().unwrap();
    let (status, _) = emu
        .control(Method::GET, &format!("/emulator/devices/{token}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn c2dm_devices_with_given_ids_and_an_app_scoped_gateway() {
    let emu = start().await;
    let fake = gateway(&emu, "/v1/apps/myapp", StatusCode::OK, Push::C2dm).await;
    c2dm_login(&emu, &fake).await;
    // Ids that need URL encoding arrive intact.
    let wanted = ["phone-1", "tablet 2/ü&x=y"];
    let created = create(
        &emu,
        json!({
            "count": 2, "protocol": "c2dm",
            "confirm_via": fake.base, "device_ids": wanted,
        }),
    )
    .await;
    let mut registrations = fake.registrations();
    registrations.sort();
    let mut expected: Vec<(String, String)> = created
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_string(),
                d["token"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(registrations, expected);
    for (d, want) in created.iter().zip(wanted) {
        assert_eq!(d["device_id"], want, "{d}");
        assert_eq!(d["registration_status"], 200, "{d}");
        assert!(d["token"].as_str().unwrap().starts_with("APA91b"), "{d}");
    }
    for (d, want) in created.iter().zip(wanted) {
        let token = d["token"].as_str().unwrap();
        let v = wait_state(&emu, token, "confirmed").await;
        assert_eq!(v["registration"]["confirm_via"], fake.base.as_str());
        let issued = fake.issued(want);
        assert!(
            fake.confirmations()
                .contains(&(want.to_string(), issued.clone())),
            "{:?}",
            fake.confirmations()
        );
        assert_eq!(emu.inbox(token).await[0]["via"], "c2dm");
    }
    assert_eq!(confirm_stats(&emu).await["confirmed"], 2);
}

#[tokio::test]
async fn a_refusing_gateway_leaves_the_device_failed() {
    let emu = start().await;
    let fake = gateway(&emu, "", StatusCode::BAD_REQUEST, Push::Legacy).await;
    let created = create(&emu, json!({"confirm_via": fake.base})).await;
    assert_eq!(created.len(), 1);
    let d = &created[0];
    assert_eq!(d["registration_status"], 400, "{d}");
    assert_eq!(d["registration_error"], Value::Null, "{d}");
    let token = d["token"].as_str().unwrap();
    let v = device(&emu, token).await;
    let r = &v["registration"];
    assert_eq!(r["state"], "failed", "{v}");
    assert_eq!(r["registration_status"], 400, "{v}");
    assert_eq!(r["confirmation_status"], Value::Null, "{v}");
    assert!(
        r["error"].as_str().is_some_and(|e| e.contains("400")),
        "{v}"
    );
    assert_eq!(fake.registrations().len(), 1);
    let stats = confirm_stats(&emu).await;
    assert_eq!(
        (&stats["failed"], &stats["confirmed"]),
        (&json!(1), &json!(0))
    );
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_transport_failure() {
    // A port that was just free: nothing listens on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let emu = start().await;
    let created = create(
        &emu,
        json!({"confirm_via": format!("http://127.0.0.1:{port}"), "device_ids": ["d1"]}),
    )
    .await;
    let d = &created[0];
    assert_eq!(d["device_id"], "d1");
    assert_eq!(d["registration_status"], Value::Null, "{d}");
    assert!(
        d["registration_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{d}"
    );
    let v = device(&emu, d["token"].as_str().unwrap()).await;
    assert_eq!(v["registration"]["state"], "failed", "{v}");
    assert!(v["registration"]["error"].is_string(), "{v}");
    assert_eq!(confirm_stats(&emu).await["failed"], 1);
}

#[tokio::test]
async fn confirmation_follows_any_message_carrying_the_token() {
    let emu = start().await;
    let fake = gateway(&emu, "", StatusCode::OK, Push::Nothing).await;
    let d = create(&emu, json!({"confirm_via": fake.base}))
        .await
        .remove(0);
    let token = d["token"].as_str().unwrap().to_string();
    let device_id = d["device_id"].as_str().unwrap().to_string();
    // Registration answered 200 and nothing was pushed: registered, not confirmed.
    let v = device(&emu, &token).await;
    assert_eq!(v["registration"]["state"], "registered", "{v}");
    assert_eq!(v["registration"]["confirmation_status"], Value::Null);
    assert_eq!(confirm_stats(&emu).await["registered"], 1);

    // A message without the key does not confirm anything.
    assert_eq!(
        emu.send(json!({"to": &token, "data": {"k": "v"}}))
            .await
            .status,
        StatusCode::OK
    );
    // A wrong token: the gateway answers 400 and the device fails.
    let a = emu
        .send(json!({"to": &token, "data": {"registration_token": "wrong"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = wait_state(&emu, &token, "failed").await;
    assert_eq!(v["registration"]["confirmation_status"], 400, "{v}");
    assert_eq!(
        fake.confirmations(),
        [(device_id.clone(), "wrong".to_string())]
    );

    // The right token over another protocol (legacy plain text) confirms it.
    let issued = fake.issued(&device_id);
    let a = emu
        .plain(&format!(
            "registration_id={token}&collapse_key=registration_token&data.registration_token={issued}"
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = wait_state(&emu, &token, "confirmed").await;
    assert_eq!(v["registration"]["confirmation_status"], 200, "{v}");
    assert_eq!(v["registration"]["error"], Value::Null, "{v}");
    assert_eq!(fake.confirmations().len(), 2);
    assert_eq!(fake.confirmations()[1], (device_id, issued));
    let stats = confirm_stats(&emu).await;
    assert_eq!(
        (&stats["registered"], &stats["confirmed"], &stats["failed"]),
        (&json!(0), &json!(1), &json!(0)),
        "{stats}"
    );
}

#[tokio::test]
async fn rotation_registers_the_new_token() {
    let emu = start().await;
    let fake = gateway(&emu, "", StatusCode::OK, Push::Legacy).await;
    let d = create(
        &emu,
        json!({"confirm_via": fake.base, "device_ids": ["rot-1"]}),
    )
    .await
    .remove(0);
    let old = d["token"].as_str().unwrap().to_string();
    wait_state(&emu, &old, "confirmed").await;
    let first_issued = fake.issued("rot-1");

    let (status, v) = emu
        .control(
            Method::POST,
            &format!("/emulator/devices/{old}/rotate"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let new = v["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(v["registration_status"], 200, "{v}");
    assert_eq!(v["device_id"], "rot-1", "{v}");
    assert_eq!(
        fake.registrations(),
        [
            ("rot-1".to_string(), old.clone()),
            ("rot-1".to_string(), new.clone())
        ]
    );
    // The gateway issued a new token and pushed it to the new registration id.
    let second_issued = fake.issued("rot-1");
    assert_ne!(second_issued, first_issued);
    let second_confirmation = ("rot-1".to_string(), second_issued.clone());
    eventually("the second confirmation", FLOW_LIMIT, || {
        let seen = fake.confirmations().contains(&second_confirmation);
        async move { seen.then_some(()) }
    })
    .await;
    let v = wait_state(&emu, &new, "confirmed").await;
    assert_eq!(v["registration"]["confirmation_status"], 200, "{v}");
    let inbox = emu.inbox(&new).await;
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert_eq!(inbox[1]["token"], new.as_str());
    // Still one device in the counts.
    let stats = confirm_stats(&emu).await;
    assert_eq!(
        (&stats["registered"], &stats["confirmed"], &stats["failed"]),
        (&json!(0), &json!(1), &json!(0)),
        "{stats}"
    );
}

#[tokio::test]
async fn bad_confirm_via_and_device_ids_name_the_field() {
    let emu = start().await;
    let fake = gateway(&emu, "", StatusCode::OK, Push::Legacy).await;
    let cases = [
        (json!({"confirm_via": "ftp://127.0.0.1/"}), "confirm_via"),
        (json!({"confirm_via": "not a url"}), "confirm_via"),
        (json!({"confirm_via": "/c2dm"}), "confirm_via"),
        (json!({"confirm_via": 42}), "confirm_via"),
        (
            json!({"confirm_via": format!("{}?x=1", fake.base)}),
            "confirm_via",
        ),
        (
            json!({"confirm_via": fake.base, "count": 2, "device_ids": ["a"]}),
            "device_ids",
        ),
        (
            json!({"confirm_via": fake.base, "count": 1, "device_ids": ["a", "b"]}),
            "device_ids",
        ),
        (json!({"device_ids": ["a"]}), "device_ids"),
        (
            json!({"confirm_via": fake.base, "device_ids": [""]}),
            "device_ids",
        ),
        (
            json!({"confirm_via": fake.base, "device_ids": ["x".repeat(257)]}),
            "device_ids",
        ),
        (
            json!({"confirm_via": fake.base, "device_ids": ["a", "a"]}),
            "device_ids",
        ),
        (
            json!({"confirm_via": fake.base, "device_ids": [1]}),
            "device_ids",
        ),
        (
            json!({"confirm_via": fake.base, "device_ids": "a"}),
            "device_ids",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = emu
            .control(Method::POST, "/emulator/devices", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(field), "{body}: {error}");
    }
    // Nothing was created, so nothing registered.
    assert!(
        fake.registrations().is_empty(),
        "{:?}",
        fake.registrations()
    );
    // A 256-byte id is fine.
    let d = create(
        &emu,
        json!({"confirm_via": fake.base, "device_ids": ["x".repeat(256)]}),
    )
    .await;
    assert_eq!(d[0]["registration_status"], 200);
    // Plain devices are unchanged: no registration fields, no calls.
    let d = create(&emu, json!({"count": 1})).await;
    assert!(d[0].get("device_id").is_none(), "{}", d[0]);
    let v = device(&emu, d[0]["token"].as_str().unwrap()).await;
    assert_eq!(v["registration"], Value::Null, "{v}");
    assert_eq!(fake.registrations().len(), 1);
}
