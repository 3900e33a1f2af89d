//! The sender against a tiny scripted local server (the emulator has its own tests in
//! `tests/v1.rs`): retry loop, 401 refresh, mapping, and what never gets sent.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes as AxumBytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::future::BoxFuture;
use pushgate_proto::OutcomeKind;
use pushgate_proto::v1::FcmErrorCode;
use serde_json::{Value, json};

use super::*;
use crate::oauth::OAuthError;
use crate::{HttpConfig, Jitter};

#[derive(Default)]
struct Fake {
    requests: AtomicUsize,
    script: parking_lot::Mutex<VecDeque<(u16, Option<&'static str>, Value)>>,
    auth_seen: parking_lot::Mutex<Vec<String>>,
    bodies: parking_lot::Mutex<Vec<Value>>,
}

async fn fake_send(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: AxumBytes) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    fake.auth_seen.lock().push(auth);
    fake.bodies
        .lock()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    match fake.script.lock().pop_front() {
        Some((status, retry_after, body)) => {
            let mut response =
                (AxumStatus::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(r) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", r.parse().unwrap());
            }
            response
        }
        None => axum::Json(json!({"name": "projects/p1/messages/0:1"})).into_response(),
    }
}

async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/projects/{p}/messages:send", post(fake_send))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, base)
}

/// A token source that counts fetches and invalidations; tokens are `t1`, `t2`, ...
#[derive(Debug, Default)]
struct Counting {
    fetches: AtomicUsize,
    invalidations: AtomicUsize,
    current: parking_lot::Mutex<Option<AccessToken>>,
    fail: bool,
}

impl TokenSource for Counting {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, OAuthError>> {
        Box::pin(async move {
            if self.fail {
                return Err(OAuthError::InvalidGrant {
                    description: "account disabled".into(),
                });
            }
            let mut current = self.current.lock();
            if let Some(t) = current.as_ref() {
                return Ok(t.clone());
            }
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            let t = AccessToken::new(format!("t{n}"), Duration::from_secs(3600))?;
            *current = Some(t.clone());
            Ok(t)
        })
    }

    fn invalidate(&self, token: &AccessToken) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|c| c.same_as(token)) {
            *current = None;
        }
    }

    fn project_id(&self) -> Option<&str> {
        Some("p1")
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(40))
        .with_max_attempts(3)
        .with_jitter(Jitter::None)
}

fn sender(base: &str, source: Arc<Counting>) -> FcmV1Sender {
    FcmV1Sender::with_shared_source(
        source,
        V1Config::new()
            .with_base_url(base)
            .with_retry_policy(quick())
            .with_connections(2),
    )
    .unwrap()
}

fn to(token: &str) -> Message {
    Message {
        token: Some(token.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn delivered_with_bearer_and_snake_case_body() {
    let (fake, base) = start_fake().await;
    let source = Arc::new(Counting::default());
    let s = sender(&base, source.clone());
    assert_eq!(
        s.send(&to("device-a")).await,
        Outcome::Delivered {
            message_id: "projects/p1/messages/0:1".into()
        }
    );
    assert_eq!(
        s.send_validate_only(&to("device-a")).await.kind(),
        OutcomeKind::Delivered
    );
    assert_eq!(fake.auth_seen.lock()[0], "Bearer t1");
    let bodies = fake.bodies.lock();
    assert_eq!(bodies[0], json!({"message": {"token": "device-a"}}));
    assert_eq!(
        bodies[1],
        json!({"validate_only": true, "message": {"token": "device-a"}})
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(s.last_http_version(), Some(Version::HTTP_11));
}

#[tokio::test]
async fn invalid_message_is_rejected_without_a_request() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let none = Message::default();
    let outcome = s.send(&none).await;
    assert_eq!(outcome.kind(), OutcomeKind::MessageRejected);
    assert!(
        outcome.reason().unwrap().starts_with("message: "),
        "{outcome:?}"
    );
    let mut reserved = to("x");
    reserved.data = Some([("from".to_string(), "me".to_string())].into());
    let outcome = s.send(&reserved).await;
    assert!(
        outcome.reason().unwrap().starts_with("message.data.from: "),
        "{outcome:?}"
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_401_refreshes_once_then_succeeds() {
    let (fake, base) = start_fake().await;
    let source = Arc::new(Counting::default());
    let s = sender(&base, source.clone());
    fake.script.lock().push_back((
        401,
        None,
        json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
    ));
    assert_eq!(s.send(&to("a")).await.kind(), OutcomeKind::Delivered);
    assert_eq!(*fake.auth_seen.lock(), ["Bearer t1", "Bearer t2"]);
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_401_gives_auth_failed() {
    let (fake, base) = start_fake().await;
    let source = Arc::new(Counting::default());
    let s = sender(&base, source.clone());
    let unauth = json!({"error": {"code": 401, "message": "no", "status": "UNAUTHENTICATED"}});
    fake.script
        .lock()
        .extend([(401, None, unauth.clone()), (401, None, unauth)]);
    assert_eq!(s.send(&to("a")).await.kind(), OutcomeKind::AuthFailed);
    assert_eq!(fake.requests.load(Ordering::SeqCst), 2);
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn third_party_auth_error_is_not_a_token_problem() {
    let (fake, base) = start_fake().await;
    let source = Arc::new(Counting::default());
    let s = sender(&base, source.clone());
    let body =
        serde_json::to_value(ErrorBody::fcm(FcmErrorCode::ThirdPartyAuthError, "APNs")).unwrap();
    fake.script.lock().push_back((401, None, body));
    assert_eq!(s.send(&to("a")).await.kind(), OutcomeKind::AuthFailed);
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn token_source_failure_is_auth_failed() {
    let (fake, base) = start_fake().await;
    let source = Arc::new(Counting {
        fail: true,
        ..Default::default()
    });
    let s = sender(&base, source);
    let outcome = s.send(&to("a")).await;
    assert_eq!(outcome.kind(), OutcomeKind::AuthFailed);
    assert!(
        outcome.reason().unwrap().contains("invalid_grant"),
        "{outcome:?}"
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unavailable_is_retried_with_retry_after_as_floor() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let body = serde_json::to_value(ErrorBody::fcm(FcmErrorCode::Unavailable, "busy")).unwrap();
    fake.script.lock().push_back((503, Some("1"), body));
    let start = Instant::now();
    assert_eq!(s.send(&to("a")).await.kind(), OutcomeKind::Delivered);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retries_stop_after_the_policy_and_keep_the_last_outcome() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let body = serde_json::to_value(ErrorBody::fcm(FcmErrorCode::Internal, "oops")).unwrap();
    fake.script
        .lock()
        .extend((0..5).map(|_| (500, None, body.clone())));
    let outcome = s.send(&to("a")).await;
    assert_eq!(
        outcome,
        Outcome::RetryLater {
            reason: "INTERNAL".into(),
            after: None,
            scope: FailureScope::Token,
        }
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_long_retry_after_is_returned_not_slept() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let body = serde_json::to_value(ErrorBody::fcm(FcmErrorCode::QuotaExceeded, "quota")).unwrap();
    fake.script.lock().push_back((429, Some("600"), body));
    let outcome = s.send(&to("a")).await;
    assert_eq!(
        outcome,
        Outcome::Throttled {
            reason: "QUOTA_EXCEEDED".into(),
            after: Some(Duration::from_secs(600)),
            // The project's quota: every token of the channel is refused until it refills.
            scope: FailureScope::Channel,
        }
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let body = serde_json::to_value(ErrorBody::fcm(FcmErrorCode::Unregistered, "gone")).unwrap();
    fake.script.lock().push_back((404, None, body));
    assert_eq!(s.send(&to("a")).await.kind(), OutcomeKind::TokenDead);
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn transport_errors_are_retried_then_retry_later() {
    // Nothing listens on port 9 of loopback.
    let s = sender("http://127.0.0.1:9", Arc::new(Counting::default()));
    let outcome = s.send(&to("a")).await;
    assert_eq!(outcome.kind(), OutcomeKind::RetryLater);
    assert!(
        outcome.reason().unwrap().starts_with("transport: "),
        "{outcome:?}"
    );
    // No answer at all: the endpoint is down for every token, not just this one.
    assert_eq!(outcome.scope(), Some(FailureScope::Channel));
}

#[tokio::test]
async fn a_404_that_names_no_token_is_refused_credentials_not_a_dead_token() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let body = json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}});
    fake.script.lock().push_back((404, None, body));
    let outcome = s.send(&to("a")).await;
    // A wrong project or URL: no device may be invalidated for it.
    assert_eq!(outcome.kind(), OutcomeKind::AuthFailed);
    assert_eq!(outcome.scope(), Some(FailureScope::Channel));
}

#[tokio::test]
async fn send_each_and_multicast_keep_order() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let messages: Vec<Message> = (0..30).map(|i| to(&format!("tok-{i}"))).collect();
    let mut with_bad = messages.clone();
    with_bad[7] = Message::default();
    let outcomes = s.send_each(&with_bad).await;
    assert_eq!(outcomes.len(), 30);
    for (i, o) in outcomes.iter().enumerate() {
        let expected = if i == 7 {
            OutcomeKind::MessageRejected
        } else {
            OutcomeKind::Delivered
        };
        assert_eq!(o.kind(), expected, "{i}");
    }
    let template = Message {
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    let tokens: Vec<String> = (0..10).map(|i| format!("m-{i}")).collect();
    let outcomes = s.send_multicast(&template, &tokens).await;
    assert!(outcomes.iter().all(Outcome::is_success));
    assert_eq!(fake.requests.load(Ordering::SeqCst), 29 + 10);
    let bodies = fake.bodies.lock();
    let mut multicast_tokens: Vec<String> = bodies[29..]
        .iter()
        .map(|b| b["message"]["token"].as_str().unwrap().to_string())
        .collect();
    multicast_tokens.sort();
    let mut expected = tokens.clone();
    expected.sort();
    assert_eq!(multicast_tokens, expected);
    assert!(
        bodies[29..]
            .iter()
            .all(|b| b["message"]["data"]["k"] == "v")
    );
}

#[tokio::test]
async fn send_raw_sends_the_body_as_is() {
    let (fake, base) = start_fake().await;
    let s = sender(&base, Arc::new(Counting::default()));
    let bad = json!({"error": {"code": 400, "message": "Invalid JSON payload received. Unknown name \"toen\" at 'message': Cannot find field.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message", "description": "Invalid JSON payload received. Unknown name \"toen\" at 'message': Cannot find field."}]}]}});
    fake.script.lock().push_back((400, None, bad));
    let outcome = s.send_raw(r#"{"message":{"toen":"x"}}"#).await;
    assert_eq!(outcome.kind(), OutcomeKind::MessageRejected);
    assert_eq!(fake.bodies.lock()[0], json!({"message": {"toen": "x"}}));
}

#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let s = FcmV1Sender::new(
        crate::oauth::StaticTokenSource::new("t", Duration::from_secs(60), Some("p".into()))
            .unwrap(),
        V1Config::new(),
    )
    .unwrap();
    let messages = vec![to("a")];
    let tokens = vec!["a".to_string()];
    is_send(&s.send(&messages[0]));
    is_send(&s.send_each(&messages));
    is_send(&s.send_multicast(&messages[0], &tokens));
    is_send(&s.send_raw("{}"));
}

#[test]
fn config_checks_and_urls() {
    let static_source = || {
        crate::oauth::StaticTokenSource::new("ya29.SECRET", Duration::from_secs(60), None).unwrap()
    };
    assert!(matches!(
        FcmV1Sender::new(static_source(), V1Config::new()),
        Err(V1BuildError::NoProject)
    ));
    assert!(matches!(
        FcmV1Sender::new(static_source(), V1Config::new().with_project_id("a/b")),
        Err(V1BuildError::InvalidProject(_))
    ));
    let s = FcmV1Sender::new(static_source(), V1Config::new().with_project_id("my-proj")).unwrap();
    assert_eq!(
        s.send_url().as_str(),
        "https://fcm.googleapis.com/v1/projects/my-proj/messages:send"
    );
    let s = FcmV1Sender::new(
        static_source(),
        V1Config::new()
            .with_project_id("p")
            .with_http(HttpConfig::new().with_endpoint("http://127.0.0.1:8080/prefix/")),
    )
    .unwrap();
    assert_eq!(
        s.send_url().as_str(),
        "http://127.0.0.1:8080/prefix/v1/projects/p/messages:send"
    );
    let shown = format!("{s:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("messages:send"), "{shown}");
}

#[test]
fn target_labels_never_show_a_whole_token() {
    let token = "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1";
    assert_eq!(target_label(&to(token)), "bk3RNwTe…");
    let topic = Message {
        topic: Some("news".into()),
        ..Default::default()
    };
    assert_eq!(target_label(&topic), "topic:news");
}

#[test]
fn answers_map_to_outcomes() {
    assert_eq!(
        map_answer(StatusCode::OK, None, br#"{"name":"projects/p/messages/1"}"#),
        Outcome::Delivered {
            message_id: "projects/p/messages/1".into()
        }
    );
    assert_eq!(
        map_answer(StatusCode::OK, None, b"<html>").kind(),
        OutcomeKind::MessageRejected
    );
    let after = Some(Duration::from_secs(2));
    assert_eq!(
        map_answer(StatusCode::SERVICE_UNAVAILABLE, after, b"busy").retry_after(),
        after
    );
}

/// The borrowed request body is byte for byte what the protocol crate's owned `SendRequest`
/// serializes to, with and without `validate_only`.
#[test]
fn borrowed_request_serializes_like_send_request() {
    let mut message = to("tok-1");
    message.data = Some([("k".to_string(), "v \"quoted\"".to_string())].into());
    message.android = Some(pushgate_proto::v1::AndroidConfig {
        collapse_key: Some("c".into()),
        ..Default::default()
    });
    for validate_only in [false, true] {
        let owned = pushgate_proto::v1::SendRequest {
            validate_only,
            message: message.clone(),
        };
        let borrowed = BorrowedSendRequest {
            validate_only,
            message: &message,
        };
        assert_eq!(
            serde_json::to_string(&borrowed).unwrap(),
            serde_json::to_string(&owned).unwrap()
        );
    }
}
