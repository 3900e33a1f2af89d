//! Reload without restart, on a real gateway and emulator: the configuration file is
//! rewritten while a sender posts messages without pause, and `POST /v1/admin/reload` applies
//! it. A new app serves and delivers, a removed key is refused, a changed channel restarts,
//! an invalid file is refused with the old configuration still serving, and every message the
//! API accepted reaches its device.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::on_postgres;
use pushgate_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RunningEmulator};
use pushgate_gateway::config::ConfigFile;
use pushgate_gateway::reload::ConfigSource;
use pushgate_gateway::{Gateway, RunningGateway};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "admin-key-0123456789abcdef";
const SHOP_KEY: &str = "shop-key-0123456789abcdef";
const SHOP_SPARE: &str = "shop-spare-0123456789abcdef";
const NEWS_KEY: &str = "news-key-0123456789abcdef";

/// A gateway started from a configuration file, and the emulator it sends to.
struct Setup {
    emu: RunningEmulator,
    gw: Option<RunningGateway>,
    http: reqwest::Client,
    base: String,
    emu_base: String,
    file: PathBuf,
    database: String,
    _dir: tempfile::TempDir,
    _pg: Option<pushgate_testkit::postgres::Schema>,
}

/// The configuration: app `shop` (the default) always; `news` and shop's spare key as asked;
/// shop's channel with `in_flight` requests at once.
fn config(s: &Setup, news: bool, spare_key: bool, in_flight: usize) -> String {
    let channel = |app: &str| {
        format!(
            "[apps.{app}.channels.gcm]\nkind = \"legacy\"\napi_key = \"{DEFAULT_API_KEY}\"\n\
             endpoint = \"{}/gcm/send\"\nmax_in_flight = {in_flight}\n",
            s.emu_base
        )
    };
    let shop_keys = if spare_key {
        format!("\"{SHOP_KEY}\", \"{SHOP_SPARE}\"")
    } else {
        format!("\"{SHOP_KEY}\"")
    };
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\nadmin_keys = [\"{ADMIN}\"]\n\
         [delivery]\nidle_poll = \"50ms\"\nretry_initial = \"100ms\"\nretry_max = \"2s\"\n\
         lease = \"10s\"\nshutdown_grace = \"2s\"\n\
         [apps.shop]\ndefault = true\napi_keys = [{shop_keys}]\n{}",
        s.database,
        channel("shop")
    );
    if news {
        text += &format!(
            "[apps.news]\napi_keys = [\"{NEWS_KEY}\"]\n{}",
            channel("news")
        );
    }
    text
}

async fn setup() -> Setup {
    let emu = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        xmpp: None,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let dir = tempfile::tempdir().unwrap();
    let pg = if on_postgres() {
        Some(
            pushgate_testkit::postgres::fresh_schema()
                .await
                .expect("PUSHGATE_TEST_DATABASE=postgres asks for a PostgreSQL server"),
        )
    } else {
        None
    };
    let database = match &pg {
        Some(schema) => schema.url().to_string(),
        None => dir.path().join("gw.db").to_string_lossy().into_owned(),
    };
    let mut s = Setup {
        emu_base: emu.base_url(),
        emu,
        gw: None,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        base: String::new(),
        file: dir.path().join("pushgate.toml"),
        database,
        _dir: dir,
        _pg: pg,
    };
    std::fs::write(&s.file, config(&s, false, true, 8)).unwrap();
    let file = s.file.clone();
    let source: ConfigSource = Arc::new(move || ConfigFile::load(Some(&file))?.resolve());
    let spec = source().expect("the first configuration is valid");
    let gw = Gateway::start_reloadable(&spec, Some(source))
        .await
        .expect("gateway starts");
    s.base = gw.base_url();
    s.gw = Some(gw);
    s
}

impl Setup {
    async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.http, &self.base, key, method, path, body).await
    }

    async fn reload(&self, key: Option<&str>) -> (StatusCode, Value) {
        self.call(key, Method::POST, "/v1/admin/reload", None).await
    }

    /// A new virtual device of the emulator, registered as `device` of `app`; its token.
    async fn device(&self, app: &str, key: &str, device: &str) -> String {
        let (status, body) = call(
            &self.http,
            &self.emu_base,
            None,
            Method::POST,
            "/emulator/devices",
            Some(json!({"count": 1, "protocol": "gcm"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["devices"][0]["token"].as_str().unwrap().to_string();
        let (status, body) = self
            .call(
                Some(key),
                Method::PUT,
                &format!("/v1/apps/{app}/devices/{device}"),
                Some(json!({"token": token})),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
        token
    }

    /// The distinct `data.case` values the device with `token` received.
    async fn received(&self, token: &str) -> BTreeSet<String> {
        let path = format!("/emulator/devices/{token}/messages");
        let (status, body) = call(&self.http, &self.emu_base, None, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["data"]["case"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits (up to 20 s) until what the device with `token` received satisfies `done`.
    async fn until_received(&self, token: &str, done: impl Fn(&BTreeSet<String>) -> bool) {
        pushgate_testkit::eventually_ok("delivered", Duration::from_secs(20), || async {
            let got = self.received(token).await;
            if done(&got) { Ok(()) } else { Err(got) }
        })
        .await;
    }

    fn write(&self, text: &str) {
        write_atomically(&self.file, text);
    }
}

/// Replaces the file as an editor or a deployment tool does: a new file renamed over it.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("answers");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// What the sender saw: the cases accepted (202), and every other answer.
type Traffic = (BTreeSet<String>, Vec<(StatusCode, Value)>);

/// Posts messages to `shop`'s device one after another until `stop`; returns the cases
/// accepted (202) and every other answer.
fn sender(
    s: &Setup,
    accepted_count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Traffic> {
    let (http, base) = (s.http.clone(), s.base.clone());
    tokio::spawn(async move {
        let mut accepted = BTreeSet::new();
        let mut refused = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let case = format!("m{n}");
            let body = json!({"targets": {"device_ids": ["phone"]}, "data": {"case": case}});
            let (status, answer) = call(
                &http,
                &base,
                Some(SHOP_KEY),
                Method::POST,
                "/v1/apps/shop/messages",
                Some(body),
            )
            .await;
            if status == StatusCode::ACCEPTED {
                accepted.insert(case);
                accepted_count.fetch_add(1, Ordering::SeqCst);
            } else {
                refused.push((status, answer));
            }
        }
        (accepted, refused)
    })
}

/// Waits until the sender has had `more` further messages accepted.
async fn until_accepted(count: &AtomicUsize, more: usize) {
    let target = count.load(Ordering::SeqCst) + more;
    pushgate_testkit::eventually_ok("messages accepted", Duration::from_secs(30), || async {
        let now = count.load(Ordering::SeqCst);
        if now >= target { Ok(()) } else { Err(now) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_an_app_and_removes_a_key_while_traffic_flows_and_loses_no_message() {
    let mut s = setup().await;
    let phone = s.device("shop", SHOP_KEY, "phone").await;
    let (status, _) = s
        .call(Some(SHOP_SPARE), Method::GET, "/v1/apps/shop", None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the spare key works before the reload"
    );
    let (status, _) = s
        .call(Some(NEWS_KEY), Method::GET, "/v1/apps/news", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no app news yet");

    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = sender(&s, count.clone(), stop.clone());
    until_accepted(&count, 20).await;

    // Add app news, remove shop's spare key, and change shop's channel: reload.
    s.write(&config(&s, true, false, 4));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["apps_added"], json!(["news"]));
    assert_eq!(report["apps_removed"], json!([]));
    assert_eq!(report["apps_changed"], json!(["shop"]));
    assert_eq!(report["channels_added"], json!(["news/gcm"]));
    assert_eq!(report["channels_restarted"], json!(["shop/gcm"]));
    // The spare key went, news's key came.
    assert_eq!(report["keys_changed"], 2);
    assert_eq!(report["needs_restart"], json!([]));
    let text = report.to_string();
    for key in [ADMIN, SHOP_KEY, SHOP_SPARE, NEWS_KEY] {
        assert!(!text.contains(key), "the answer shows a key: {text}");
    }
    until_accepted(&count, 20).await;

    // The removed key is refused; the new app takes requests and delivers.
    let (status, body) = s
        .call(Some(SHOP_SPARE), Method::GET, "/v1/apps/shop", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let tablet = s.device("news", NEWS_KEY, "tablet").await;
    let (status, body) = s
        .call(
            Some(NEWS_KEY),
            Method::POST,
            "/v1/apps/news/messages",
            Some(json!({"targets": {"device_ids": ["tablet"]}, "data": {"case": "news-1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.until_received(&tablet, |got| got.contains("news-1"))
        .await;

    // A file that does not validate is refused; the running configuration stays.
    s.write(&config(&s, true, false, 4).replace("kind = \"legacy\"", "kind = \"pigeon\""));
    let (status, body) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_configuration");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("pigeon"),
        "the error names the problem: {message}"
    );
    assert!(!message.contains(DEFAULT_API_KEY), "{message}");
    let (status, _) = s
        .call(Some(NEWS_KEY), Method::GET, "/v1/apps/news", None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "news still served after the refused reload"
    );
    let (status, _) = s
        .call(Some(SHOP_SPARE), Method::GET, "/v1/apps/shop", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the removed key stays removed"
    );
    until_accepted(&count, 20).await;

    // Every accepted message reaches the phone.
    stop.store(true, Ordering::SeqCst);
    let (accepted, refused) = traffic.await.unwrap();
    assert!(
        refused.is_empty(),
        "shop's key never changed, yet: {refused:?}"
    );
    assert!(accepted.len() >= 60, "{}", accepted.len());
    let received = pushgate_testkit::eventually_ok(
        "every accepted message delivered",
        Duration::from_secs(60),
        || async {
            let got = s.received(&phone).await;
            if got.is_superset(&accepted) {
                Ok(got)
            } else {
                Err(accepted.difference(&got).count())
            }
        },
    )
    .await;
    assert_eq!(
        received, accepted,
        "the phone got exactly the accepted messages"
    );
    s.gw.take().unwrap().shutdown().await;
    s.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_app_stops_its_requests_and_keeps_its_stored_work() {
    let mut s = setup().await;
    s.write(&config(&s, true, true, 8));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let tablet = s.device("news", NEWS_KEY, "tablet").await;
    let (status, sent) = s
        .call(
            Some(NEWS_KEY),
            Method::POST,
            "/v1/apps/news/messages",
            Some(json!({"targets": {"device_ids": ["tablet"]}, "data": {"case": "before"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    s.until_received(&tablet, |got| got.contains("before"))
        .await;

    s.write(&config(&s, false, true, 8));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["apps_removed"], json!(["news"]));
    assert_eq!(report["channels_removed"], json!(["news/gcm"]));
    assert_eq!(report["keys_changed"], 1);
    let (status, _) = s
        .call(Some(NEWS_KEY), Method::GET, "/v1/apps/news", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The shop app never noticed.
    let (status, _) = s
        .call(Some(SHOP_KEY), Method::GET, "/v1/apps/shop", None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Adding it back serves its stored history again.
    s.write(&config(&s, true, true, 8));
    let (status, _) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    let id = sent["id"].as_str().unwrap();
    let (status, body) = s
        .call(
            Some(NEWS_KEY),
            Method::GET,
            &format!("/v1/messages/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.gw.take().unwrap().shutdown().await;
    s.emu.shutdown().await;
}

/// Shop's configuration with a second legacy channel, `second`, besides its default `gcm`.
fn config_with_second_channel(s: &Setup) -> String {
    config(s, false, true, 8).replace(
        "default = true\n",
        "default = true\ndefault_channel = \"gcm\"\n",
    ) + &format!(
        "[apps.shop.channels.second]\nkind = \"legacy\"\napi_key = \"{DEFAULT_API_KEY}\"\n\
         endpoint = \"{}/gcm/send\"\n",
        s.emu_base
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_device_of_a_removed_channel_is_refused_and_others_are_not() {
    let mut s = setup().await;
    s.write(&config_with_second_channel(&s));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let phone = s.device("shop", SHOP_KEY, "phone").await;
    let old = s.device("shop", SHOP_KEY, "old").await;
    let (status, body) = s
        .call(
            Some(SHOP_KEY),
            Method::PUT,
            "/v1/apps/shop/devices/old",
            Some(json!({"token": old, "channel": "second"})),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    // The channel goes; the device registered on it stays.
    s.write(&config(&s, false, true, 8));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["channels_removed"], json!(["shop/second"]));

    // Concurrent messages (stored together): each to `old` is refused, naming the channel;
    // each to `phone` is accepted and delivered.
    let mut posts = Vec::new();
    for i in 0..24 {
        let device = if i % 6 == 0 { "old" } else { "phone" };
        let body = json!({"targets": {"device_ids": [device]}, "data": {"case": format!("c{i}")}});
        let (http, base) = (s.http.clone(), s.base.clone());
        posts.push(tokio::spawn(async move {
            let path = "/v1/apps/shop/messages";
            let answer = call(&http, &base, Some(SHOP_KEY), Method::POST, path, Some(body)).await;
            (device, i, answer)
        }));
    }
    let mut delivered_cases = BTreeSet::new();
    for post in posts {
        let (device, i, (status, body)) = post.await.unwrap();
        if device == "old" {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"]["field"], "targets", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("\"second\"") && message.contains("not configured"),
                "{message}"
            );
        } else {
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            delivered_cases.insert(format!("c{i}"));
        }
    }
    assert_eq!(delivered_cases.len(), 20);
    s.until_received(&phone, |got| *got == delivered_cases)
        .await;
    assert!(
        s.received(&old).await.is_empty(),
        "nothing reached the old device"
    );
    // Naming a configured channel still reaches it.
    let (status, body) = s
        .call(
            Some(SHOP_KEY),
            Method::POST,
            "/v1/apps/shop/messages",
            Some(json!({"targets": {"device_ids": ["old"]}, "data": {"case": "moved"}, "channel": "gcm"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.until_received(&old, |got| got.contains("moved")).await;
    s.gw.take().unwrap().shutdown().await;
    s.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_takes_an_admin_key_and_reports_start_only_settings() {
    let mut s = setup().await;
    let (status, body) = s.reload(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = s.reload(Some("not-a-key-of-this-gateway")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = s.reload(Some(SHOP_KEY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Nothing changed: nothing to do.
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["apps_changed"], json!([]));
    assert_eq!(report["keys_changed"], 0);

    // A start-only setting is reported and left as it is: the gateway still answers where
    // it listens, and the next reload reports it again.
    let moved =
        config(&s, false, true, 8).replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    s.write(&moved);
    for _ in 0..2 {
        let (status, report) = s.reload(Some(ADMIN)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["needs_restart"], json!(["listen"]));
    }

    // A new admin key replaces the old one.
    const NEW_ADMIN: &str = "new-admin-key-0123456789abcdef";
    s.write(&moved.replace(ADMIN, NEW_ADMIN));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["admin_keys_changed"], 2);
    let (status, _) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.reload(Some(NEW_ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    s.gw.take().unwrap().shutdown().await;
    s.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_follows_a_reload() {
    let mut s = setup().await;
    let doc = |s: &Setup| {
        let url = format!("{}/openapi.json", s.base);
        let http = s.http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(!doc(&s).await.contains("\"second\""));
    s.write(&config_with_second_channel(&s));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["channels_added"], json!(["shop/second"]));
    let text = doc(&s).await;
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert!(parsed["openapi"].is_string());
    assert!(
        text.contains("\"second\""),
        "the new channel is in the document's channel enum"
    );
    s.gw.take().unwrap().shutdown().await;
    s.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_a_configuration_file_has_nothing_to_reload() {
    let env = common::start_with(|spec| {
        spec.admin_keys = vec![pushgate_gateway::config::Secret::new(ADMIN, "test")];
    })
    .await;
    let a = env
        .call_as(Some(ADMIN), Method::POST, "/v1/admin/reload", None)
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "no_configuration_file");
}

/// A webhook receiver that keeps every event it is sent.
async fn webhook_receiver() -> (Arc<parking_lot::Mutex<Vec<Value>>>, String) {
    use axum::routing::post;
    let events = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let kept = events.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(batch): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock()
                    .extend(batch["events"].as_array().cloned().unwrap_or_default());
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (events, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_added_by_reload_delivers_and_one_removed_stops() {
    let mut s = setup().await;
    let (events, url) = webhook_receiver().await;
    let (status, _) = s
        .call(Some(SHOP_KEY), Method::GET, "/v1/apps/shop/webhook", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no webhook yet");

    let with_hook = config(&s, false, true, 8)
        + &format!(
            "[apps.shop.webhook]\nurl = \"{url}\"\nsecret = \"whsec_0123456789abcdef\"\nreplay_existing = true\n"
        );
    s.write(&with_hook);
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["webhooks_changed"], json!(["shop"]));
    assert_eq!(report["apps_changed"], json!(["shop"]));
    assert!(!report.to_string().contains("whsec_"), "{report}");
    let (status, body) = s
        .call(Some(SHOP_KEY), Method::GET, "/v1/apps/shop/webhook", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], url.as_str());

    // A device whose app was uninstalled: sending to it makes events for the webhook.
    let token = s.device("shop", SHOP_KEY, "gone").await;
    let (status, _) = call(
        &s.http,
        &s.emu_base,
        None,
        Method::POST,
        &format!("/emulator/devices/{token}/uninstall"),
        None,
    )
    .await;
    assert!(status.is_success());
    let (status, body) = s
        .call(
            Some(SHOP_KEY),
            Method::POST,
            "/v1/apps/shop/messages",
            Some(json!({"targets": {"device_ids": ["gone"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    pushgate_testkit::eventually_ok(
        "events at the receiver",
        Duration::from_secs(20),
        || async {
            let n = events.lock().len();
            if n > 0 { Ok(()) } else { Err(n) }
        },
    )
    .await;

    s.write(&config(&s, false, true, 8));
    let (status, report) = s.reload(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["webhooks_changed"], json!(["shop"]));
    let (status, _) = s
        .call(Some(SHOP_KEY), Method::GET, "/v1/apps/shop/webhook", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the webhook is gone");
    s.gw.take().unwrap().shutdown().await;
    s.emu.shutdown().await;
}
