//! Shared helpers for integration tests: an in-process emulator on a real socket and thin
//! wrappers over its control API (`/emulator/...`), reusable by every protocol's tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use pushgate_client::legacy::LegacySender;
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
        let running = Emulator::start(EmulatorConfig {
            http: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
        .expect("emulator starts");
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

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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
