//! Shared harness of the gateway's integration tests: a real emulator and a real gateway on
//! 127.0.0.1 sockets with a SQLite file in a temporary directory (or, with
//! `PUSHGATE_TEST_DATABASE=postgres`, a fresh schema of the test PostgreSQL server), and a
//! plain reqwest client for both (never pushgate-client: the tests check the gateway, not a
//! shared library).

#![allow(dead_code)]

use std::time::Duration;

use pushgate_emulator::{
    DEFAULT_API_KEY, DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD, DEFAULT_SENDER_ID, Emulator,
    EmulatorConfig, RunningEmulator,
};
use pushgate_gateway::config::{GatewaySpec, Secret, ServiceSettings};
use pushgate_gateway::sandbox::{SandboxEmulator, sandbox_spec};
use pushgate_gateway::{Gateway, RunningGateway};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The sandbox app's key in every test.
pub const KEY: &str = "test-key-0123456789abcdef";
/// The app every helper talks to.
pub const APP: &str = "sandbox";

/// A running emulator and gateway.
pub struct Env {
    pub emu: RunningEmulator,
    pub gw: Option<RunningGateway>,
    pub spec: GatewaySpec,
    pub http: reqwest::Client,
    pub base: String,
    pub emu_base: String,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL schema the gateway uses (dropped last), when on PostgreSQL.
    pub pg: Option<pushgate_testkit::postgres::Schema>,
}

/// True when the suites run on PostgreSQL (`PUSHGATE_TEST_DATABASE=postgres`) instead of
/// SQLite; the server is `PUSHGATE_TEST_POSTGRES`'s.
pub fn on_postgres() -> bool {
    std::env::var("PUSHGATE_TEST_DATABASE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// Delivery settings that make retries visible within a test's time.
pub fn quick(spec: &mut GatewaySpec) {
    spec.delivery.retry_initial = Duration::from_millis(100);
    spec.delivery.retry_max = Duration::from_secs(2);
    spec.delivery.idle_poll = Duration::from_millis(50);
    spec.delivery.lease = Duration::from_secs(10);
    spec.delivery.shutdown_grace = Duration::from_secs(2);
}

/// Starts an emulator (HTTP and CCS) and a sandbox gateway on it.
pub async fn start() -> Env {
    start_with(|_| {}).await
}

/// [`start`] with the gateway's configuration adjusted by `adjust` (after [`quick`]).
pub async fn start_with(adjust: impl FnOnce(&mut GatewaySpec)) -> Env {
    let emu = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        xmpp: Some("127.0.0.1:0".parse().unwrap()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let emu_base = emu.base_url();
    let key_json = http
        .get(format!(
            "{emu_base}/emulator/projects/pushgate-emulator/key"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emulator = SandboxEmulator {
        http_base: emu_base.clone(),
        xmpp: emu.xmpp_addr(),
        cert_pem: emu.tls_cert_pem().map(str::to_string),
        service_account_json: key_json,
        api_key: DEFAULT_API_KEY.into(),
        sender_id: DEFAULT_SENDER_ID.into(),
        c2dm_email: DEFAULT_C2DM_EMAIL.into(),
        c2dm_password: DEFAULT_C2DM_PASSWORD.into(),
    };
    let pg = if on_postgres() {
        let schema = pushgate_testkit::postgres::fresh_schema().await;
        Some(schema.expect("PUSHGATE_TEST_DATABASE=postgres asks for a PostgreSQL server"))
    } else {
        None
    };
    let database = match &pg {
        Some(schema) => schema.url().to_string(),
        None => dir.path().join("gw.db").to_string_lossy().into_owned(),
    };
    let service = ServiceSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database,
        ..ServiceSettings::default()
    };
    let mut spec = sandbox_spec(service, Secret::new(KEY, "test"), &emulator);
    quick(&mut spec);
    adjust(&mut spec);
    let gw = Gateway::start(&spec).await.expect("gateway starts");
    let base = gw.base_url();
    Env {
        emu,
        gw: Some(gw),
        spec,
        http,
        base,
        emu_base,
        dir,
        pg,
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Env {
    pub fn gw(&self) -> &RunningGateway {
        self.gw.as_ref().expect("gateway running")
    }

    /// A call to the gateway with the sandbox key.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Some(KEY), method, path, body).await
    }

    /// A call to the gateway with `key` (or none).
    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req.send().await.expect("gateway answers")).await
    }

    /// A raw call to the gateway (any content type, any body).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", content_type)
            .body(body);
        answer(req.send().await.expect("gateway answers")).await
    }

    /// A call to the emulator's control API.
    pub async fn emu(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.emu_base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req.send().await.expect("emulator answers")).await
    }

    /// `n` new virtual devices; their tokens.
    pub async fn tokens(&self, n: usize, protocol: &str) -> Vec<String> {
        let a = self
            .emu(
                Method::POST,
                "/emulator/devices",
                Some(json!({"count": n, "protocol": protocol})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["token"].as_str().unwrap().to_string())
            .collect()
    }

    /// Registers a device through the API; `extra` adds fields to the body.
    pub async fn register(&self, device_id: &str, token: &str, extra: Value) -> Value {
        let mut body = json!({ "token": token });
        if let Value::Object(map) = extra {
            for (k, v) in map {
                body[k] = v;
            }
        }
        let a = self
            .call(
                Method::PUT,
                &format!("/v1/apps/{APP}/devices/{device_id}"),
                Some(body),
            )
            .await;
        assert!(
            a.status.is_success(),
            "register {device_id}: {} {}",
            a.status,
            a.text
        );
        a.body
    }

    /// A device as the gateway sees it.
    pub async fn device(&self, device_id: &str) -> Value {
        let a = self
            .call(
                Method::GET,
                &format!("/v1/apps/{APP}/devices/{device_id}"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    }

    /// Sends; expects 202 and returns the answer body.
    pub async fn send(&self, body: Value) -> Value {
        let a = self
            .call(
                Method::POST,
                &format!("/v1/apps/{APP}/messages"),
                Some(body),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        a.body
    }

    /// The message status (first page of results).
    pub async fn message(&self, id: &str) -> Value {
        let a = self
            .call(Method::GET, &format!("/v1/messages/{id}?limit=1000"), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    }

    /// Waits until every delivery of a message is final; returns its status.
    pub async fn wait_done(&self, id: &str) -> Value {
        self.wait_until(id, |m| m["done"] == true, Duration::from_secs(20))
            .await
    }

    /// Polls a message until `ok` holds, failing after `limit`.
    pub async fn wait_until(
        &self,
        id: &str,
        ok: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Value {
        pushgate_testkit::eventually_ok(&format!("message {id}"), limit, || async {
            let m = self.message(id).await;
            if ok(&m) { Ok(m) } else { Err(m) }
        })
        .await
    }

    /// What a virtual device received.
    pub async fn inbox(&self, token: &str) -> Vec<Value> {
        let a = self
            .emu(
                Method::GET,
                &format!("/emulator/devices/{token}/messages"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body["messages"].as_array().unwrap().clone()
    }

    /// The emulator's request log.
    pub async fn activity(&self) -> Vec<Value> {
        let a = self.emu(Method::GET, "/emulator/activity", None).await;
        a.body["requests"].as_array().unwrap().clone()
    }

    /// Stops the gateway (graceful).
    pub async fn stop_gateway(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }
}

async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// The `data.case` values a device received, in order.
pub fn cases(inbox: &[Value]) -> Vec<String> {
    inbox
        .iter()
        .filter_map(|m| m["data"]["case"].as_str().map(str::to_string))
        .collect()
}

/// Rows of a table, counted straight from the gateway's database (a second reader).
pub async fn count_rows(env: &Env, table: &'static str) -> i64 {
    use sqlx::{ConnectOptions, Connection};
    // The table names are the tests' own literals.
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    if let Some(schema) = &env.pg {
        let mut conn = sqlx::PgConnection::connect(schema.url())
            .await
            .expect("open the gateway's database");
        return sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count rows");
    }
    let path = env.dir.path().join("gw.db");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .read_only(true)
        .connect()
        .await
        .expect("open the gateway's database");
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect("count rows")
}

/// Adds a second app, `other`, with key [`OTHER_KEY`], a copy of the sandbox's channels.
pub fn with_other_app(spec: &mut GatewaySpec) {
    let mut other = spec.apps[0].clone();
    other.name = "other".into();
    other.is_default = false;
    other.api_keys = vec![Secret::new(OTHER_KEY, "test")];
    spec.apps.push(other);
}

/// The `other` app's key.
pub const OTHER_KEY: &str = "other-key-0123456789abcdef";
