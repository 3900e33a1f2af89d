//! Shared helpers for the emulator's integration tests: a fresh emulator on a real socket
//! and a raw reqwest client (never pushgate-client).

#![allow(dead_code)]

use pushgate_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The default sender's key, as docs/emulator.md names it.
pub const KEY: &str = "emulator-key";

/// A running emulator and a client for it.
pub struct Emu {
    pub running: RunningEmulator,
    pub http: reqwest::Client,
    pub base: String,
}

/// Starts an emulator on 127.0.0.1:0 with defaults.
pub async fn start() -> Emu {
    start_with(EmulatorConfig::default()).await
}

/// Starts an emulator on 127.0.0.1:0 with `config` otherwise.
pub async fn start_with(config: EmulatorConfig) -> Emu {
    let running = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .await
    .expect("emulator starts");
    let base = running.base_url();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Emu {
        running,
        http,
        base,
    }
}

/// A whole answer: status, headers, body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A control API call; returns status and decoded JSON.
    pub async fn control(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let a = answer(req.send().await.unwrap()).await;
        let v = if a.text.is_empty() {
            Value::Null
        } else {
            a.json()
        };
        (a.status, v)
    }

    /// Creates devices and returns their tokens.
    pub async fn devices(&self, spec: Value) -> Vec<String> {
        let (status, v) = self
            .control(Method::POST, "/emulator/devices", Some(spec))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["token"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn device(&self, count: usize) -> Vec<String> {
        self.devices(json!({ "count": count })).await
    }

    pub async fn inbox(&self, token: &str) -> Vec<Value> {
        let (status, v) = self
            .control(
                Method::GET,
                &format!("/emulator/devices/{token}/messages"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["messages"].as_array().unwrap().clone()
    }

    pub async fn uninstall(&self, token: &str) {
        let (status, v) = self
            .control(
                Method::POST,
                &format!("/emulator/devices/{token}/uninstall"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    pub async fn rotate(&self, token: &str) -> String {
        let (status, v) = self
            .control(
                Method::POST,
                &format!("/emulator/devices/{token}/rotate"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn fault(&self, spec: Value) -> (StatusCode, Value) {
        self.control(Method::POST, "/emulator/faults", Some(spec))
            .await
    }

    /// POST with an explicit key, content type and raw body.
    pub async fn raw(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(k) = key {
            req = req.header("Authorization", format!("key={k}"));
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        answer(req.send().await.unwrap()).await
    }

    /// A JSON send to /gcm/send with the default key.
    pub async fn send(&self, body: Value) -> Answer {
        self.send_to("/gcm/send", KEY, body).await
    }

    pub async fn send_to(&self, path: &str, key: &str, body: Value) -> Answer {
        self.raw(path, Some(key), Some("application/json"), body.to_string())
            .await
    }

    /// A plain-text send to /gcm/send with the default key.
    pub async fn plain(&self, form: &str) -> Answer {
        self.raw(
            "/gcm/send",
            Some(KEY),
            Some("application/x-www-form-urlencoded;charset=UTF-8"),
            form.to_string(),
        )
        .await
    }

    /// Sends to `tokens` and returns the per-recipient `error` (or "ok") list.
    pub async fn codes(&self, mut body: Value, tokens: &[&str]) -> Vec<String> {
        body["registration_ids"] = json!(tokens);
        let a = self.send(body).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        codes_of(&a.json())
    }
}

/// "ok" for a result with a message id, its error otherwise.
pub fn codes_of(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match (r.get("message_id"), r.get("error")) {
            (Some(_), None) => "ok".to_string(),
            (None, Some(e)) => e.as_str().unwrap().to_string(),
            _ => panic!("bad result {r}"),
        })
        .collect()
}

/// True for `0:<digits>%<16 lowercase hex>`.
pub fn looks_like_message_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("0:") else {
        return false;
    };
    let Some((micros, hex)) = rest.split_once('%') else {
        return false;
    };
    !micros.is_empty()
        && micros.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 16
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Emu {
    /// An OAuth access token of the default project (`pushgate-emulator`), obtained the way
    /// google-auth does it: a JWT signed with the project's key file, exchanged at `/token`.
    pub async fn access_token(&self) -> String {
        let (status, key) = self
            .control(
                Method::GET,
                "/emulator/projects/pushgate-emulator/key",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{key}");
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let aud = key["token_uri"].as_str().unwrap();
        let claims = json!({
            "iss": key["client_email"],
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "aud": aud, "iat": iat, "exp": iat + 3600
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(key["private_key_id"].as_str().unwrap().to_string());
        let pem = key["private_key"].as_str().unwrap();
        let assertion = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap();
        let resp = self
            .http
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let a = answer(resp).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.json()["access_token"].as_str().unwrap().to_string()
    }

    /// An IID batch call (`batchAdd` / `batchRemove`) with the default key.
    pub async fn iid_batch(&self, op: &str, topic: &str, tokens: &[String]) -> Answer {
        let body = json!({ "to": format!("/topics/{topic}"), "registration_tokens": tokens });
        let resp = self
            .http
            .post(self.url(&format!("/iid/v1:{op}")))
            .header("Authorization", format!("key={KEY}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    /// Subscribes `tokens` to `topic` and checks every result is `{}`.
    pub async fn subscribe(&self, topic: &str, tokens: &[String]) {
        let a = self.iid_batch("batchAdd", topic, tokens).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        for r in a.json()["results"].as_array().unwrap() {
            assert_eq!(r, &json!({}), "{}", a.text);
        }
    }
}
