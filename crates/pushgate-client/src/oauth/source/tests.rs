//! The token source against a tiny local token endpoint that counts its calls.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pushgate_proto::v1::oauth::AssertionClaims;
use serde_json::{Value, json};

use super::*;
use crate::oauth::assertion::tests::{key_with, rsa_pair};

struct Endpoint {
    calls: AtomicUsize,
    lifetime_secs: AtomicU64,
    /// Scripted answers, used before the default success.
    script: parking_lot::Mutex<VecDeque<(u16, Value)>>,
    public_pem: String,
    audience: parking_lot::Mutex<String>,
    delay: Duration,
}

#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: String,
    assertion: String,
}

async fn token(State(ep): State<Arc<Endpoint>>, Form(form): Form<TokenForm>) -> Response {
    let n = ep.calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(ep.delay).await;
    if let Some((status, body)) = ep.script.lock().pop_front() {
        let status = StatusCode::from_u16(status).unwrap();
        return (status, [("retry-after", "0")], Json(body)).into_response();
    }
    assert_eq!(form.grant_type, JWT_BEARER_GRANT);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[ep.audience.lock().clone()]);
    let decoded = jsonwebtoken::decode::<AssertionClaims>(
        &form.assertion,
        &DecodingKey::from_rsa_pem(ep.public_pem.as_bytes()).unwrap(),
        &validation,
    );
    match decoded {
        Ok(d) if d.claims.exp - d.claims.iat <= 3600 => Json(json!({
            "access_token": format!("ya29.test-{n}"),
            "expires_in": ep.lifetime_secs.load(Ordering::SeqCst),
            "token_type": "Bearer"
        }))
        .into_response(),
        other => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": format!("{:?}", other.err())})),
        )
            .into_response(),
    }
}

/// Starts the endpoint; returns it and a source pointed at it.
async fn start(lifetime_secs: u64, delay: Duration) -> (Arc<Endpoint>, ServiceAccountTokenSource) {
    let (private, public) = rsa_pair();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/token", listener.local_addr().unwrap());
    let ep = Arc::new(Endpoint {
        calls: AtomicUsize::new(0),
        lifetime_secs: AtomicU64::new(lifetime_secs),
        script: parking_lot::Mutex::new(VecDeque::new()),
        public_pem: public,
        audience: parking_lot::Mutex::new(uri.clone()),
        delay,
    });
    let app = Router::new()
        .route("/token", post(token))
        .with_state(ep.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = OAuthConfig::new().with_retry_policy(
        RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(10))
            .with_max_backoff(Duration::from_millis(50))
            .with_max_attempts(3),
    );
    let source = ServiceAccountTokenSource::new(key_with(&private, &uri), config).unwrap();
    (ep, source)
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let (ep, source) = start(3600, Duration::from_millis(100)).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.token().await.map(|t| t.secret().to_string()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "ya29.test-1");
    }
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
    // Cached afterwards too.
    assert_eq!(source.token().await.unwrap().secret(), "ya29.test-1");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once() {
    // 1 s lifetime: refresh margin 100 ms.
    let (ep, source) = start(1, Duration::ZERO).await;
    let first = source.token().await.unwrap();
    assert_eq!(first.secret(), "ya29.test-1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(source.token().await.unwrap().secret(), "ya29.test-1");
    tokio::time::sleep(Duration::from_millis(450)).await;
    // In the last tenth (or past it): a refresh happens, exactly once for many callers.
    let results = futures_util::future::join_all((0..20).map(|_| source.token())).await;
    let refreshed = source.token().await.unwrap();
    assert_eq!(refreshed.secret(), "ya29.test-2");
    for r in results {
        let secret = r.unwrap().secret().to_string();
        assert!(
            secret == "ya29.test-1" || secret == "ya29.test-2",
            "{secret}"
        );
    }
    assert_eq!(ep.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalidate_forces_exactly_one_refresh() {
    let (ep, source) = start(3600, Duration::from_millis(20)).await;
    let old = source.token().await.unwrap();
    // Many sends got a 401 with the same token: one refresh.
    for _ in 0..10 {
        source.invalidate(&old);
    }
    let news = futures_util::future::join_all((0..10).map(|_| source.token())).await;
    for n in &news {
        assert_eq!(n.as_ref().unwrap().secret(), "ya29.test-2");
    }
    // A late 401 for the old token does not throw away the new one.
    source.invalidate(&old);
    assert_eq!(source.token().await.unwrap().secret(), "ya29.test-2");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let (ep, source) = start(3600, Duration::ZERO).await;
    ep.script.lock().extend([
        (503, json!({"error": "temporarily_unavailable"})),
        (500, json!({"error": "internal_failure"})),
    ]);
    assert_eq!(source.token().await.unwrap().secret(), "ya29.test-3");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_give_up_after_the_policy() {
    let (ep, source) = start(3600, Duration::ZERO).await;
    ep.script
        .lock()
        .extend((0..5).map(|_| (429, json!({"error": "rate_limit_exceeded"}))));
    let err = source.token().await.unwrap_err();
    assert!(matches!(err, OAuthError::Http { status: 429, .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(ep.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn invalid_grant_is_typed_with_the_description_and_not_retried() {
    let (ep, source) = start(3600, Duration::ZERO).await;
    let description = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
    ep.script.lock().push_back((
        400,
        json!({"error": "invalid_grant", "error_description": description}),
    ));
    let err = source.token().await.unwrap_err();
    match &err {
        OAuthError::InvalidGrant { description: d } => assert_eq!(d, description),
        other => panic!("{other}"),
    }
    assert!(!err.is_transient());
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn waiters_share_a_failed_refresh() {
    let (ep, source) = start(3600, Duration::from_millis(50)).await;
    ep.script
        .lock()
        .push_back((401, json!({"error": "unauthorized_client"})));
    let results = futures_util::future::join_all((0..10).map(|_| source.token())).await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
    // The next call tries again.
    assert_eq!(source.token().await.unwrap().secret(), "ya29.test-2");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transport_error() {
    let (private, _) = rsa_pair();
    // Port 9 (discard) on loopback: nothing listens.
    let key = key_with(&private, "http://127.0.0.1:9/token");
    let config = OAuthConfig::new().with_retry_policy(RetryPolicy::default().with_max_attempts(1));
    let source = ServiceAccountTokenSource::new(key, config).unwrap();
    let err = source.token().await.unwrap_err();
    assert!(matches!(err, OAuthError::Transport(_)), "{err}");
}

#[tokio::test]
async fn debug_shows_no_secret() {
    let (_ep, source) = start(3600, Duration::ZERO).await;
    let token = source.token().await.unwrap();
    let shown = format!("{source:?} {token:?}");
    assert!(!shown.contains("ya29"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("demo-project"), "{shown}");
}

#[test]
fn token_response_parsing() {
    let now = Instant::now();
    let t = parse_token(
        br#"{"access_token":"a","expires_in":"3599","token_type":"Bearer"}"#,
        now,
    )
    .unwrap();
    assert_eq!(t.expires_at() - now, Duration::from_secs(3599));
    assert!(parse_token(br#"{"access_token":"","expires_in":1}"#, now).is_err());
    assert!(parse_token(br#"{"access_token":"a","expires_in":null}"#, now).is_err());
    assert!(
        parse_token(
            br#"{"access_token":"a","expires_in":1,"token_type":"mac"}"#,
            now
        )
        .is_err()
    );
    let err = parse_token(br#"{"access_token":"ya29.SECRET""#, now).unwrap_err();
    assert!(!err.to_string().contains("SECRET"));
}
