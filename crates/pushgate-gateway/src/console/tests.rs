//! The console's rules checked on the whole router (`tower::ServiceExt::oneshot`) over a real
//! SQLite store: sessions and their cookie, CSRF refusals, escaping of what clients sent, and
//! that an app key sees its own app only.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use pushgate_store::{DeviceState, NewDevice, StoreSettings};
use time::OffsetDateTime;
use tower::ServiceExt;

use super::Console;
use crate::api::{AppInfo, AppState, Apps};
use crate::channel::ChannelHooks;
use crate::config::{
    ApiLimits, AppSpec, C2dmFlowSpec, ChannelSettings, ChannelSpec, DeliverySettings, LegacyFormat,
    MetricsAccess, Secret,
};
use crate::event_wakeup::EventWakeup;
use crate::metrics::Metrics;
use crate::worker::ChannelSet;

const ADMIN: &str = "admin-key-0123456789abcdef";
const KEY_A: &str = "key-of-app-a-0123456789";
const KEY_B: &str = "key-of-app-b-0123456789";
const HOSTILE: &str = "<script>alert(\"pwn\")</script>'quote\"";

/// A legacy channel named `fcm` towards a port nothing listens on: the console tests run no
/// worker, so it is only checked against, never sent on.
fn channel() -> ChannelSpec {
    let endpoint = "http://127.0.0.1:9/gcm/send".to_string();
    ChannelSpec {
        name: "fcm".into(),
        endpoint: endpoint.clone(),
        credential: Secret::new("server-key-for-tests", "test"),
        max_in_flight: 1,
        settings: ChannelSettings::Legacy {
            http: pushgate_client::HttpConfig {
                endpoint: Some(endpoint),
                ..pushgate_client::HttpConfig::default()
            },
            format: LegacyFormat::Json,
        },
    }
}

fn app_spec(name: &str, key: &str) -> AppSpec {
    AppSpec {
        name: name.into(),
        is_default: name == "a",
        api_keys: vec![Secret::new(key, "test")],
        default_channel: "fcm".into(),
        channels: vec![channel()],
        c2dm_flow: C2dmFlowSpec {
            channel: "c2dm".into(),
            device_id_len: crate::c2dm_flow::device_id_len(),
            registration_id_len: crate::c2dm_flow::registration_id_len(
                crate::c2dm_flow::REGISTRATION_ID_MAX,
            ),
        },
        webhook: None,
        key_rate: None,
    }
}

struct Fixture {
    state: AppState,
    router: Router,
    _dir: tempfile::TempDir,
}

async fn fixture(secure: bool) -> Fixture {
    fixture_with(secure, &StoreSettings::default()).await
}

async fn fixture_with(secure: bool, settings: &StoreSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.db");
    let store = pushgate_store::open(&db.to_string_lossy(), settings)
        .await
        .unwrap();
    let channels = ChannelSet::default();
    for app in ["a", "b"] {
        store.upsert_app(app, app == "a").await.unwrap();
        let built = crate::channel::build(&channel(), ChannelHooks::default()).unwrap();
        channels.insert(app, "fcm", built);
    }
    let state = AppState {
        store,
        apps: Arc::new(Apps::from_specs(&[
            app_spec("a", KEY_A),
            app_spec("b", KEY_B),
        ])),
        channels,
        limits: ApiLimits::default(),
        delivery: DeliverySettings::default(),
        events_wakeup: EventWakeup::default(),
        metrics: Arc::new(Metrics::new()),
        reloader: None,
        openapi: Arc::default(),
        metrics_access: MetricsAccess::default(),
        console: Arc::new(Console::new(
            &[Secret::new(ADMIN, "test")],
            secure,
            HashMap::new(),
        )),
        retention: Arc::default(),
    };
    Fixture {
        router: crate::api::router(state.clone()),
        state,
        _dir: dir,
    }
}

/// `html` with its character references resolved (the few an escaper writes), to read back
/// the text a browser shows.
fn unescape(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let c = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One answer, read whole.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The value of the hidden `csrf` field of the page.
    fn csrf_field(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

impl Fixture {
    async fn call(&self, req: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookie: &str) -> Answer {
        let req = Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        self.call(req).await
    }

    async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(form).unwrap();
        let req = Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.call(req).await
    }

    /// Signs in with `key` through the form; the session's `Cookie` header and the answer.
    async fn sign_in(&self, key: &str) -> (String, Answer) {
        let form = self.get("/admin/login", "").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = form.csrf_field();
        let login_cookie = format!("{}={token}", super::csrf::LOGIN_COOKIE);
        let answer = self
            .post(
                "/admin/login",
                &login_cookie,
                &[("key", key), ("csrf", &token)],
            )
            .await;
        let session = answer
            .set_cookies()
            .iter()
            .find(|c| c.starts_with("pushgate_console="))
            .map(|c| c.split(';').next().unwrap().to_string())
            .unwrap_or_default();
        (session, answer)
    }

    async fn device(&self, app: &str, id: &str, tag: &str) {
        self.state
            .store
            .put_device(
                app,
                NewDevice {
                    device_id: id.into(),
                    token: format!("tok-{app}-{}", id.len()),
                    tags: vec![tag.into()],
                    ..NewDevice::default()
                },
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
    }

    /// Signs in with app a's key and sends a notification to all of app a's devices through
    /// the console's Send form: the session, and the sent message's page.
    async fn send_to_all(&self, title: &str) -> (String, String) {
        let (session, _) = self.sign_in(KEY_A).await;
        let token = self.get("/admin/apps/a/send", &session).await.csrf_field();
        let sent = self
            .post(
                "/admin/apps/a/send",
                &session,
                &[("csrf", &token), ("kind", "all"), ("title", title)],
            )
            .await;
        let href = sent.location().to_string();
        assert!(href.starts_with("/admin/apps/a/messages/"), "{href}");
        (session, href)
    }

    fn app(&self, name: &str) -> Arc<AppInfo> {
        self.state.apps.get(name).unwrap()
    }
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_expiring_cookie_and_a_wrong_key_gets_none() {
    let f = fixture(false).await;
    let (session, answer) = f.sign_in(KEY_A).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/admin");
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pushgate_console="))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(session.len() > 40, "a long random id: {session}");
    let overview = f.get("/admin", &session).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("App a"));

    let (none, wrong) = f.sign_in("not-a-key-of-anyone-at-all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(none.is_empty());
    assert!(!wrong.body.contains("not-a-key-of-anyone-at-all"));

    // Without a session every page sends to the sign-in page.
    let anonymous = f.get("/admin/apps/a/devices", "").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), "/admin/login");
    let forged = f.get("/admin", "pushgate_console=made-up").await;
    assert_eq!(forged.location(), "/admin/login");
}

#[tokio::test]
async fn over_tls_the_cookie_is_secure() {
    let f = fixture(true).await;
    let (_, answer) = f.sign_in(ADMIN).await;
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pushgate_console="))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn sign_in_without_the_form_token_is_refused() {
    let f = fixture(false).await;
    let answer = f
        .post("/admin/login", "", &[("key", ADMIN), ("csrf", "guess")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        !answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("pushgate_console="))
    );
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_changes_nothing() {
    let f = fixture(false).await;
    f.device("a", "phone-1", "t").await;
    let (session, _) = f.sign_in(KEY_A).await;
    let (other_session, _) = f.sign_in(KEY_A).await;
    let page = f.get("/admin/apps/a/device?id=phone-1", &session).await;
    let token = page.csrf_field();
    let other_token = f.get("/admin", &other_session).await.csrf_field();
    assert_ne!(token, other_token);
    for bad in ["", "nope", other_token.as_str()] {
        let answer = f
            .post(
                "/admin/apps/a/device/state",
                &session,
                &[("id", "phone-1"), ("state", "disabled"), ("csrf", bad)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "csrf {bad:?}");
        let delete = f
            .post(
                "/admin/apps/a/device/delete",
                &session,
                &[("id", "phone-1"), ("csrf", bad)],
            )
            .await;
        assert_eq!(delete.status, StatusCode::FORBIDDEN);
    }
    let d = f.state.store.get_device("a", "phone-1").await.unwrap();
    assert_eq!(d.unwrap().state, DeviceState::Active);
    // The session's own token works.
    let ok = f
        .post(
            "/admin/apps/a/device/state",
            &session,
            &[("id", "phone-1"), ("state", "disabled"), ("csrf", &token)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let d = f.state.store.get_device("a", "phone-1").await.unwrap();
    assert_eq!(d.unwrap().state, DeviceState::Disabled);
    // Signing out needs it too, and ends the session.
    let refused = f.post("/admin/logout", &session, &[("csrf", "x")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = f.post("/admin/logout", &session, &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(f.get("/admin", &session).await.location(), "/admin/login");
}

#[tokio::test]
async fn what_clients_sent_is_shown_as_text() {
    let f = fixture(false).await;
    f.device("a", HOSTILE, HOSTILE).await;
    let (session, _) = f.sign_in(KEY_A).await;
    let list = f.get("/admin/apps/a/devices?tag=", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("<script>alert"), "{}", list.body);
    assert!(!list.body.contains("\"pwn"), "{}", list.body);
    // Shown as text: the device id and the tag, each read back whole.
    assert_eq!(
        unescape(&list.body).matches(HOSTILE).count(),
        2,
        "{}",
        list.body
    );
    let href = super::page::device_href("a", HOSTILE);
    let page = f.get(&href, &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert"));
    assert!(!page.body.contains("\"pwn"));
    // Heading, tags, and the hidden id fields of its forms.
    assert!(
        unescape(&page.body).matches(HOSTILE).count() >= 3,
        "{}",
        page.body
    );
    // Its "send a test message" link fills the form's targets with the id, as text.
    let link = page
        .body
        .split("id=\"send-to-device\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(unescape)
        .expect("a send link");
    let form = f.get(&link, &session).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.body.contains("<script>alert"));
    assert!(unescape(&form.body).contains(&format!(">{HOSTILE}</textarea>")));
    // A data value goes through the Send form and comes back escaped on the message page.
    let token = page.csrf_field();
    let sent = f
        .post(
            "/admin/apps/a/send",
            &session,
            &[
                ("csrf", &token),
                ("kind", "device_ids"),
                ("targets", "nobody-here"),
                ("data", &format!("k={HOSTILE}")),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let message = f.get(sent.location(), &session).await;
    assert!(!message.body.contains("<script>alert"));
    // The payload is shown as JSON text: the value with its quotes JSON-escaped.
    let as_json = serde_json::to_string(HOSTILE).unwrap();
    assert!(
        unescape(&message.body).contains(&as_json),
        "{}",
        message.body
    );
}

#[tokio::test]
async fn an_app_key_sees_its_own_app_only() {
    let f = fixture(false).await;
    // The tag must not be spelled in hex digits: the pages below show message ids.
    f.device("b", "secret-device-of-b", "zebra").await;
    let bytes = br#"{"targets":{"device_ids":["secret-device-of-b"]},"data":{"k":"b-data"}}"#;
    let out = crate::api::messages::accept(&f.state, &f.app("b"), bytes, None)
        .await
        .unwrap();
    let (session, _) = f.sign_in(KEY_A).await;
    let overview = f.get("/admin", &session).await;
    assert!(overview.body.contains("App a"));
    assert!(!overview.body.contains("App b"));
    let id = out.message_id;
    for path in [
        "/admin/apps/b/devices".to_string(),
        "/admin/apps/b/device?id=secret-device-of-b".to_string(),
        "/admin/apps/a/device?id=secret-device-of-b".to_string(),
        "/admin/apps/b/send".to_string(),
        "/admin/apps/b/events".to_string(),
        "/admin/apps/b/events/stream".to_string(),
        format!("/admin/apps/b/messages/{id}"),
        format!("/admin/apps/a/messages/{id}"),
        "/admin/apps/nosuchapp/devices".to_string(),
    ] {
        let answer = f.get(&path, &session).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!answer.body.contains("b-data"), "{path}");
        assert!(!answer.body.contains("zebra"), "{path}");
    }
    let token = overview.csrf_field();
    let send = f
        .post(
            "/admin/apps/b/send",
            &session,
            &[("csrf", &token), ("kind", "all")],
        )
        .await;
    assert_eq!(send.status, StatusCode::NOT_FOUND);
    let disable = f
        .post(
            "/admin/apps/b/device/state",
            &session,
            &[
                ("csrf", &token),
                ("id", "secret-device-of-b"),
                ("state", "disabled"),
            ],
        )
        .await;
    assert_eq!(disable.status, StatusCode::NOT_FOUND);
    let d = f.state.store.get_device("b", "secret-device-of-b").await;
    assert_eq!(d.unwrap().unwrap().state, DeviceState::Active);

    // The admin key sees both.
    let (admin, _) = f.sign_in(ADMIN).await;
    let overview = f.get("/admin", &admin).await;
    assert!(overview.body.contains("App a") && overview.body.contains("App b"));
    let message = f.get(&format!("/admin/apps/b/messages/{id}"), &admin).await;
    assert_eq!(message.status, StatusCode::OK);
    assert!(message.body.contains("b-data"));
    let device = f
        .get("/admin/apps/b/device?id=secret-device-of-b", &admin)
        .await;
    assert_eq!(device.status, StatusCode::OK);
}

#[tokio::test]
async fn the_send_form_shows_the_apis_refusal_and_stores_nothing() {
    let f = fixture(false).await;
    let (session, _) = f.sign_in(KEY_A).await;
    let token = f.get("/admin/apps/a/send", &session).await.csrf_field();
    let answer = f
        .post(
            "/admin/apps/a/send",
            &session,
            &[
                ("csrf", &token),
                ("kind", "all"),
                ("ttl", "99999999"),
                ("title", "kept <b>"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("ttl"), "{}", answer.body);
    // The form comes back with what was typed, escaped.
    assert!(!answer.body.contains("kept <b>"));
    assert!(unescape(&answer.body).contains("value=\"kept <b>\""));
    let q = f
        .state
        .store
        .queue_stats(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(q.pending, 0);
    let per_app = f.state.store.delivery_counts().await.unwrap();
    assert!(per_app.is_empty(), "{per_app:?}");
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let f = fixture(false).await;
    let (session, _) = f.sign_in(ADMIN).await;
    let page = f.get("/admin", &session).await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let js = f.get("/admin/assets/console.js", "").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("EventSource"));
}

/// The device ids a search page lists, and its "Next page" link.
fn listed(page: &str) -> (Vec<String>, Option<String>) {
    let ids = page
        .split("class=\"device-link\" href=\"")
        .skip(1)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..];
            unescape(&text[..text.find("</a>").unwrap()])
        })
        .collect();
    let next = page
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .map(|rest| unescape(&rest[..rest.find('"').unwrap()]));
    (ids, next)
}

#[tokio::test]
async fn searches_page_through_every_match_once() {
    let f = fixture(false).await;
    let devices: Vec<NewDevice> = (0..130)
        .map(|i| NewDevice {
            device_id: format!("dev-{i:03}"),
            token: format!("{}-token-{i}", if i % 2 == 0 { "even" } else { "odd" }),
            user: Some(if i % 10 == 0 { "tens" } else { "other" }.into()),
            ..NewDevice::default()
        })
        .collect();
    f.state
        .store
        .put_devices("a", devices, OffsetDateTime::now_utc())
        .await
        .unwrap();
    f.device("a", "other-1", "t").await;
    let (session, _) = f.sign_in(KEY_A).await;
    let mut seen = Vec::new();
    let mut next = Some("/admin/apps/a/devices?id=dev-0".to_string());
    let mut pages = 0;
    while let Some(url) = next {
        let page = f.get(&url, &session).await;
        assert_eq!(page.status, StatusCode::OK, "{url}");
        let (ids, more) = listed(&page.body);
        assert!(ids.len() <= 50);
        seen.extend(ids);
        next = more;
        pages += 1;
    }
    let expected: Vec<String> = (0..100).map(|i| format!("dev-{i:03}")).collect();
    assert_eq!(
        seen, expected,
        "ids starting with dev-0, in order, once each"
    );
    assert_eq!(pages, 2);
    // An exact id comes first, then the ids it prefixes.
    let (ids, _) = listed(
        &f.get("/admin/apps/a/devices?id=dev-12", &session)
            .await
            .body,
    );
    assert_eq!(
        ids,
        [
            "dev-120", "dev-121", "dev-122", "dev-123", "dev-124", "dev-125", "dev-126", "dev-127",
            "dev-128", "dev-129"
        ]
    );
    // A token prefix with a user and the id prefix.
    let (ids, next) = listed(
        &f.get(
            "/admin/apps/a/devices?token=even-&user=tens&id=dev-1",
            &session,
        )
        .await
        .body,
    );
    assert_eq!(ids, ["dev-100", "dev-110", "dev-120"]);
    assert_eq!(next, None);
    let (ids, _) = listed(
        &f.get("/admin/apps/a/devices?token=odd-token-12", &session)
            .await
            .body,
    );
    assert_eq!(ids, ["dev-121", "dev-123", "dev-125", "dev-127", "dev-129"]);
    // A state that does not exist is a clear 400.
    let bad = f.get("/admin/apps/a/devices?state=gone", &session).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("not active, disabled or invalid"));
}

#[tokio::test]
async fn the_overview_shows_channel_health_and_credentials_by_reference_only() {
    let f = fixture(false).await;
    let now = OffsetDateTime::now_utc();
    f.state
        .store
        .sync_channels(
            "a",
            &[pushgate_store::ChannelRecord {
                name: "fcm".into(),
                kind: "legacy".into(),
                is_default: true,
                endpoint: "http://127.0.0.1:9/gcm/send".into(),
                credential_ref: "env:SHOP_SERVER_KEY".into(),
                credential_fingerprint: "sha256:0123456789ab".into(),
            }],
            now,
        )
        .await
        .unwrap();
    let status = &f.state.channels.get("a", "fcm").unwrap().status;
    status.error(now, "credentials refused <by provider>".into());
    status.paused(Some(now + time::Duration::minutes(10)));
    let (session, _) = f.sign_in(KEY_A).await;
    let page = f.get("/admin", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = unescape(&page.body);
    assert!(text.contains("paused until"), "{text}");
    assert!(text.contains("credentials refused <by provider>"));
    assert!(!page.body.contains("<by provider>"), "escaped");
    assert!(text.contains("env:SHOP_SERVER_KEY") && text.contains("sha256:0123456789ab"));
    assert!(
        !page.body.contains("server-key-for-tests"),
        "the credential itself is never shown"
    );
}

#[tokio::test]
async fn a_message_deleted_by_retention_says_so_instead_of_not_found() {
    let f = fixture(false).await;
    // To every device of an app that has none: accepted with no delivery, so finished at once.
    let (session, href) = f.send_to_all("gone soon").await;
    assert_eq!(f.get(&href, &session).await.status, StatusCode::OK);

    let limits = pushgate_store::PurgeLimits {
        messages: Some(std::time::Duration::ZERO),
        events: None,
        invalid_devices: None,
        batch: 100,
    };
    let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let purged = f.state.store.purge("a", &limits, later).await.unwrap();
    assert_eq!(purged.messages, 1, "{purged:?}");

    let page = f.get(&href, &session).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        unescape(&page.body).contains("deleted from history"),
        "{}",
        page.body
    );
    // An id retention cannot have deleted is still plainly unknown.
    let unknown = format!("/admin/apps/a/messages/{}", uuid::Uuid::now_v7());
    let page = f.get(&unknown, &session).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("deleted from history"), "{}", page.body);
}

#[tokio::test]
async fn a_fanout_still_being_stored_is_not_shown_as_done() {
    // Chunks of 2: a message to five devices is answered with two, the rest to be stored.
    let settings = StoreSettings {
        fanout_chunk: 2,
        ..StoreSettings::default()
    };
    let f = fixture_with(false, &settings).await;
    for id in ["d", "dd", "ddd", "dddd", "ddddd"] {
        f.device("a", id, "t").await;
    }
    let (session, href) = f.send_to_all("to everyone").await;
    // The first chunk delivered: every stored delivery is final, three are not stored yet (a
    // claim of two takes nothing more from the audience).
    let now = OffsetDateTime::now_utc();
    let store = &f.state.store;
    let claimed = store
        .claim_due("a", "fcm", now, 2, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let answers = claimed
        .iter()
        .map(|d| pushgate_store::Completion {
            delivery_id: d.id,
            attempt: d.attempts,
            outcome: pushgate_proto::outcome::Outcome::Delivered {
                message_id: format!("p-{}", d.id),
            },
            retry_at: None,
        })
        .collect();
    assert_eq!(store.complete(answers, now).await.unwrap(), 2);
    let page = f.get(&href, &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("in progress"), "{}", page.body);
    assert!(
        !page.body.contains("every delivery is final"),
        "{}",
        page.body
    );
}
