//! The console over real HTTP against a gateway with a webhook: its events page shows the
//! webhook's failure, and "Retry now" makes the sender try at once instead of after its
//! backoff (an hour here), so the waiting events arrive.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::{APP, start_with};
use pushgate_gateway::config::{Secret, WebhookSpec};
use pushgate_testkit::eventually_ok;
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "console-admin-key-0123456789";

#[derive(Default)]
struct Receiver {
    /// Requests answered 500 before the receiver accepts.
    failures: AtomicU32,
    attempts: AtomicU32,
    events: AtomicU32,
}

async fn receive(State(r): State<Arc<Receiver>>, body: Bytes) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    let left = r.failures.load(Ordering::SeqCst);
    if left > 0 {
        r.failures.store(left - 1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let n = v["events"].as_array().map_or(0, |e| e.len()) as u32;
    r.events.fetch_add(n, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_field(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// `name=value` of the `Set-Cookie` named `name`.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_sends_the_waiting_events_before_the_backoff_ends() {
    let receiver = Arc::new(Receiver::default());
    receiver.failures.store(1, Ordering::SeqCst);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let env = start_with(|spec| {
        spec.admin_keys = vec![Secret::new(ADMIN, "test")];
        spec.delivery.retry_initial = Duration::from_secs(3600);
        spec.delivery.retry_max = Duration::from_secs(7200);
        spec.apps[0].webhook = Some(WebhookSpec {
            url: url.clone(),
            secret: Secret::new("whsec_0123456789abcdef", "test"),
            batch: 100,
            timeout: Duration::from_secs(5),
            replay_existing: false,
        });
    })
    .await;

    // A dead token: the send writes events, the webhook's first attempt fails.
    let token = env.tokens(1, "gcm").await.remove(0);
    env.register("gone-1", &token, json!({})).await;
    env.emu(
        Method::POST,
        &format!("/emulator/devices/{token}/uninstall"),
        None,
    )
    .await;
    let m = env
        .send(json!({"targets": {"device_ids": ["gone-1"]}}))
        .await;
    env.wait_done(m["id"].as_str().unwrap()).await;
    let state = eventually_ok(
        "a failed webhook attempt",
        Duration::from_secs(20),
        || async {
            let a = env
                .call(Method::GET, &format!("/v1/apps/{APP}/webhook"), None)
                .await;
            if a.body["failed_attempts"].as_u64().unwrap_or(0) >= 1 {
                Ok(a.body)
            } else {
                Err(a.text)
            }
        },
    )
    .await;
    let next = time::OffsetDateTime::parse(
        state["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        next > time::OffsetDateTime::now_utc() + time::Duration::minutes(20),
        "the backoff puts the next attempt far away: {state}"
    );

    // Sign in as the admin, read the events page, press "Retry now".
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = &env.base;
    let form = http
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = cookie(&form, "pushgate_console_login");
    let token = csrf_field(&form.text().await.unwrap());
    let signed_in = http
        .post(format!("{base}/admin/login"))
        .header("cookie", &login_cookie)
        .form(&[("key", ADMIN), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = cookie(&signed_in, "pushgate_console");
    let page = http
        .get(format!("{base}/admin/apps/{APP}/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("receiver answered HTTP 500"), "{page}");
    assert!(page.contains("Retry now"));
    assert_eq!(receiver.events.load(Ordering::SeqCst), 0);
    let pressed = http
        .post(format!("{base}/admin/apps/{APP}/webhook/retry"))
        .header("cookie", &session)
        .form(&[("csrf", csrf_field(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(pressed.status(), StatusCode::SEE_OTHER);
    let delivered = eventually_ok(
        "the events at the receiver",
        Duration::from_secs(20),
        || async {
            match receiver.events.load(Ordering::SeqCst) {
                0 => Err(receiver.attempts.load(Ordering::SeqCst)),
                n => Ok(n),
            }
        },
    )
    .await;
    assert!(delivered >= 2, "the invalidation and the failed delivery");
    let after = env
        .call(Method::GET, &format!("/v1/apps/{APP}/webhook"), None)
        .await;
    assert_eq!(after.body["failed_attempts"], 0, "{}", after.text);
    assert_eq!(after.body["backlog"], 0, "{}", after.text);
}
