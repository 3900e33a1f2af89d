//! A small typed client of a running gateway's HTTP API (`/v1/...`), shared by
//! `pushgate devices` and `pushgate send --gateway`. The app's API key only ever goes into the
//! `Authorization` header (marked sensitive); it is never printed or logged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use pushgate_client::HttpConfig;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The variable that holds the gateway API key when `--api-key` is not given.
pub const KEY_VAR: &str = "PUSHGATE_GATEWAY_KEY";

/// An error answer of the gateway: `{"error": {"code", "message", "field"?}, "request_id"}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The API's machine-readable code (`invalid_request`, ...).
    pub code: String,
    /// What went wrong, as the gateway says it.
    pub message: String,
    /// The offending field, a path in the request (`devices[3].token`).
    pub field: Option<String>,
    /// The gateway's id of the request, for its log.
    pub request_id: Option<String>,
}

impl ApiError {
    /// True for a 4xx: the gateway refused the request as asked (retrying will not help).
    pub fn is_refusal(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// The message without its leading `field: ` (the API repeats the field there).
    pub fn problem(&self) -> &str {
        match &self.field {
            Some(f) => self
                .message
                .strip_prefix(f.as_str())
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&self.message),
            None => &self.message,
        }
    }

    async fn from_response(response: Response) -> Self {
        #[derive(Deserialize)]
        struct Body {
            error: Inner,
            #[serde(default)]
            request_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: String,
            message: String,
            #[serde(default)]
            field: Option<String>,
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<Body>(&text) {
            Ok(b) => ApiError {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
                field: b.error.field,
                request_id: b.request_id,
            },
            Err(_) => ApiError {
                status: status.as_u16(),
                code: "unexpected_answer".into(),
                message: format!(
                    "HTTP {status} with a body that is not the API's error shape: {:?}",
                    text.chars().take(200).collect::<String>()
                ),
                field: None,
                request_id: None,
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the gateway answered {} {}: {}",
            self.status, self.code, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The answer of `POST /v1/apps/{app}/devices:import`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImportSummary {
    /// Devices written.
    pub imported: u64,
    /// Of those, new ones.
    pub created: u64,
    /// Of those, existing ones.
    pub updated: u64,
    /// Device ids whose token an imported device took over.
    #[serde(default)]
    pub took_over_from: Vec<String>,
}

/// A device as `GET /v1/apps/{app}/devices` shows it (the fields an import can set).
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceView {
    /// The application's id of the device.
    pub device_id: String,
    /// Its token; `None` while a C2DM-flow registration is unconfirmed.
    pub token: Option<String>,
    /// Channel override.
    pub channel: Option<String>,
    /// User id.
    pub user: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Topic subscriptions.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Client app version.
    pub app_version: Option<String>,
    /// `active`, `disabled` or `invalid`.
    pub state: String,
}

/// The filters of the device list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceFilter {
    /// Devices of this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Devices with this tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Devices subscribed to this topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Devices in this state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// One page of the device list.
#[derive(Debug, Clone, Deserialize)]
pub struct DevicePage {
    /// The devices.
    pub devices: Vec<DeviceView>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// The channels of an app, from `GET /v1/apps/{app}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AppView {
    /// Every channel.
    pub channels: Vec<ChannelView>,
}

/// One channel of an app.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelView {
    /// Its name.
    pub name: String,
}

/// The 202 answer of `POST /v1/apps/{app}/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct Accepted {
    /// The message id.
    pub id: String,
    /// Deliveries created (one per token).
    pub deliveries: u64,
    /// Of those, queued for sending.
    pub queued: u64,
    /// True when the audience was larger than one chunk: the counts above are the first
    /// chunk's and the rest are stored after the answer.
    #[serde(default)]
    pub expanding: bool,
    /// True when the gateway answered an earlier request with the same `Idempotency-Key`.
    #[serde(skip)]
    pub replayed: bool,
}

/// One delivery of a message.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryResult {
    /// The device, when the delivery came from the registry.
    pub device_id: Option<String>,
    /// The token it went to.
    pub token: Option<String>,
    /// Its state.
    pub state: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: u64,
    /// The provider's error code, if any.
    pub error: Option<String>,
    /// When it last changed (RFC 3339): for a sent delivery, when the provider's answer was
    /// recorded.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `GET /v1/messages/{id}`: counts by state and a page of results.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageStatus {
    /// When it was accepted (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Deliveries in all (so far, while part of a large audience is still to be stored).
    pub deliveries: u64,
    /// True when every delivery is stored and none is pending.
    pub done: bool,
    /// Deliveries by state (absent states omitted).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// A page of per-delivery results.
    #[serde(default)]
    pub results: Vec<DeliveryResult>,
    /// Cursor of the next page of results.
    pub next_cursor: Option<Value>,
}

/// Delivery states that are not final yet.
pub const PENDING_STATES: &[&str] = &["queued", "in_flight", "retry_wait"];

impl MessageStatus {
    /// Deliveries in a final state (everything not pending).
    pub fn finished(&self) -> u64 {
        let pending: u64 = PENDING_STATES
            .iter()
            .filter_map(|s| self.counts.get(*s))
            .sum();
        self.deliveries.saturating_sub(pending)
    }

    /// Deliveries in state `state`.
    pub fn count(&self, state: &str) -> u64 {
        self.counts.get(state).copied().unwrap_or(0)
    }
}

/// A connection to one gateway with one app's API key.
pub struct GatewayClient {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
}

impl GatewayClient {
    /// A client of the gateway at `base` (`http(s)://host:port`), authenticating with `key`;
    /// `ca` is an extra PEM certificate to trust; `timeout` bounds each request.
    pub fn new(
        base: &str,
        key: &str,
        timeout: Duration,
        ca: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let mut config = HttpConfig::new()
            .with_timeout(timeout)
            .with_endpoint(base.to_string())
            .with_user_agent(concat!("pushgate-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            config = config.with_extra_ca_pem(pem);
        }
        let base = config
            .endpoint_or(base)
            .with_context(|| format!("--gateway {base:?}"))?;
        if base.cannot_be_a_base() {
            anyhow::bail!("--gateway {base}: not a base URL");
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| anyhow::anyhow!("the API key must be visible ASCII characters"))?;
        auth.set_sensitive(true);
        let http = config.build_client()?;
        Ok(Self { http, base, auth })
    }

    /// `base` + the path segments (each percent-encoded as needed).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http
            .request(method, self.url(segments))
            .header(AUTHORIZATION, self.auth.clone())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> anyhow::Result<(T, reqwest::header::HeaderMap)> {
        let response = request
            .send()
            .await
            .with_context(|| format!("{what}: cannot reach the gateway at {}", self.base))?;
        if !response.status().is_success() {
            return Err(anyhow::Error::new(ApiError::from_response(response).await)
                .context(what.to_string()));
        }
        let headers = response.headers().clone();
        let body = response
            .json::<T>()
            .await
            .with_context(|| format!("{what}: the gateway's answer is not what its API says"))?;
        Ok((body, headers))
    }

    /// `GET /v1/apps/{app}`.
    pub async fn app(&self, app: &str) -> anyhow::Result<AppView> {
        let request = self.request(Method::GET, &["v1", "apps", app]);
        Ok(self.call(request, &format!("app {app:?}")).await?.0)
    }

    /// `POST /v1/apps/{app}/devices:import` with up to the gateway's batch limit of devices.
    pub async fn import(&self, app: &str, devices: &[Value]) -> anyhow::Result<ImportSummary> {
        let request = self
            .request(Method::POST, &["v1", "apps", app, "devices:import"])
            .json(&serde_json::json!({ "devices": devices }));
        Ok(self.call(request, "import").await?.0)
    }

    /// One page of `GET /v1/apps/{app}/devices`.
    pub async fn list_devices(
        &self,
        app: &str,
        filter: &DeviceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<DevicePage> {
        let mut request = self
            .request(Method::GET, &["v1", "apps", app, "devices"])
            .query(filter)
            .query(&[("limit", limit)]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        Ok(self.call(request, "device list").await?.0)
    }

    /// `POST /v1/apps/{app}/messages` with `body`, optionally under an `Idempotency-Key`.
    pub async fn send(
        &self,
        app: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Accepted> {
        let mut request = self
            .request(Method::POST, &["v1", "apps", app, "messages"])
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let (mut accepted, headers): (Accepted, _) = self.call(request, "send").await?;
        accepted.replayed = headers
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        Ok(accepted)
    }

    /// `GET /v1/messages/{id}`: counts, and the page of results after `cursor`.
    pub async fn message(
        &self,
        id: &str,
        cursor: Option<&Value>,
        limit: u32,
    ) -> anyhow::Result<MessageStatus> {
        let mut request = self
            .request(Method::GET, &["v1", "messages", id])
            .query(&[("limit", limit)]);
        match cursor {
            Some(Value::String(c)) => request = request.query(&[("cursor", c)]),
            Some(c) => request = request.query(&[("cursor", c.to_string())]),
            None => {}
        }
        Ok(self.call(request, &format!("message {id}")).await?.0)
    }
}

impl GatewayClient {
    /// A page of `GET /v1/apps/{app}/events` after `after`, optionally of one type.
    pub async fn events(
        &self,
        app: &str,
        after: i64,
        kind: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<EventPage> {
        let mut request = self
            .request(Method::GET, &["v1", "apps", app, "events"])
            .query(&[("after", after.to_string()), ("limit", limit.to_string())]);
        if let Some(kind) = kind {
            request = request.query(&[("type", kind)]);
        }
        Ok(self.call(request, "events").await?.0)
    }
}

/// A page of `GET /v1/apps/{app}/events`.
#[derive(Debug, Clone, Deserialize)]
pub struct EventPage {
    /// The events.
    pub events: Vec<Value>,
    /// Pass as `after` for the next page.
    pub next_cursor: i64,
}

/// The API error behind `e`, if the gateway answered with one.
pub fn api_error(e: &anyhow::Error) -> Option<&ApiError> {
    e.downcast_ref::<ApiError>()
}
