//! The control API under `/emulator/`: senders, virtual devices, faults, activity, stats,
//! reset. JSON in and out; bad input gets a 400 `{"error": "..."}` that names the field,
//! unknown tokens a 404.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use pushgate_proto::RetryAfter;
use pushgate_proto::legacy::ErrorCode;
use pushgate_proto::token::short_token;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value, json};

use crate::activity::ActivityView;
use crate::confirm::{self, Call};
use crate::devices::{Device, DeviceKind, DeviceSpec, StoredMessage};
use crate::faults::FaultSpec;
use crate::respond;
use crate::senders::SenderError;
use crate::state::EmulatorState;
use crate::time::rfc3339_millis;
use crate::{DEFAULT_PACKAGE, DEFAULT_SENDER_ID};

/// Most devices one `POST /emulator/devices` may create.
const MAX_DEVICES_PER_CALL: u64 = 100_000;
/// Longest injectable delay (ten minutes).
const MAX_DELAY_MS: u64 = 600_000;
/// Duplicate pairs listed by `GET /emulator/stats`.
const TOP_DUPLICATES: usize = 10;

/// Why a control call was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    /// Bad input; the text names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No such token.
    #[error("{0}")]
    NotFound(String),
    /// Clashes with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The emulator could not do its part.
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        respond::json(status, &json!({ "error": self.to_string() }))
    }
}

type ControlResult = Result<Response, ControlError>;

/// The control routes, to be nested under `/emulator`.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/senders", post(add_sender))
        .route("/devices", post(create_devices))
        .route("/devices/{token}", get(device))
        .route("/devices/{token}/messages", get(messages))
        .route("/devices/{token}/uninstall", post(uninstall))
        .route("/devices/{token}/rotate", post(rotate))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/activity", get(activity))
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .merge(crate::ccs::control::routes())
}

async fn add_sender(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let mut fields = Fields::parse(&body, &["sender_id", "api_key"])?;
    let sender_id = fields.required_string("sender_id")?;
    let api_key = fields.required_string("api_key")?;
    state
        .get()
        .senders
        .add(&sender_id, &api_key)
        .map_err(|e| match e {
            SenderError::KeyTaken(_) => ControlError::Conflict(e.to_string()),
        })?;
    tracing::info!(%sender_id, "sender registered");
    Ok(respond::json(
        StatusCode::CREATED,
        &json!({"sender_id": sender_id, "api_key": api_key}),
    ))
}

/// One created device in the answer of `POST /emulator/devices`.
#[derive(Serialize)]
struct CreatedDevice<'a> {
    token: &'a str,
    sender_id: &'a str,
    package: &'a str,
    state: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    registration: Option<Registration<'a>>,
}

/// How a `confirm_via` device's registration call went.
#[derive(Serialize)]
struct Registration<'a> {
    device_id: &'a str,
    /// The gateway's HTTP status; null if there was no answer.
    registration_status: Option<u16>,
    /// Why there was no answer.
    registration_error: Option<&'a str>,
}

impl<'a> Registration<'a> {
    fn new(device_id: &'a str, call: &'a Call) -> Self {
        Self {
            device_id,
            registration_status: call.status(),
            registration_error: call.transport_error(),
        }
    }
}

/// `confirm_via` and `device_ids` of `POST /emulator/devices`, checked.
struct ConfirmPlan {
    base: Arc<str>,
    device_ids: Option<Vec<String>>,
}

impl ConfirmPlan {
    /// Reads both fields and `count` (which defaults to the number of `device_ids`, else 1).
    fn read(fields: &mut Fields) -> Result<(Option<Self>, u64), ControlError> {
        let base = fields
            .string("confirm_via")?
            .map(|raw| confirm::parse_base(&raw))
            .transpose()
            .map_err(ControlError::BadRequest)?;
        let device_ids = fields.strings("device_ids")?;
        let count = fields.integer("count", 1, MAX_DEVICES_PER_CALL)?;
        let count = count.unwrap_or(device_ids.as_ref().map_or(1, |ids| ids.len() as u64));
        match (base, device_ids) {
            (None, Some(_)) => Err(ControlError::BadRequest(
                "device_ids: only allowed together with confirm_via".into(),
            )),
            (None, None) => Ok((None, count)),
            (Some(base), device_ids) => {
                if let Some(ids) = &device_ids {
                    confirm::check_device_ids(ids, count).map_err(ControlError::BadRequest)?;
                }
                Ok((Some(Self { base, device_ids }), count))
            }
        }
    }
}

async fn create_devices(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let mut fields = Fields::parse(
        &body,
        &[
            "sender_id",
            "project_id",
            "package",
            "count",
            "rate_limit_per_minute",
            "protocol",
            "confirm_via",
            "device_ids",
        ],
    )?;
    let kind = match fields.string("protocol")?.as_deref() {
        None | Some("gcm" | "fcm") => DeviceKind::Gcm,
        Some("c2dm") => DeviceKind::C2dm,
        Some(other) => {
            return Err(ControlError::BadRequest(format!(
                "protocol: {other:?} is not gcm, fcm or c2dm"
            )));
        }
    };
    let inner = state.get();
    let sender_id = match (fields.string("sender_id")?, fields.string("project_id")?) {
        (Some(_), Some(_)) => {
            return Err(ControlError::BadRequest(
                "project_id: give sender_id or project_id, not both".into(),
            ));
        }
        // An FCM v1 project: its devices belong to the project's number.
        (None, Some(project)) => inner
            .projects
            .get(&project)
            .map(|p| p.number.clone())
            .ok_or_else(|| {
                ControlError::BadRequest(format!(
                    "project_id: unknown project {project:?} (create it with POST /emulator/projects)"
                ))
            })?,
        (sender_name, None) => {
            let sender_name = sender_name.unwrap_or_else(|| DEFAULT_SENDER_ID.to_string());
            inner.senders.get(&sender_name).ok_or_else(|| {
                ControlError::BadRequest(format!(
                    "sender_id: unknown sender {sender_name:?} (register it with POST /emulator/senders)"
                ))
            })?
        }
    };
    let package = fields
        .string("package")?
        .unwrap_or_else(|| DEFAULT_PACKAGE.to_string());
    if package.is_empty() {
        return Err(ControlError::BadRequest(
            "package: must not be empty".into(),
        ));
    }
    let (plan, count) = ConfirmPlan::read(&mut fields)?;
    let rate_limit_per_minute = fields
        .integer("rate_limit_per_minute", 0, u64::from(u32::MAX))?
        .map(|n| n as u32);
    let spec = DeviceSpec {
        kind,
        sender_id,
        package: Arc::from(package),
        rate_limit_per_minute,
    };
    let client = match &plan {
        Some(_) => Some(inner.confirm.client().map_err(ControlError::Internal)?),
        None => None,
    };
    let created = inner.devices.create(&spec, count as usize, |i, number| {
        let (plan, client) = (plan.as_ref()?, client.as_ref()?);
        let device_id = match plan.device_ids.as_ref().and_then(|ids| ids.get(i)) {
            Some(id) => Arc::from(id.as_str()),
            None => Arc::from(inner.confirm.device_id(number)),
        };
        Some(inner.confirm.link(client, device_id, plan.base.clone()))
    });
    tracing::info!(count, sender_id = %spec.sender_id, package = %spec.package, "devices created");
    // Registration calls finish before the answer, so the caller knows they are done.
    let links: Vec<_> = created
        .iter()
        .filter_map(|(token, device)| Some((device.confirm.clone()?, token.clone())))
        .collect();
    let calls = if links.is_empty() {
        Vec::new()
    } else {
        confirm::register_all(links).await
    };
    let mut calls = calls.iter();
    let devices: Vec<CreatedDevice<'_>> = created
        .iter()
        .map(|(token, device)| CreatedDevice {
            token,
            sender_id: &device.sender_id,
            package: &device.package,
            state: "active",
            registration: device.confirm.as_ref().and_then(|link| {
                calls
                    .next()
                    .map(|call| Registration::new(&link.device_id, call))
            }),
        })
        .collect();
    Ok(respond::json(
        StatusCode::CREATED,
        &json!({ "devices": devices }),
    ))
}

fn find(state: &EmulatorState, token: &str) -> Result<Arc<Device>, ControlError> {
    state
        .get()
        .devices
        .lookup(token)
        .map(|(_, device)| device)
        .ok_or_else(|| ControlError::NotFound(format!("token: no device has token {token:?}")))
}

fn state_name(device: &Device) -> &'static str {
    if device.is_uninstalled() {
        "uninstalled"
    } else {
        "active"
    }
}

async fn device(State(state): State<EmulatorState>, Path(token): Path<String>) -> ControlResult {
    let device = find(&state, &token)?;
    let view = device.view();
    let tokens: Vec<String> = device.tokens().iter().map(|t| t.to_string()).collect();
    Ok(respond::json(
        StatusCode::OK,
        &json!({
            "token": token,
            "state": state_name(&device),
            "sender_id": &*device.sender_id,
            "package": &*device.package,
            "canonical_token": device.canonical_if_rotated(&token).map(|t| t.to_string()),
            "tokens": tokens,
            "rate_limit_per_minute": device.rate_limit_per_minute,
            "received": view.received,
            "inbox_len": view.inbox_len,
            "dropped": view.dropped,
            "registration": device.confirm.as_ref().map(|link| link.view()),
        }),
    ))
}

/// A stored message as the control API shows it.
struct MessageView<'a>(&'a StoredMessage);

impl Serialize for MessageView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let p = &*m.payload;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("message_id", &m.message_id.to_string())?;
        map.serialize_entry("token", &*m.token)?;
        map.serialize_entry("via", m.via.as_str())?;
        map.serialize_entry("from", &p.from.as_deref())?;
        map.serialize_entry("received_at", &rfc3339_millis(m.received_at_ms))?;
        map.serialize_entry("received_at_ms", &m.received_at_ms)?;
        map.serialize_entry("collapse_key", &p.collapse_key)?;
        map.serialize_entry("priority", &p.priority)?;
        map.serialize_entry("time_to_live", &p.time_to_live)?;
        map.serialize_entry("delay_while_idle", &p.delay_while_idle)?;
        map.serialize_entry("content_available", &p.content_available)?;
        map.serialize_entry("mutable_content", &p.mutable_content)?;
        map.serialize_entry("notification", &p.notification)?;
        map.serialize_entry("data", &DataView(&p.data))?;
        if let Some(serde_json::Value::Object(v1)) = p.v1.as_deref() {
            for (name, block) in v1 {
                map.serialize_entry(name, block)?;
            }
        }
        map.end()
    }
}

/// `data` pairs as a JSON object.
struct DataView<'a>(&'a [(String, String)]);

impl Serialize for DataView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

async fn messages(State(state): State<EmulatorState>, Path(token): Path<String>) -> ControlResult {
    let device = find(&state, &token)?;
    let messages = device.messages();
    let views: Vec<MessageView<'_>> = messages.iter().map(MessageView).collect();
    Ok(respond::json(StatusCode::OK, &json!({ "messages": views })))
}

async fn uninstall(State(state): State<EmulatorState>, Path(token): Path<String>) -> ControlResult {
    find(&state, &token)?;
    state.get().devices.uninstall(&token);
    tracing::info!(token = %short_token(&token), "device uninstalled");
    Ok(respond::json(
        StatusCode::OK,
        &json!({"token": token, "state": "uninstalled"}),
    ))
}

/// Rotates the token. A `confirm_via` device (not uninstalled) then registers its new token
/// with the gateway, and the answer waits for that call and carries its outcome
/// (`device_id`, `registration_status`, `registration_error`).
async fn rotate(State(state): State<EmulatorState>, Path(token): Path<String>) -> ControlResult {
    let device = find(&state, &token)?;
    let new =
        state.get().devices.rotate(&token).ok_or_else(|| {
            ControlError::NotFound(format!("token: no device has token {token:?}"))
        })?;
    tracing::info!(old = %short_token(&token), new = %short_token(&new), "device token rotated");
    let mut answer = json!({"token": &*new});
    if let Some(link) = device.confirm.as_ref().filter(|_| !device.is_uninstalled()) {
        let call = confirm::register_one(link.clone(), new.clone()).await;
        let registration =
            serde_json::to_value(Registration::new(&link.device_id, &call)).unwrap_or_default();
        if let (Value::Object(answer), Value::Object(registration)) = (&mut answer, registration) {
            answer.extend(registration);
        }
    }
    Ok(respond::json(StatusCode::OK, &answer))
}

async fn add_fault(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let mut fields = Fields::parse(
        &body,
        &[
            "token",
            "path",
            "status",
            "error",
            "retry_after",
            "delay_ms",
            "count",
        ],
    )?;
    let token = fields.string("token")?;
    let path = fields.string("path")?;
    if let Some(p) = &path
        && !p.starts_with('/')
    {
        return Err(ControlError::BadRequest(format!(
            "path: must start with '/', got {p:?}"
        )));
    }
    let status = fields
        .integer("status", 400, 599)?
        .map(|s| StatusCode::from_u16(s as u16))
        .transpose()
        .map_err(|e| ControlError::BadRequest(format!("status: {e}")))?;
    let error = match fields.string("error")? {
        Some(e) if e.is_empty() => {
            return Err(ControlError::BadRequest("error: must not be empty".into()));
        }
        other => other.map(|e| ErrorCode::parse(&e)),
    };
    let retry_after = fields.retry_after("retry_after")?;
    let delay = fields
        .integer("delay_ms", 0, MAX_DELAY_MS)?
        .map(Duration::from_millis);
    let count = fields
        .integer("count", 1, u64::from(u32::MAX))?
        .ok_or_else(|| ControlError::BadRequest("count: required, an integer ≥ 1".into()))?;
    if status.is_none() && error.is_none() && delay.is_none() {
        return Err(ControlError::BadRequest(
            "status: give at least one of status, error or delay_ms".into(),
        ));
    }
    let spec = FaultSpec {
        token,
        path,
        status,
        error,
        retry_after,
        delay,
        count: count as u32,
    };
    tracing::info!(
        status = ?spec.status.map(|s| s.as_u16()),
        error = ?spec.error.as_ref().map(|e| e.as_str().to_string()),
        token = ?spec.token.as_deref().map(short_token),
        count,
        "fault injected"
    );
    let id = state.get().faults.add(spec);
    Ok(respond::json(StatusCode::CREATED, &json!({ "id": id })))
}

async fn list_faults(State(state): State<EmulatorState>) -> Response {
    respond::json(
        StatusCode::OK,
        &json!({ "faults": state.get().faults.views() }),
    )
}

async fn clear_faults(State(state): State<EmulatorState>) -> Response {
    state.get().faults.clear();
    tracing::info!("faults cleared");
    respond::json(StatusCode::OK, &json!({ "cleared": true }))
}

async fn activity(State(state): State<EmulatorState>) -> Response {
    let requests: Vec<ActivityView> = state
        .get()
        .activity
        .snapshot()
        .into_iter()
        .map(ActivityView::from)
        .collect();
    respond::json(StatusCode::OK, &json!({ "requests": requests }))
}

async fn stats(State(state): State<EmulatorState>) -> Response {
    let inner = state.get();
    let mut view = serde_json::to_value(inner.stats.view(TOP_DUPLICATES)).unwrap_or_default();
    inner.ccs.write_stats(&mut view);
    inner.c2dm.write_stats(&mut view);
    inner.confirm.write_stats(&mut view);
    respond::json(StatusCode::OK, &view)
}

async fn reset(State(state): State<EmulatorState>) -> Response {
    state.reset();
    tracing::info!("emulator reset");
    respond::json(StatusCode::OK, &json!({ "reset": true }))
}

/// The fields of a control request body, read one by one with errors that name them.
struct Fields(Map<String, Value>);

impl Fields {
    /// Parses `body` (empty means `{}`) and rejects fields not in `allowed`.
    fn parse(body: &[u8], allowed: &[&str]) -> Result<Self, ControlError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ControlError::BadRequest(format!("body: not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ControlError::BadRequest(
                "body: must be a JSON object".into(),
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ControlError::BadRequest(format!(
                "{unknown}: unknown field (expected one of {})",
                allowed.join(", ")
            )));
        }
        Ok(Self(map))
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    fn string(&mut self, name: &str) -> Result<Option<String>, ControlError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ControlError::BadRequest(format!(
                "{name}: must be a string, got {other}"
            ))),
        }
    }

    fn required_string(&mut self, name: &str) -> Result<String, ControlError> {
        match self.string(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ControlError::BadRequest(format!(
                "{name}: required, a non-empty string"
            ))),
        }
    }

    /// A list of strings.
    fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, ControlError> {
        let not_strings = |got: &Value| {
            ControlError::BadRequest(format!("{name}: must be an array of strings, got {got}"))
        };
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(not_strings(&other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(not_strings(&other)),
        }
    }

    /// An integer in `min..=max`.
    fn integer(&mut self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ControlError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ControlError::BadRequest(format!(
                    "{name}: must be an integer between {min} and {max}, got {n}"
                ))),
            },
            Some(other) => Err(ControlError::BadRequest(format!(
                "{name}: must be an integer between {min} and {max}, got {other}"
            ))),
        }
    }

    /// A `Retry-After` value: delta-seconds (string or number) or an HTTP-date string.
    fn retry_after(&mut self, name: &str) -> Result<Option<String>, ControlError> {
        let raw = match self.take(name) {
            None => return Ok(None),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(other) => {
                return Err(ControlError::BadRequest(format!(
                    "{name}: must be delta-seconds or an HTTP-date string, got {other}"
                )));
            }
        };
        match RetryAfter::parse(&raw) {
            Some(_) => Ok(Some(raw)),
            None => Err(ControlError::BadRequest(format!(
                "{name}: {raw:?} is neither delta-seconds nor an HTTP-date"
            ))),
        }
    }
}
