//! The C2DM sender against a small in-test server (127.0.0.1): login body and answers, the
//! answer table of docs/protocols.md, "C2DM: responses", and `Update-Client-Auth` under
//! concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use pushgate_proto::c2dm::{AccountType, ClientLoginRequest};
use pushgate_proto::{FailureScope, Outcome, OutcomeKind};

use super::*;
use crate::{HttpConfig, RetryPolicy};

const EMAIL: &str = "c2dm@example.com";
const PASSWORD: &str = "pa$$w0rd&x=y";

/// An extra response header: name and value.
type Header = Option<(&'static str, String)>;

/// What the fake server answers and remembers.
#[derive(Default)]
struct Fake {
    /// The token the server accepts; ClientLogin hands it out.
    valid: Mutex<String>,
    logins: AtomicU64,
    login_body: Mutex<Option<String>>,
    /// Sends answered so far.
    sends: AtomicU64,
    /// The send number whose answer rotates the token to `rotate_to` (0: never).
    rotate_at: AtomicU64,
    rotate_to: Mutex<String>,
    /// A fixed answer for every send: status, body, extra header.
    canned: Mutex<Option<(u16, String, Header)>>,
    /// Answer for ClientLogin when set: status and body.
    login_answer: Mutex<Option<(u16, String)>>,
}

async fn login(State(fake): State<Arc<Fake>>, body: String) -> Response {
    fake.logins.fetch_add(1, Ordering::SeqCst);
    *fake.login_body.lock() = Some(body);
    if let Some((status, body)) = fake.login_answer.lock().clone() {
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    let auth = fake.valid.lock().clone();
    format!("SID=s\nLSID=l\nAuth={auth}\n").into_response()
}

async fn send(State(fake): State<Arc<Fake>>, headers: HeaderMap, _body: String) -> Response {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("GoogleLogin auth="))
        .unwrap_or("")
        .to_string();
    if let Some((status, body, header)) = fake.canned.lock().clone() {
        let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
        if let Some((name, value)) = header {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }
    let mut valid = fake.valid.lock();
    if given != *valid {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let n = fake.sends.fetch_add(1, Ordering::SeqCst) + 1;
    let mut response = format!("id=0:{n}%0\n").into_response();
    if n == fake.rotate_at.load(Ordering::SeqCst) {
        let next = fake.rotate_to.lock().clone();
        *valid = next.clone();
        response
            .headers_mut()
            .insert("Update-Client-Auth", next.parse().unwrap());
    }
    response
}

async fn start(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/accounts/ClientLogin", post(login))
        .route("/c2dm/send", post(send))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn sender(base: &str, auth: C2dmAuth) -> C2dmSender {
    C2dmSender::new(
        auth,
        HttpConfig::new().with_endpoint(format!("{base}/c2dm/send")),
    )
    .unwrap()
}

fn login_auth(base: &str) -> C2dmAuth {
    C2dmAuth::client_login(EMAIL, PASSWORD, "pushgate-test-1")
        .with_login_url(format!("{base}/accounts/ClientLogin"))
}

fn message(n: usize) -> C2dmMessage {
    C2dmMessage::new(format!("reg-{n}"), "ck").data("n", n.to_string())
}

fn fake_with_token(token: &str) -> Arc<Fake> {
    let fake = Fake::default();
    *fake.valid.lock() = token.to_string();
    Arc::new(fake)
}

#[tokio::test]
async fn login_posts_the_documented_form_and_keeps_auth() {
    let fake = fake_with_token("tok-1");
    let base = start(fake.clone()).await;
    let sender = sender(&base, login_auth(&base));
    assert_eq!(sender.current_token(), None);

    let outcome = sender.send(&message(1)).await.unwrap();

    assert_eq!(outcome.kind(), OutcomeKind::Delivered);
    assert_eq!(outcome.message_id(), Some("0:1%0"));
    assert_eq!(sender.current_token().unwrap().secret(), "tok-1");
    let body = fake.login_body.lock().clone().unwrap();
    let parsed = ClientLoginRequest::from_form(&body).unwrap();
    assert_eq!(parsed.email, EMAIL);
    assert_eq!(parsed.passwd, PASSWORD);
    assert_eq!(parsed.service, "ac2dm");
    assert_eq!(parsed.account_type, AccountType::HostedOrGoogle);
    assert_eq!(parsed.source, "pushgate-test-1");
    assert!(!format!("{sender:?}").contains(PASSWORD));
    assert!(!format!("{sender:?}").contains("tok-1"));
}

#[tokio::test]
async fn login_refusals_carry_the_code() {
    let fake = fake_with_token("tok-1");
    *fake.login_answer.lock() = Some((
        403,
        "Error=CaptchaRequired\nUrl=https://x\nCaptchaToken=ct\nCaptchaUrl=Captcha?ctoken=ct\n"
            .into(),
    ));
    let base = start(fake.clone()).await;
    let sender = sender(&base, login_auth(&base));
    match sender.login().await.unwrap_err() {
        C2dmError::Login { code, captcha_url } => {
            assert_eq!(code, "CaptchaRequired");
            assert_eq!(captcha_url.as_deref(), Some("Captcha?ctoken=ct"));
        }
        other => panic!("{other:?}"),
    }
    *fake.login_answer.lock() = Some((403, "Error=BadAuthentication\n".into()));
    let err = sender.send(&message(1)).await.unwrap_err();
    assert!(matches!(&err, C2dmError::Login { code, .. } if code == "BadAuthentication"));
    assert!(!err.to_string().contains(PASSWORD));
    // A refused account refuses every message of the channel.
    assert_eq!(err.outcome().kind(), OutcomeKind::AuthFailed);
    assert_eq!(err.outcome().scope(), Some(FailureScope::Channel));
}

#[tokio::test]
async fn an_unreachable_server_concerns_the_whole_channel() {
    // Nothing listens on port 9 of loopback.
    let sender = sender("http://127.0.0.1:9", C2dmAuth::Token("tok-1".into()));
    let err = sender.send(&message(1)).await.unwrap_err();
    assert!(matches!(err, C2dmError::Transport(_)), "{err:?}");
    assert_eq!(err.outcome().kind(), OutcomeKind::RetryLater);
    assert_eq!(err.outcome().scope(), Some(FailureScope::Channel));
}

#[tokio::test]
async fn invalid_messages_are_refused_without_a_request() {
    let fake = fake_with_token("tok-1");
    let base = start(fake.clone()).await;
    let sender = sender(&base, C2dmAuth::Token("tok-1".into()));
    let big = C2dmMessage::new("reg", "ck").data("k", "x".repeat(1024));
    assert!(matches!(
        sender.send(&big).await,
        Err(C2dmError::Invalid(e)) if e.field == "data"
    ));
    assert_eq!(fake.sends.load(Ordering::SeqCst), 0);
    assert_eq!(fake.logins.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn answers_follow_the_shared_table() {
    let fake = fake_with_token("tok-1");
    let base = start(fake.clone()).await;
    let sender = sender(&base, C2dmAuth::Token("tok-1".into()));
    // The scope is what the answer concerns: the sender's quota is the whole channel's, a
    // device's quota, a dead id and a 503 to its one-id request concern that id only.
    let cases: [(u16, &str, Header, OutcomeKind, &str, FailureScope); 5] = [
        (
            200,
            "Error=QuotaExceeded\n",
            None,
            OutcomeKind::RetryLater,
            "QuotaExceeded",
            FailureScope::Channel,
        ),
        (
            200,
            "Error=DeviceQuotaExceeded\n",
            None,
            OutcomeKind::Throttled,
            "DeviceQuotaExceeded",
            FailureScope::Token,
        ),
        (
            200,
            "Error=NotRegistered\n",
            None,
            OutcomeKind::TokenDead,
            "NotRegistered",
            FailureScope::Token,
        ),
        (
            200,
            "Error=MissingCollapseKey\n",
            None,
            OutcomeKind::MessageRejected,
            "MissingCollapseKey",
            FailureScope::Message,
        ),
        (
            503,
            "",
            Some(("Retry-After", "7".into())),
            OutcomeKind::RetryLater,
            "HTTP 503",
            FailureScope::Token,
        ),
    ];
    for (status, body, header, kind, reason, scope) in cases {
        *fake.canned.lock() = Some((status, body.into(), header));
        let outcome = sender.send(&message(1)).await.unwrap();
        assert_eq!(outcome.kind(), kind, "{body}");
        assert_eq!(outcome.reason(), Some(reason));
        assert_eq!(outcome.scope(), Some(scope), "{body}");
    }
    assert_eq!(
        sender.send(&message(1)).await.unwrap().retry_after(),
        Some(Duration::from_secs(7))
    );
    // The HTTP-date form: a date ~1 h ahead asks for about an hour.
    let date = httpdate_in(3600);
    *fake.canned.lock() = Some((503, String::new(), Some(("Retry-After", date))));
    let after = sender
        .send(&message(1))
        .await
        .unwrap()
        .retry_after()
        .unwrap();
    assert!(
        after > Duration::from_secs(3500) && after <= Duration::from_secs(3600),
        "{after:?}"
    );
}

fn httpdate_in(secs: u64) -> String {
    let at = std::time::SystemTime::now() + Duration::from_secs(secs);
    pushgate_proto::RetryAfter::Date(at).to_header_value()
}

#[tokio::test]
async fn a_401_with_a_fixed_token_is_auth_failed_and_update_header_is_taken_on_errors() {
    let fake = fake_with_token("tok-server");
    let base = start(fake.clone()).await;
    let sender = sender(&base, C2dmAuth::Token("tok-stale".into()));
    let err = sender.send(&message(1)).await.unwrap_err();
    assert!(
        matches!(err, C2dmError::AuthFailed { status: 401 }),
        "{err:?}"
    );
    assert_eq!(err.outcome().kind(), OutcomeKind::AuthFailed);

    // Update-Client-Auth on a non-200 answer still switches the token.
    *fake.canned.lock() = Some((
        503,
        String::new(),
        Some(("Update-Client-Auth", "tok-server".into())),
    ));
    let mut updates = sender.auth_updates();
    let outcome = sender.send(&message(1)).await.unwrap();
    assert_eq!(outcome.kind(), OutcomeKind::RetryLater);
    assert!(updates.has_changed().unwrap());
    assert_eq!(
        updates
            .borrow_and_update()
            .as_ref()
            .map(|t| t.secret().to_string()),
        Some("tok-server".into())
    );
    *fake.canned.lock() = None;
    assert!(sender.send(&message(1)).await.unwrap().is_success());
}

#[tokio::test]
async fn a_401_logs_in_again_once() {
    let fake = fake_with_token("tok-1");
    let base = start(fake.clone()).await;
    let sender = sender(&base, login_auth(&base));
    sender.login().await.unwrap();
    // The server forgets the token: the next send gets 401, logs in, resends.
    *fake.valid.lock() = "tok-2".into();
    let outcome = sender.send(&message(1)).await.unwrap();
    assert!(outcome.is_success());
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    assert_eq!(sender.current_token().unwrap().secret(), "tok-2");
}

#[tokio::test]
async fn rotation_in_the_middle_of_concurrent_sends_loses_nothing() {
    let fake = fake_with_token("tok-old");
    fake.rotate_at.store(300, Ordering::SeqCst);
    *fake.rotate_to.lock() = "tok-new".into();
    let base = start(fake.clone()).await;
    let sender = sender(&base, login_auth(&base));
    let updates = sender.auth_updates();

    let mut tasks = Vec::new();
    for worker in 0..40 {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..25 {
                outcomes.push(sender.send(&message(worker * 25 + i)).await);
            }
            outcomes
        }));
    }
    let mut delivered = 0;
    for task in tasks {
        for outcome in task.await.unwrap() {
            assert!(
                matches!(outcome, Ok(Outcome::Delivered { .. })),
                "{outcome:?}"
            );
            delivered += 1;
        }
    }
    assert_eq!(delivered, 1000);
    assert_eq!(fake.sends.load(Ordering::SeqCst), 1000);
    assert_eq!(sender.current_token().unwrap().secret(), "tok-new");
    assert_eq!(
        updates.borrow().as_ref().map(|t| t.secret().to_string()),
        Some("tok-new".into())
    );
    // One login at the start; the rotation needed none.
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn send_with_retries_waits_for_retry_after() {
    let fake = fake_with_token("tok-1");
    *fake.canned.lock() = Some((503, String::new(), Some(("Retry-After", "1".into()))));
    let base = start(fake.clone()).await;
    let sender = sender(&base, C2dmAuth::Token("tok-1".into()));
    let policy = RetryPolicy::default()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_millis(1));
    let fake2 = fake.clone();
    let heal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        *fake2.canned.lock() = None;
    });
    let started = std::time::Instant::now();
    let outcome = sender
        .send_with_retries(&message(1), &policy)
        .await
        .unwrap();
    heal.await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    // The second attempt came no sooner than the server asked.
    assert!(started.elapsed() >= Duration::from_secs(1));
}
