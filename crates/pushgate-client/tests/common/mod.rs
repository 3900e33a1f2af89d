//! Shared helpers for integration tests: an in-process emulator on a real socket and thin
//! wrappers over its control API (`/emulator/...`), reusable by every protocol's tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use pushgate_client::legacy::LegacySender;
use pushgate_client::oauth::key_from_json;
use pushgate_client::v1::{FcmV1Sender, V1Config};
use pushgate_client::{HttpConfig, RetryPolicy};
use pushgate_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

/// A running emulator plus a plain HTTP client for its control API.
pub struct Emu {
    pub running: RunningEmulator,
    pub base: String,
    control: reqwest::Client,
}

impl Emu {
    /// Starts an emulator on an ephemeral 127.0.0.1 port.
    pub async fn start() -> Emu {
        Emu::start_with(EmulatorConfig {
            http: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
    }

    /// Starts an emulator on an ephemeral 127.0.0.1 port with HTTPS on another one.
    pub async fn start_with_https() -> Emu {
        Emu::start_with(EmulatorConfig {
            http: "127.0.0.1:0".parse().unwrap(),
            https: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .await
    }

    /// Starts an emulator with this configuration.
    pub async fn start_with(config: EmulatorConfig) -> Emu {
        let running = Emulator::start(config).await.expect("emulator starts");
        let base = running.base_url();
        let control = reqwest::Client::builder().no_proxy().build().unwrap();
        Emu {
            running,
            base,
            control,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A legacy sender with the default key, posting to `path` (`/gcm/send` or `/fcm/send`).
    pub fn legacy(&self, path: &str) -> LegacySender {
        self.legacy_with_key(DEFAULT_API_KEY, path)
    }

    /// A legacy sender with another key.
    pub fn legacy_with_key(&self, key: &str, path: &str) -> LegacySender {
        LegacySender::new(key, HttpConfig::new().with_endpoint(self.url(path))).unwrap()
    }

    /// The raw HTTP client (for requests the senders would never build).
    pub fn http(&self) -> &reqwest::Client {
        &self.control
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.control.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control API reachable");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{method} {path} answered {status}: {text}"
        );
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    /// `POST /emulator/senders`.
    pub async fn add_sender(&self, sender_id: &str, api_key: &str) {
        self.call(
            reqwest::Method::POST,
            "/emulator/senders",
            Some(json!({"sender_id": sender_id, "api_key": api_key})),
        )
        .await;
    }

    /// `POST /emulator/devices` with a free-form spec; returns the new tokens.
    pub async fn create_devices(&self, spec: Value) -> Vec<String> {
        let answer = self
            .call(reqwest::Method::POST, "/emulator/devices", Some(spec))
            .await;
        answer["devices"]
            .as_array()
            .expect("devices array")
            .iter()
            .map(|d| d["token"].as_str().expect("token").to_string())
            .collect()
    }

    /// `n` devices of the default sender and package.
    pub async fn devices(&self, n: usize) -> Vec<String> {
        self.create_devices(json!({"count": n})).await
    }

    /// One device of the default sender and package.
    pub async fn device(&self) -> String {
        self.devices(1).await.remove(0)
    }

    /// `GET /emulator/devices/{token}`.
    pub async fn device_info(&self, token: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/emulator/devices/{token}"),
            None,
        )
        .await
    }

    /// `GET /emulator/devices/{token}/messages`.
    pub async fn inbox(&self, token: &str) -> Vec<Value> {
        let answer = self
            .call(
                reqwest::Method::GET,
                &format!("/emulator/devices/{token}/messages"),
                None,
            )
            .await;
        answer["messages"].as_array().cloned().unwrap_or_default()
    }

    /// `POST /emulator/devices/{token}/uninstall`.
    pub async fn uninstall(&self, token: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/emulator/devices/{token}/uninstall"),
            None,
        )
        .await;
    }

    /// `POST /emulator/devices/{token}/rotate`; returns the new token.
    pub async fn rotate(&self, token: &str) -> String {
        let answer = self
            .call(
                reqwest::Method::POST,
                &format!("/emulator/devices/{token}/rotate"),
                None,
            )
            .await;
        answer["token"].as_str().expect("new token").to_string()
    }

    /// `POST /emulator/faults`.
    pub async fn fault(&self, spec: Value) {
        self.call(reqwest::Method::POST, "/emulator/faults", Some(spec))
            .await;
    }

    /// `DELETE /emulator/faults`.
    pub async fn clear_faults(&self) {
        self.call(reqwest::Method::DELETE, "/emulator/faults", None)
            .await;
    }

    /// `GET /emulator/stats`.
    pub async fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/emulator/stats", None)
            .await
    }

    /// `POST /emulator/reset`.
    pub async fn reset(&self) {
        self.call(reqwest::Method::POST, "/emulator/reset", None)
            .await;
    }

    /// `POST /emulator/projects`: a new FCM v1 project; returns its service-account key file
    /// (JSON text) whose `token_uri` points at this emulator's `/token`.
    pub async fn create_project(&self, project_id: &str) -> String {
        let key = self
            .call(
                reqwest::Method::POST,
                "/emulator/projects",
                Some(json!({"project_id": project_id})),
            )
            .await;
        key.to_string()
    }

    /// `n` devices registered to a v1 project.
    pub async fn project_devices(&self, project_id: &str, n: usize) -> Vec<String> {
        self.create_devices(json!({"project_id": project_id, "count": n}))
            .await
    }

    /// `PUT /emulator/oauth`: lifetime of the access tokens issued from now on.
    pub async fn set_token_lifetime(&self, secs: u64) {
        self.call(
            reqwest::Method::PUT,
            "/emulator/oauth",
            Some(json!({"lifetime_secs": secs})),
        )
        .await;
    }

    /// `PUT /emulator/projects/{id}/quota`.
    pub async fn set_quota(&self, project_id: &str, per_minute: u32) {
        self.call(
            reqwest::Method::PUT,
            &format!("/emulator/projects/{project_id}/quota"),
            Some(json!({"per_minute": per_minute})),
        )
        .await;
    }

    /// A number from `GET /emulator/stats` (`token_requests`, `delivered`, ...).
    pub async fn stat(&self, name: &str) -> u64 {
        let stats = self.stats().await;
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("stats has no number {name:?}: {stats}"))
    }

    /// A v1 sender for `key_json` against the plain-HTTP listener, with `policy`.
    pub fn v1(&self, key_json: &str, policy: RetryPolicy) -> FcmV1Sender {
        self.v1_with(key_json, V1Config::new().with_retry_policy(policy))
    }

    /// A v1 sender for `key_json` against the plain-HTTP listener (base URL set here).
    pub fn v1_with(&self, key_json: &str, config: V1Config) -> FcmV1Sender {
        let key = key_from_json(key_json).expect("emulator key file is valid");
        FcmV1Sender::from_service_account(key, config.with_base_url(self.base.clone()))
            .expect("v1 sender builds")
    }

    /// Stops the emulator.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// A retry policy fast enough for tests: 20 ms doubling up to 200 ms, 5 attempts.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(200))
        .with_max_attempts(5)
}

/// A token the emulator will see as malformed: a real one cut short.
pub fn truncated(token: &str) -> String {
    token[..token.len() - 10].to_string()
}
