//! FCM HTTP v1: `POST /v1/projects/{project}/messages:send` (docs/protocols.md, "FCM HTTP v1" and
//! "Emulator checklist: FCM v1").
//!
//! Order of work: bearer token (401), project (404), token's project (403), body (400),
//! request-level faults, project quota (429), message rules (400), then the target: one
//! token is checked against the virtual devices (shared with the legacy endpoints) and
//! delivered to; a topic or condition is answered with a name and fanned out to the
//! subscribed devices (`crate::topics`).

mod errors;
mod parse;
mod registrations;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, header};
use pushgate_proto::v1::{FAKE_MESSAGE_ID, FcmErrorCode, Message, SendResponse};
use serde_json::{Map, Value};

use crate::activity::ActivityEntry;
use crate::devices::{DeliverResult, DeviceKind, Payload, StoredMessage, Via};
use crate::oauth::{BearerCheck, TOKEN_PATH};
use crate::projects::Project;
use crate::recipient::{self, Expected, Recipient, Refusal};
use crate::respond;
use crate::state::{EmulatorState, Inner};
use crate::time::{now_micros, now_ms};
use crate::topics::{self, TopicTarget};

/// The send path as the activity log shows it.
const SEND_PATH: &str = "/v1/projects/*/messages:send";
/// Activity kind of every v1 send.
const KIND: &str = "fcm-v1";

/// The v1 routes and the OAuth token endpoint, to be merged into the emulator's router.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/v1/projects/{project}/messages:send", post(send))
        .route(TOKEN_PATH, post(crate::oauth::token))
        .merge(registrations::routes())
}

/// A processed request, before its delay and its activity-log entry.
struct Handled {
    response: Response,
    recipients: usize,
    note: Option<String>,
    delay: Option<Duration>,
}

impl Handled {
    fn new(response: Response) -> Self {
        Self {
            response,
            recipients: 0,
            note: None,
            delay: None,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

async fn send(
    State(state): State<EmulatorState>,
    Path(project): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = state.get();
    let handled = process(inner, &project, uri.path(), &headers, &body);
    if let Some(delay) = handled.delay {
        tokio::time::sleep(delay).await;
    }
    inner.stats.request();
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path: SEND_PATH,
        status: handled.response.status().as_u16(),
        recipients: handled.recipients,
        kind: KIND,
        note: handled.note,
    });
    handled.response
}

/// The bearer token of `Authorization: Bearer <t>`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn process(
    state: &Inner,
    project_name: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Handled {
    let Some(token) = bearer(headers) else {
        return Handled::new(errors::credentials_missing()).note("credentials missing");
    };
    let granted_for = match state.oauth.check(token) {
        BearerCheck::Valid(project_id) => project_id,
        BearerCheck::Expired => {
            return Handled::new(errors::invalid_credentials(true)).note("access token expired");
        }
        BearerCheck::Unknown => {
            return Handled::new(errors::invalid_credentials(false)).note("unknown access token");
        }
    };
    let Some(project) = state.projects.get(project_name) else {
        return Handled::new(errors::project_not_found(project_name)).note("unknown project");
    };
    if *granted_for != *project.id {
        return Handled::new(errors::permission_denied(project_name))
            .note("access token of another project");
    }
    let request = match parse::parse(body) {
        Ok(request) => request,
        Err(failure) => {
            let response = errors::invalid_payload(&failure.message, failure.field.as_deref());
            return Handled::new(response).note(failure.message);
        }
    };
    let message = request.message;
    let mut delay = None;
    if let Some(fault) = state
        .faults
        .take_request(path, |t| message.token.as_deref() == Some(t))
    {
        if let Some(status) = fault.status {
            let mut response = errors::fault(status, fault.error.as_ref());
            respond::set_retry_after(&mut response, fault.retry_after.as_deref());
            let mut handled = Handled::new(response).note("injected fault");
            handled.delay = fault.delay;
            handled.recipients = 1;
            return handled;
        }
        delay = fault.delay;
    }
    if let Err(wait) = project.take_quota() {
        let mut handled =
            Handled::new(errors::quota_exceeded(&project.number, wait)).note("project quota");
        handled.delay = delay;
        return handled;
    }
    if let Err(e) = message.validate() {
        let text = if e.field == "message"
            && message.token.is_none()
            && message.topic.is_none()
            && message.condition.is_none()
        {
            "Recipient of the message is not set.".to_string()
        } else {
            e.to_string()
        };
        let mut handled = Handled::new(errors::invalid_message(&text, &e.field)).note(text);
        handled.delay = delay;
        return handled;
    }
    let mut handled = send_message(state, &project, path, message, request.validate_only);
    handled.recipients = 1;
    handled.delay = handled.delay.max(delay);
    handled
}

/// Sends a validated message to its one target.
fn send_message(
    state: &Inner,
    project: &Arc<Project>,
    path: &str,
    message: Message,
    validate_only: bool,
) -> Handled {
    let name_of = |id: &str| SendResponse {
        name: format!("projects/{}/messages/{id}", project.id),
    };
    if let Some(token) = message.token.clone() {
        let payload = Arc::new(payload(project, message));
        if let Some(members) = state.groups.members(&project.number, &token) {
            return send_to_group(
                state,
                project,
                path,
                &members,
                payload,
                validate_only,
                name_of,
            );
        }
        return send_to_token(
            state,
            project,
            path,
            &token,
            payload,
            validate_only,
            name_of,
        );
    }
    // Topic or condition (validate() guarantees exactly one target).
    let topic = message.topic.clone();
    let condition = message.condition.clone();
    let payload = Arc::new(payload(project, message));
    let target = match (&topic, &condition) {
        (Some(topic), _) => Some(TopicTarget::Topic(topic)),
        (None, Some(condition)) => Some(TopicTarget::Condition(condition)),
        (None, None) => None,
    };
    let delivered = target.map_or(0, |target| {
        topics::fan_out(
            state,
            &project.number,
            &target,
            &payload,
            Via::FcmV1,
            validate_only,
        )
    });
    state.stats.delivered(delivered);
    let id = if validate_only {
        FAKE_MESSAGE_ID.to_string()
    } else {
        state.ids.large_id().to_string()
    };
    Handled::new(respond::json(StatusCode::OK, &name_of(&id)))
}

/// A `token` that is a device group's notification key: delivers to every member and
/// answers a name when at least one member got it, else the first member's error.
fn send_to_group(
    state: &Inner,
    project: &Project,
    path: &str,
    members: &[String],
    payload: Arc<Payload>,
    validate_only: bool,
    name_of: impl Fn(&str) -> SendResponse,
) -> Handled {
    let mut first_failure = None;
    let mut reached = 0usize;
    for member in members {
        let handled = send_to_token(
            state,
            project,
            path,
            member,
            payload.clone(),
            validate_only,
            &name_of,
        );
        if handled.response.status() == StatusCode::OK {
            reached += 1;
        } else if first_failure.is_none() {
            first_failure = Some(handled);
        }
    }
    match first_failure {
        Some(failure) if reached == 0 => failure,
        _ => {
            let id = if validate_only {
                FAKE_MESSAGE_ID.to_string()
            } else {
                state.ids.large_id().to_string()
            };
            Handled::new(respond::json(StatusCode::OK, &name_of(&id)))
                .note(format!("device group: {reached}/{} members", members.len()))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn send_to_token(
    state: &Inner,
    project: &Project,
    path: &str,
    token: &str,
    payload: Arc<Payload>,
    validate_only: bool,
    name_of: impl Fn(&str) -> SendResponse,
) -> Handled {
    if let Some(fault) = state.faults.take_recipient(path, token) {
        let mut response = errors::fcm(errors::fcm_code_of(&fault.error));
        respond::set_retry_after(&mut response, fault.retry_after.as_deref());
        let mut handled = Handled::new(response).note("injected fault");
        handled.delay = fault.delay;
        return handled;
    }
    let expected =
        Expected::new(DeviceKind::Gcm, &project.number).restricted_to(restricted_package(&payload));
    let Recipient {
        token: shared_token,
        device,
    } = match recipient::check(&state.devices, expected, token) {
        Ok(found) => found,
        Err(refusal) => return refused(refusal, expected),
    };
    let now_micros = now_micros();
    let now_ms = now_micros / 1000;
    if validate_only {
        if !device.within_rate(now_ms) {
            return Handled::new(errors::device_rate_exceeded()).note("device rate");
        }
        return Handled::new(respond::json(StatusCode::OK, &name_of(FAKE_MESSAGE_ID)));
    }
    let message_id = state.ids.message_id(now_micros);
    let hash = payload.hash;
    let stored = StoredMessage {
        message_id,
        token: shared_token,
        via: Via::FcmV1,
        received_at_ms: now_ms,
        payload,
    };
    match device.deliver(stored, state.inbox_limit) {
        DeliverResult::RateLimited => {
            Handled::new(errors::device_rate_exceeded()).note("device rate")
        }
        DeliverResult::Stored { copies } => {
            state.stats.delivered(1);
            if copies > 1 {
                state.stats.duplicate(&device, hash, copies);
            }
            Handled::new(respond::json(
                StatusCode::OK,
                &name_of(&message_id.to_string()),
            ))
        }
    }
}

/// The v1 answer for a refused token.
fn refused(refusal: Refusal, expected: Expected<'_>) -> Handled {
    use FcmErrorCode::{InvalidArgument, SenderIdMismatch, Unregistered};
    let (code, note) = match refusal {
        Refusal::Malformed => (InvalidArgument, InvalidArgument.as_str()),
        Refusal::WrongKind => (InvalidArgument, "C2DM registration id"),
        Refusal::Unknown | Refusal::Uninstalled => (Unregistered, Unregistered.as_str()),
        Refusal::WrongSender => (SenderIdMismatch, SenderIdMismatch.as_str()),
        Refusal::WrongPackage => {
            let package = expected.package.unwrap_or_default();
            let text = format!(
                "Invalid value at 'message.android.restricted_package_name': {package:?} is not the package of this registration token"
            );
            return Handled::new(errors::invalid_message(
                &text,
                "message.android.restricted_package_name",
            ))
            .note(text);
        }
    };
    Handled::new(errors::fcm(code)).note(note)
}

/// `android.restricted_package_name` as stored in the payload's v1 blocks.
fn restricted_package(payload: &Payload) -> Option<&str> {
    payload
        .v1
        .as_deref()?
        .get("android")?
        .get("restricted_package_name")?
        .as_str()
}

/// What the device receives: data and notification as given, the Android options mapped to
/// the legacy fields, and every v1 block kept as sent.
fn payload(project: &Project, message: Message) -> Payload {
    let android = message.android.as_ref();
    let to_value = |v: Result<Value, serde_json::Error>| v.ok().filter(|v| !v.is_null());
    let mut v1 = Map::new();
    for (name, block) in [
        ("android", to_value(serde_json::to_value(&message.android))),
        ("apns", to_value(serde_json::to_value(&message.apns))),
        ("webpush", to_value(serde_json::to_value(&message.webpush))),
        (
            "fcm_options",
            to_value(serde_json::to_value(&message.fcm_options)),
        ),
    ] {
        if let Some(block) = block {
            v1.insert(name.to_string(), block);
        }
    }
    Payload {
        from: Some(project.number.clone()),
        data: message
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        notification: to_value(serde_json::to_value(&message.notification)),
        collapse_key: android.and_then(|a| a.collapse_key.clone()),
        priority: android
            .and_then(|a| a.priority)
            .and_then(|p| serde_json::to_value(p).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        time_to_live: android
            .and_then(|a| a.ttl)
            .map(|t| u32::try_from(t.whole_seconds()).unwrap_or(u32::MAX)),
        v1: (!v1.is_empty()).then(|| Box::new(Value::Object(v1))),
        ..Default::default()
    }
    .seal()
}
