//! The FCM v1 sender and its OAuth token source against the in-process emulator, over real
//! sockets.
//!
//! Expected values come from docs/protocols.md, "FCM HTTP v1" (its errors, quotas and OAuth
//! sections), not
//! from the code under test.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Emu, fast_policy};
use pushgate_client::oauth::{OAuthConfig, ServiceAccountTokenSource, key_from_json};
use pushgate_client::v1::{FcmV1Sender, Message, Notification, V1Config};
use pushgate_client::{HttpConfig, RetryPolicy};
use pushgate_proto::{FailureScope, Outcome, OutcomeKind};
use serde_json::{Value, json};

const PROJECT: &str = "demo-project";

fn to_token(token: &str) -> Message {
    Message {
        token: Some(token.to_string()),
        data: Some([("score".to_string(), "850".to_string())].into()),
        notification: Some(Notification {
            title: Some("FCM Message".into()),
            body: Some("hello".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One attempt only: the outcome of the first answer, unretried.
fn no_retry() -> RetryPolicy {
    RetryPolicy::default().with_max_attempts(1)
}

/// The message id part of a v1 name `projects/{p}/messages/{id}`.
fn id_of(outcome: &Outcome) -> String {
    let name = outcome.message_id().expect("delivered");
    let prefix = format!("projects/{PROJECT}/messages/");
    assert!(name.starts_with(&prefix), "{name}");
    name[prefix.len()..].to_string()
}

#[tokio::test]
async fn a_message_reaches_the_device_with_one_token_request_for_200_sends() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, 200).await;
    let sender = Arc::new(emu.v1(&key, fast_policy()));

    let tasks: Vec<_> = tokens
        .iter()
        .map(|t| {
            let sender = sender.clone();
            let message = to_token(t);
            tokio::spawn(async move { sender.send(&message).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    assert!(
        outcomes.iter().all(|o| o.kind() == OutcomeKind::Delivered),
        "{outcomes:?}"
    );
    assert_eq!(emu.stat("token_requests").await, 1);
    assert_eq!(emu.stat("delivered").await, 200);
    let inbox = emu.inbox(&tokens[17]).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["via"], "fcm-v1");
    assert_eq!(inbox[0]["data"]["score"], "850");
    assert!(
        outcomes[17].message_id().unwrap().ends_with(
            inbox[0]["message_id"]
                .as_str()
                .expect("inbox has message_id")
        ),
        "{:?} vs {}",
        outcomes[17],
        inbox[0]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed() {
    let emu = Emu::start().await;
    emu.set_token_lifetime(1).await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = emu.v1(&key, fast_policy());

    assert!(sender.send(&to_token(&token)).await.is_success());
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(emu.stat("token_requests").await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(emu.stat("token_requests").await, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_401_forces_one_refresh_and_a_resend() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = emu.v1(&key, no_retry());
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(emu.stat("token_requests").await, 1);

    // The service refuses the (still cached) token once: 401 UNAUTHENTICATED.
    emu.fault(json!({"path": "/v1/", "status": 401, "count": 1}))
        .await;
    let outcome = sender.send(&to_token(&token)).await;
    assert_eq!(outcome.kind(), OutcomeKind::Delivered, "{outcome:?}");
    assert_eq!(emu.stat("token_requests").await, 2);
    assert_eq!(emu.inbox(&token).await.len(), 2);

    // Refused twice in a row: one refresh, then AuthFailed.
    emu.fault(json!({"path": "/v1/", "status": 401, "count": 2}))
        .await;
    let outcome = sender.send(&to_token(&token)).await;
    assert_eq!(outcome.kind(), OutcomeKind::AuthFailed, "{outcome:?}");
    assert_eq!(emu.stat("token_requests").await, 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unknown_bearer_token_ends_as_auth_failed() {
    let emu = Emu::start().await;
    emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let source = pushgate_client::oauth::StaticTokenSource::new(
        "ya29.not-issued-by-the-emulator",
        Duration::from_secs(3600),
        Some(PROJECT.into()),
    )
    .unwrap();
    let sender = FcmV1Sender::new(
        source,
        V1Config::new()
            .with_base_url(emu.base.clone())
            .with_retry_policy(no_retry()),
    )
    .unwrap();
    let outcome = sender.send(&to_token(&token)).await;
    assert_eq!(outcome.kind(), OutcomeKind::AuthFailed, "{outcome:?}");
    assert!(emu.inbox(&token).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn every_fcm_error_code_maps_to_its_outcome() {
    // docs/protocols.md, "FCM v1: errors" and "FCM v1: outcomes": no retry → MessageRejected (or,
    // for
    // the token-format INVALID_ARGUMENT the emulator's fault carries, TokenDead); delete
    // token → TokenDead; retry → RetryLater / Throttled (429); credentials → AuthFailed.
    let table = [
        ("UNSPECIFIED_ERROR", OutcomeKind::MessageRejected),
        // The injected body says "The registration token is not a valid FCM registration
        // token": a dead token, not a bad message.
        ("INVALID_ARGUMENT", OutcomeKind::TokenDead),
        ("UNREGISTERED", OutcomeKind::TokenDead),
        ("SENDER_ID_MISMATCH", OutcomeKind::TokenDead),
        ("QUOTA_EXCEEDED", OutcomeKind::Throttled),
        ("UNAVAILABLE", OutcomeKind::RetryLater),
        ("INTERNAL", OutcomeKind::RetryLater),
        ("THIRD_PARTY_AUTH_ERROR", OutcomeKind::AuthFailed),
        ("APNS_AUTH_ERROR", OutcomeKind::AuthFailed),
    ];
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, table.len()).await;
    let sender = emu.v1(&key, no_retry());
    for ((code, expected), token) in table.iter().zip(&tokens) {
        emu.fault(json!({"token": token, "error": code, "count": 1}))
            .await;
        let outcome = sender.send(&to_token(token)).await;
        assert_eq!(outcome.kind(), *expected, "{code}: {outcome:?}");
        assert_eq!(outcome.reason(), Some(*code), "{code}");
    }
    // The third-party auth errors are about APNs / Web Push keys: no token refresh.
    assert_eq!(emu.stat("token_requests").await, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn real_token_states_map_to_outcomes() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, 2).await;
    let sender = emu.v1(&key, no_retry());
    emu.uninstall(&tokens[0]).await;
    assert_eq!(
        sender.send(&to_token(&tokens[0])).await,
        Outcome::TokenDead {
            reason: "UNREGISTERED".into()
        }
    );
    // Not an FCM token at all: 400 INVALID_ARGUMENT "not a valid FCM registration token".
    let outcome = sender.send(&to_token("garbage")).await;
    assert_eq!(outcome.kind(), OutcomeKind::TokenDead, "{outcome:?}");
    // A device of another sender: 403 SENDER_ID_MISMATCH.
    let other = emu.device().await;
    assert_eq!(
        sender.send(&to_token(&other)).await,
        Outcome::TokenDead {
            reason: "SENDER_ID_MISMATCH".into()
        }
    );
    assert!(sender.send(&to_token(&tokens[1])).await.is_success());
    emu.shutdown().await;
}

#[tokio::test]
async fn retry_after_of_503_and_429_is_honoured() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    // Our own backoff is tiny: only the server's 1 s can explain a 1 s wait.
    let sender = emu.v1(&key, fast_policy());
    for status in [503, 429] {
        emu.fault(json!({"path": "/v1/", "status": status, "retry_after": "1", "count": 1}))
            .await;
        let start = Instant::now();
        let outcome = sender.send(&to_token(&token)).await;
        let elapsed = start.elapsed();
        assert_eq!(
            outcome.kind(),
            OutcomeKind::Delivered,
            "{status}: {outcome:?}"
        );
        assert!(elapsed >= Duration::from_secs(1), "{status}: {elapsed:?}");
    }
    assert_eq!(emu.inbox(&token).await.len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn retries_run_out_as_retry_later() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = emu.v1(&key, fast_policy().with_max_attempts(2));
    emu.fault(json!({"path": "/v1/", "status": 503, "count": 5}))
        .await;
    let outcome = sender.send(&to_token(&token)).await;
    assert_eq!(
        outcome,
        Outcome::RetryLater {
            reason: "UNAVAILABLE".into(),
            after: None,
            scope: FailureScope::Token,
        }
    );
    assert!(emu.inbox(&token).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn project_quota_gives_throttled() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, 3).await;
    emu.set_quota(PROJECT, 2).await;
    let sender = emu.v1(&key, no_retry());
    let outcomes = sender
        .send_each(&tokens.iter().map(|t| to_token(t)).collect::<Vec<_>>())
        .await;
    let throttled = outcomes
        .iter()
        .filter(|o| o.kind() == OutcomeKind::Throttled)
        .count();
    assert_eq!(throttled, 1, "{outcomes:?}");
    let t = outcomes
        .iter()
        .find(|o| o.kind() == OutcomeKind::Throttled)
        .unwrap();
    assert_eq!(t.reason(), Some("QUOTA_EXCEEDED"));
    emu.shutdown().await;
}

#[tokio::test]
async fn validate_only_checks_without_delivering() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, 2).await;
    let sender = emu.v1(&key, no_retry());
    let outcome = sender.send_validate_only(&to_token(&tokens[0])).await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            message_id: format!("projects/{PROJECT}/messages/fake_message_id")
        }
    );
    assert!(emu.inbox(&tokens[0]).await.is_empty());
    // A stale token still fails validation (docs/protocols.md, "FCM v1: response").
    emu.uninstall(&tokens[1]).await;
    assert_eq!(
        sender
            .send_validate_only(&to_token(&tokens[1]))
            .await
            .kind(),
        OutcomeKind::TokenDead
    );
    let each = sender.send_each_with(&[to_token(&tokens[0])], true).await;
    assert_eq!(id_of(&each[0]), "fake_message_id");
    emu.shutdown().await;
}

#[tokio::test]
async fn topic_and_condition_targets() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let sender = emu.v1(&key, no_retry());
    let topic = Message {
        topic: Some("news".into()),
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    let condition = Message {
        condition: Some("'foo' in topics && 'bar' in topics".into()),
        ..Default::default()
    };
    for m in [&topic, &condition] {
        let outcome = sender.send(m).await;
        assert_eq!(outcome.kind(), OutcomeKind::Delivered, "{m:?}: {outcome:?}");
        assert!(!id_of(&outcome).is_empty());
    }
    // `/topics/` prefix is refused client-side (the Admin SDKs strip it; v1 wants bare names).
    let prefixed = Message {
        topic: Some("/topics/news".into()),
        ..Default::default()
    };
    let outcome = sender.send(&prefixed).await;
    assert_eq!(outcome.kind(), OutcomeKind::MessageRejected);
    assert!(
        outcome.reason().unwrap().starts_with("message.topic:"),
        "{outcome:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_refused_by_the_service_and_mapped_to_message_rejected() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = emu.v1(&key, no_retry());
    let access = key_from_json(&key)
        .map(|k| ServiceAccountTokenSource::new(k, OAuthConfig::new()).unwrap())
        .unwrap();
    let access = pushgate_client::oauth::TokenSource::token(&access)
        .await
        .unwrap();
    let body = json!({"message": {"toen": token}});

    // A raw request: 400 INVALID_ARGUMENT naming the field (docs/protocols.md,
    // "FCM v1: request body").
    let response = emu
        .http()
        .post(emu.url(&format!("/v1/projects/{PROJECT}/messages:send")))
        .header("authorization", access.authorization().clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("toen"),
        "{answer}"
    );

    // The same body through the sender's raw hook: MessageRejected, nothing delivered.
    let outcome = sender.send_raw(body.to_string()).await;
    assert_eq!(outcome.kind(), OutcomeKind::MessageRejected, "{outcome:?}");
    // A number in data: also a bad message.
    let outcome = sender
        .send_raw(json!({"message": {"token": token, "data": {"score": 12}}}).to_string())
        .await;
    assert_eq!(outcome.kind(), OutcomeKind::MessageRejected, "{outcome:?}");
    assert!(emu.inbox(&token).await.is_empty());

    // What the sender builds itself has snake_case fields only and is accepted.
    assert!(sender.send(&to_token(&token)).await.is_success());
    emu.shutdown().await;
}

#[tokio::test]
async fn http2_is_negotiated_over_https_with_the_emulators_ca() {
    let emu = Emu::start_with_https().await;
    let https = emu.running.https_base_url().expect("https on");
    let ca = emu
        .running
        .tls_cert_pem()
        .expect("cert")
        .as_bytes()
        .to_vec();
    let http = HttpConfig::new()
        .with_extra_ca_pem(ca)
        .with_extra_ca_only(true);
    // The key file fetched over HTTPS names the HTTPS /token as token_uri (and JWT aud).
    let control = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only(
            reqwest::Certificate::from_pem_bundle(emu.running.tls_cert_pem().unwrap().as_bytes())
                .unwrap(),
        )
        .build()
        .unwrap();
    let response = control
        .post(format!("{https}/emulator/projects"))
        .json(&json!({"project_id": PROJECT}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let key: Value = response.json().await.unwrap();
    assert!(
        key["token_uri"].as_str().unwrap().starts_with("https://"),
        "{key}"
    );
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = FcmV1Sender::from_service_account(
        key_from_json(&key.to_string()).unwrap(),
        V1Config::new()
            .with_http(http.with_endpoint(https))
            .with_retry_policy(no_retry()),
    )
    .unwrap();
    assert_eq!(sender.last_http_version(), None);
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(sender.last_http_version(), Some(reqwest::Version::HTTP_2));
    emu.shutdown().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_on_plain_http() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = emu.v1_with(
        &key,
        V1Config::new()
            .with_http(HttpConfig::new().with_http2_prior_knowledge(true))
            .with_retry_policy(no_retry()),
    );
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(sender.last_http_version(), Some(reqwest::Version::HTTP_2));
    emu.shutdown().await;
}

#[tokio::test]
async fn multicast_of_1200_tokens_is_delivered_in_order() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, 1200).await;
    // Failures at known positions prove outcome i belongs to token i.
    let dead = [3usize, 499, 500, 1001, 1199];
    for i in dead {
        emu.uninstall(&tokens[i]).await;
    }
    let sender = emu.v1_with(
        &key,
        V1Config::new()
            .with_http(HttpConfig::new().with_http2_prior_knowledge(true))
            .with_retry_policy(fast_policy()),
    );
    let template = Message {
        data: Some([("wave".to_string(), "one".to_string())].into()),
        ..Default::default()
    };

    let outcomes = sender.send_multicast(&template, &tokens).await;

    assert_eq!(outcomes.len(), 1200);
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if dead.contains(&i) {
            OutcomeKind::TokenDead
        } else {
            OutcomeKind::Delivered
        };
        assert_eq!(outcome.kind(), expected, "position {i}: {outcome:?}");
    }
    for i in [0usize, 1, 498, 501, 777, 1000, 1198] {
        let inbox = emu.inbox(&tokens[i]).await;
        assert_eq!(inbox.len(), 1, "position {i}");
        assert_eq!(inbox[0]["data"]["wave"], "one");
        assert!(
            outcomes[i]
                .message_id()
                .unwrap()
                .ends_with(inbox[0]["message_id"].as_str().unwrap()),
            "position {i}: {:?} vs {}",
            outcomes[i],
            inbox[0]
        );
    }
    assert_eq!(emu.stat("delivered").await, 1195);
    assert_eq!(emu.stat("token_requests").await, 1);
    emu.shutdown().await;
}
