//! The C2DM sender against the in-process emulator, over real sockets.
//!
//! Expected values come from docs/protocols.md, "C2DM" (ClientLogin, answers,
//! `Update-Client-Auth`),
//! not from the code under test.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Emu;
use futures_util::stream::{self, StreamExt};
use pushgate_client::HttpConfig;
use pushgate_client::c2dm::{C2dmAuth, C2dmError, C2dmMessage, C2dmSender};
use pushgate_emulator::{DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD};
use pushgate_proto::{Outcome, OutcomeKind};
use pushgate_testkit::eventually;
use reqwest::Method;
use serde_json::json;

fn sender(emu: &Emu, email: &str, password: &str) -> C2dmSender {
    let auth = C2dmAuth::client_login(email, password, "pushgate-tests-1")
        .with_login_url(emu.url("/accounts/ClientLogin"));
    C2dmSender::new(auth, HttpConfig::new().with_endpoint(emu.url("/c2dm/send"))).unwrap()
}

async fn c2dm_devices(emu: &Emu, n: usize) -> Vec<String> {
    emu.create_devices(json!({"protocol": "c2dm", "count": n}))
        .await
}

#[tokio::test]
async fn a_message_reaches_the_device_after_clientlogin() {
    let emu = Emu::start().await;
    let device = c2dm_devices(&emu, 1).await.remove(0);
    let sender = sender(&emu, DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD);

    let outcome = sender
        .send(&C2dmMessage::new(device.clone(), "score").data("score", "4x8"))
        .await
        .unwrap();

    assert_eq!(outcome.kind(), OutcomeKind::Delivered, "{outcome:?}");
    let inbox = emu.inbox(&device).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["data"], json!({"score": "4x8"}));
    assert_eq!(inbox[0]["collapse_key"], "score");
    assert!(sender.current_token().is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_bad_authentication() {
    let emu = Emu::start().await;
    let sender = sender(&emu, DEFAULT_C2DM_EMAIL, "not-the-password");
    match sender.login().await {
        Err(C2dmError::Login { code, .. }) => assert_eq!(code, "BadAuthentication"),
        other => panic!("{other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn an_added_account_logs_in_and_an_unknown_token_is_auth_failed() {
    let emu = Emu::start().await;
    emu.call(
        Method::POST,
        "/emulator/c2dm/accounts",
        Some(json!({"email": "role@example.org", "password": "pw-2"})),
    )
    .await;
    let device = c2dm_devices(&emu, 1).await.remove(0);
    let sender = sender(&emu, "role@example.org", "pw-2");
    assert!(
        sender
            .send(&C2dmMessage::new(device.clone(), "k"))
            .await
            .unwrap()
            .is_success()
    );

    let stale = C2dmSender::new(
        C2dmAuth::Token("DQAAAnot-a-token".into()),
        HttpConfig::new().with_endpoint(emu.url("/c2dm/send")),
    )
    .unwrap();
    let err = stale
        .send(&C2dmMessage::new(device, "k"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, C2dmError::AuthFailed { status: 401 }),
        "{err:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn answers_map_to_the_shared_outcomes() {
    let emu = Emu::start().await;
    let devices = c2dm_devices(&emu, 2).await;
    let sender = sender(&emu, DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD);

    // An unknown but malformed id: InvalidRegistration, a dead token (docs/protocols.md,
    // "C2DM: responses").
    let outcome = sender
        .send(&C2dmMessage::new("garbage", "k"))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::TokenDead {
            reason: "InvalidRegistration".into()
        }
    );

    // Two per device per minute: the third to one device is DeviceQuotaExceeded, retried
    // later for that device (Throttled).
    emu.call(
        Method::PUT,
        "/emulator/c2dm/quotas",
        Some(json!({"per_device": 2})),
    )
    .await;
    for _ in 0..2 {
        assert!(
            sender
                .send(&C2dmMessage::new(devices[0].clone(), "k"))
                .await
                .unwrap()
                .is_success()
        );
    }
    let outcome = sender
        .send(&C2dmMessage::new(devices[0].clone(), "k"))
        .await
        .unwrap();
    assert_eq!(outcome.kind(), OutcomeKind::Throttled);
    assert_eq!(outcome.reason(), Some("DeviceQuotaExceeded"));

    // The sender's global quota: QuotaExceeded, retry later.
    emu.call(
        Method::PUT,
        "/emulator/c2dm/quotas",
        Some(json!({"per_sender": 1})),
    )
    .await;
    assert!(
        sender
            .send(&C2dmMessage::new(devices[1].clone(), "k"))
            .await
            .unwrap()
            .is_success()
    );
    let outcome = sender
        .send(&C2dmMessage::new(devices[1].clone(), "k"))
        .await
        .unwrap();
    assert_eq!(outcome.kind(), OutcomeKind::RetryLater);
    assert_eq!(outcome.reason(), Some("QuotaExceeded"));
    emu.shutdown().await;
}

/// 10,000 messages over 64 concurrent sends; the server rotates the auth token a third of
/// the way in. Every message must arrive and the sender must end on the rotated token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_client_auth_mid_run_loses_no_message() {
    const DEVICES: usize = 100;
    const PER_DEVICE: usize = 100;
    let emu = Arc::new(Emu::start().await);
    let devices = c2dm_devices(&emu, DEVICES).await;
    let sender = sender(&emu, DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD);
    let first = sender.login().await.unwrap();
    let mut updates = sender.auth_updates();
    updates.borrow_and_update();

    let done = Arc::new(AtomicUsize::new(0));
    let rotator = {
        let (emu, done) = (emu.clone(), done.clone());
        tokio::spawn(async move {
            // The probe owns its counter, so the task stays Send.
            eventually("3000 sends answered", Duration::from_secs(120), move || {
                let done = done.clone();
                async move { (done.load(Ordering::SeqCst) >= 3_000).then_some(()) }
            })
            .await;
            emu.call(Method::POST, "/emulator/c2dm/rotate-auth", Some(json!({})))
                .await;
        })
    };
    let jobs: Vec<(String, usize)> = (0..DEVICES * PER_DEVICE)
        .map(|n| (devices[n % DEVICES].clone(), n))
        .collect();
    let outcomes: Vec<(usize, Result<Outcome, C2dmError>)> = stream::iter(jobs)
        .map(|(device, n)| {
            let (sender, done) = (sender.clone(), done.clone());
            async move {
                let message = C2dmMessage::new(device, format!("ck-{n}")).data("n", n.to_string());
                let outcome = sender.send(&message).await;
                done.fetch_add(1, Ordering::SeqCst);
                (n, outcome)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    rotator.await.unwrap();

    let failed: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Ok(Outcome::Delivered { .. })))
        .take(5)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let mut seen = HashSet::new();
    for device in &devices {
        for message in emu.inbox(device).await {
            let n: usize = message["data"]["n"].as_str().unwrap().parse().unwrap();
            assert_eq!(&devices[n % DEVICES], device);
            assert!(seen.insert(n), "message {n} delivered twice");
        }
    }
    assert_eq!(seen.len(), DEVICES * PER_DEVICE);

    let last = sender.current_token().unwrap();
    assert_ne!(last, first, "the sender still uses the first token");
    assert!(updates.has_changed().unwrap());
    assert_eq!(updates.borrow().as_ref(), Some(&last));
    // The rotated token is the one the server now accepts: one more send proves it.
    let device = devices[0].clone();
    assert!(
        sender
            .send(&C2dmMessage::new(device, "after"))
            .await
            .unwrap()
            .is_success()
    );
    assert_eq!(sender.current_token().unwrap(), last);
    match Arc::try_unwrap(emu) {
        Ok(emu) => emu.shutdown().await,
        Err(_) => panic!("emulator still shared"),
    }
}
