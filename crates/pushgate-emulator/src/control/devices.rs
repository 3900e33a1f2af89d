//! Virtual devices: `POST /emulator/devices` creates them (GCM/FCM or C2DM, for a sender
//! or a v1 project, optionally running the `confirm_via` registration flow against a
//! gateway); `GET /emulator/devices/{token}` shows one, `…/messages` its inbox,
//! `POST …/uninstall` and `POST …/rotate` change it.

use std::sync::Arc;

use axum::extract::{Path, State};
use bytes::Bytes;
use http::StatusCode;
use pushgate_proto::token::short_token;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use super::fields::Fields;
use super::{ControlError, ControlResult};
use crate::confirm::{self, Call};
use crate::devices::{Device, DeviceKind, DeviceSpec, StoredMessage};
use crate::respond;
use crate::state::{EmulatorState, Inner};
use crate::time::rfc3339_millis;
use crate::{DEFAULT_PACKAGE, DEFAULT_SENDER_ID};

/// Most devices one `POST /emulator/devices` may create.
const MAX_DEVICES_PER_CALL: u64 = 100_000;

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

/// A device just created, with its token.
type NewDevice = (Arc<str>, Arc<Device>);

/// The fields `POST /emulator/devices` accepts.
const CREATE_FIELDS: [&str; 8] = [
    "sender_id",
    "project_id",
    "package",
    "count",
    "rate_limit_per_minute",
    "protocol",
    "confirm_via",
    "device_ids",
];

/// `POST /emulator/devices`: creates `count` devices; `confirm_via` devices register with
/// the gateway before the answer, so the caller knows those calls are done.
pub(super) async fn create(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let mut fields = Fields::parse(&body, &CREATE_FIELDS)?;
    let inner = state.get();
    let (spec, plan, count) = read_request(&mut fields, inner)?;
    let created = create_linked(inner, &spec, plan.as_ref(), count)?;
    tracing::info!(count, sender_id = %spec.sender_id, package = %spec.package, "devices created");
    let calls = register(&created).await;
    Ok(respond::json(
        StatusCode::CREATED,
        &json!({ "devices": created_views(&created, &calls) }),
    ))
}

/// Reads the body in field order (so the first bad field is the one reported): the device
/// spec, the `confirm_via` plan if any, and how many devices to create.
fn read_request(
    fields: &mut Fields,
    inner: &Inner,
) -> Result<(DeviceSpec, Option<ConfirmPlan>, u64), ControlError> {
    let kind = read_kind(fields)?;
    let sender_id = read_sender(fields, inner)?;
    let package = fields
        .string("package")?
        .unwrap_or_else(|| DEFAULT_PACKAGE.to_string());
    if package.is_empty() {
        return Err(ControlError::BadRequest(
            "package: must not be empty".into(),
        ));
    }
    let (plan, count) = ConfirmPlan::read(fields)?;
    let rate_limit_per_minute = fields
        .integer("rate_limit_per_minute", 0, u64::from(u32::MAX))?
        .map(|n| n as u32);
    let spec = DeviceSpec {
        kind,
        sender_id,
        package: Arc::from(package),
        rate_limit_per_minute,
    };
    Ok((spec, plan, count))
}

/// `protocol`: `gcm` or `fcm` (the default) make GCM/FCM tokens, `c2dm` C2DM ids.
fn read_kind(fields: &mut Fields) -> Result<DeviceKind, ControlError> {
    match fields.string("protocol")?.as_deref() {
        None | Some("gcm" | "fcm") => Ok(DeviceKind::Gcm),
        Some("c2dm") => Ok(DeviceKind::C2dm),
        Some(other) => Err(ControlError::BadRequest(format!(
            "protocol: {other:?} is not gcm, fcm or c2dm"
        ))),
    }
}

/// The sender the devices belong to: `sender_id`, or the number of `project_id`, or the
/// default sender.
fn read_sender(fields: &mut Fields, inner: &Inner) -> Result<Arc<str>, ControlError> {
    match (fields.string("sender_id")?, fields.string("project_id")?) {
        (Some(_), Some(_)) => Err(ControlError::BadRequest(
            "project_id: give sender_id or project_id, not both".into(),
        )),
        // An FCM v1 project: its devices belong to the project's number.
        (None, Some(project)) => inner
            .projects
            .get(&project)
            .map(|p| p.number.clone())
            .ok_or_else(|| {
                ControlError::BadRequest(format!(
                    "project_id: unknown project {project:?} (create it with POST /emulator/projects)"
                ))
            }),
        (sender_name, None) => {
            let sender_name = sender_name.unwrap_or_else(|| DEFAULT_SENDER_ID.to_string());
            inner.senders.get(&sender_name).ok_or_else(|| {
                ControlError::BadRequest(format!(
                    "sender_id: unknown sender {sender_name:?} (register it with POST /emulator/senders)"
                ))
            })
        }
    }
}

/// Creates the devices, giving each one its registration flow when there is a plan.
fn create_linked(
    inner: &Inner,
    spec: &DeviceSpec,
    plan: Option<&ConfirmPlan>,
    count: u64,
) -> Result<Vec<NewDevice>, ControlError> {
    let client = match plan {
        Some(_) => Some(inner.confirm.client().map_err(ControlError::Internal)?),
        None => None,
    };
    Ok(inner.devices.create(spec, count as usize, |i, number| {
        let (plan, client) = (plan?, client.as_ref()?);
        let device_id = match plan.device_ids.as_ref().and_then(|ids| ids.get(i)) {
            Some(id) => Arc::from(id.as_str()),
            None => Arc::from(inner.confirm.device_id(number)),
        };
        Some(inner.confirm.link(client, device_id, plan.base.clone()))
    }))
}

/// Runs the registration call of every `confirm_via` device among `created`, in order.
async fn register(created: &[NewDevice]) -> Vec<Call> {
    let links: Vec<_> = created
        .iter()
        .filter_map(|(token, device)| Some((device.confirm.clone()?, token.clone())))
        .collect();
    if links.is_empty() {
        Vec::new()
    } else {
        confirm::register_all(links).await
    }
}

/// The answer's device list; `calls` are the registration calls of the linked devices, in
/// order.
fn created_views<'a>(created: &'a [NewDevice], calls: &'a [Call]) -> Vec<CreatedDevice<'a>> {
    let mut calls = calls.iter();
    created
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
        .collect()
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

/// `GET /emulator/devices/{token}`: the device's state, tokens and inbox counts.
pub(super) async fn show(
    State(state): State<EmulatorState>,
    Path(token): Path<String>,
) -> ControlResult {
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

/// `GET /emulator/devices/{token}/messages`: the messages in its inbox.
pub(super) async fn messages(
    State(state): State<EmulatorState>,
    Path(token): Path<String>,
) -> ControlResult {
    let device = find(&state, &token)?;
    let messages = device.messages();
    let views: Vec<MessageView<'_>> = messages.iter().map(MessageView).collect();
    Ok(respond::json(StatusCode::OK, &json!({ "messages": views })))
}

/// `POST /emulator/devices/{token}/uninstall`: the app is gone; sends now fail.
pub(super) async fn uninstall(
    State(state): State<EmulatorState>,
    Path(token): Path<String>,
) -> ControlResult {
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
pub(super) async fn rotate(
    State(state): State<EmulatorState>,
    Path(token): Path<String>,
) -> ControlResult {
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
