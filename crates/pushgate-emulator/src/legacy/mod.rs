//! The GCM/FCM legacy HTTP endpoints: `POST /gcm/send` and `POST /fcm/send`
//! (docs/protocols.md, "Legacy HTTP" and "Emulator checklist: legacy HTTP").
//!
//! Order of work for every request: method (405), API key (401), body form by
//! `Content-Type` (JSON, or plain text when it is anything else), whole-request checks (400),
//! request-level faults, then one outcome per recipient.

mod auth;
pub(crate) mod json;
mod plain;
pub(crate) mod send;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use pushgate_proto::legacy::limits::{
    MAX_DATA_BYTES, MAX_TOPIC_DATA_BYTES, TOPIC_PREFIX, data_payload_bytes,
};
use pushgate_proto::legacy::{
    ErrorCode, GroupResponse, MulticastResponse, RecipientResult, TopicResponse,
};
use serde_json::Value;

use self::json::{BadRequest, JsonSend, JsonTarget, Ttl};
use self::send::{RecipientOutcome, Sender, message_error};
use crate::activity::ActivityEntry;
use crate::devices::{Payload, Via};
use crate::faults::RequestFault;
use crate::respond::{json, json_bytes, set_retry_after, text};
use crate::state::{EmulatorState, Inner};
use crate::time::now_ms;
use crate::topics::TopicTarget;

/// Which of the two legacy URLs was called; they differ only in their 401 pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/gcm/send` (GCM, 2012–2018).
    Gcm,
    /// `/fcm/send` (FCM legacy, 2016–2024).
    Fcm,
}

impl Endpoint {
    /// The request path.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Gcm => "/gcm/send",
            Endpoint::Fcm => "/fcm/send",
        }
    }
}

/// The legacy routes, to be merged into the emulator's router.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route(Endpoint::Gcm.path(), any(gcm_send))
        .route(Endpoint::Fcm.path(), any(fcm_send))
}

async fn gcm_send(
    State(state): State<EmulatorState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, Endpoint::Gcm, &method, &headers, &body).await
}

async fn fcm_send(
    State(state): State<EmulatorState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, Endpoint::Fcm, &method, &headers, &body).await
}

/// A processed request, before its delay and its activity-log entry.
struct Handled {
    response: Response,
    recipients: usize,
    kind: &'static str,
    note: Option<String>,
    delay: Option<Duration>,
}

impl Handled {
    fn new(response: Response, kind: &'static str) -> Self {
        Self {
            response,
            recipients: 0,
            kind,
            note: None,
            delay: None,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

async fn handle(
    state: &EmulatorState,
    endpoint: Endpoint,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let inner = state.get();
    let handled = process(inner, endpoint, method, headers, body);
    if let Some(delay) = handled.delay {
        tokio::time::sleep(delay).await;
    }
    inner.stats.request();
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path: endpoint.path(),
        status: handled.response.status().as_u16(),
        recipients: handled.recipients,
        kind: handled.kind,
        note: handled.note,
    });
    handled.response
}

fn process(
    state: &Inner,
    endpoint: Endpoint,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Handled {
    if method != Method::POST {
        return Handled::new(auth::method_not_allowed(method), "legacy")
            .note(format!("method {method}"));
    }
    let sender = match auth::authenticate(&state.senders, endpoint, headers) {
        Ok(sender) => sender,
        Err(response) => return Handled::new(response, "legacy").note("unauthorized"),
    };
    if is_json(headers) {
        json_send(state, endpoint, &sender, body)
    } else {
        plain::send(state, endpoint, &sender, body)
    }
}

/// `application/json` (any parameters) means JSON; anything else, or nothing, plain text.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The 400 answer for a refused request.
fn bad_request(bad: BadRequest, kind: &'static str) -> Handled {
    let status = bad.status();
    let (response, note) = match bad {
        BadRequest::Text(body) => {
            let note = body.trim_end().to_string();
            (text(status, body), note)
        }
        BadRequest::InvalidParameters => (
            json(status, &serde_json::json!({"error": "InvalidParameters"})),
            "InvalidParameters".to_string(),
        ),
    };
    Handled::new(response, kind).note(note)
}

/// The answer for a request-level fault with a status: plain text, maybe `Retry-After`.
fn fault_response(fault: &RequestFault, status: StatusCode, kind: &'static str) -> Handled {
    let body = match &fault.error {
        Some(code) => format!("{code}\n"),
        None => format!("{}\n", status.canonical_reason().unwrap_or("Error")),
    };
    let mut response = text(status, body);
    set_retry_after(&mut response, fault.retry_after.as_deref());
    let mut handled = Handled::new(response, kind).note("injected fault");
    handled.delay = fault.delay;
    handled
}

/// Activity kind of a JSON send to tokens (topics, conditions and groups have their own).
const JSON_KIND: &str = "legacy-json";

/// A JSON send from parse to answer: parse, request-level faults, then delivery.
fn json_send(state: &Inner, endpoint: Endpoint, sender_id: &Arc<str>, body: &[u8]) -> Handled {
    let send = match json::parse(body) {
        Ok(send) => send,
        Err(bad) => return bad_request(bad, JSON_KIND),
    };
    let recipients = send.target.recipients();
    let mut handled = match request_fault(state, endpoint, &send) {
        FaultEffect::Answer(fault_answer) => fault_answer,
        FaultEffect::Delay(fault_delay) => {
            let mut handled = deliver_json(state, endpoint, sender_id, send, recipients);
            handled.delay = fault_delay.max(handled.delay);
            handled
        }
    };
    handled.recipients = recipients;
    handled
}

/// What a request-level fault does to a JSON send.
enum FaultEffect {
    /// A fault with a status: this is the whole answer.
    Answer(Handled),
    /// No fault, or one that only delays the normal answer.
    Delay(Option<Duration>),
}

/// Takes the request-level fault aimed at this send, if any.
fn request_fault(state: &Inner, endpoint: Endpoint, send: &JsonSend) -> FaultEffect {
    let Some(fault) = state
        .faults
        .take_request(endpoint.path(), |t| send.target.names(t))
    else {
        return FaultEffect::Delay(None);
    };
    match fault.status {
        Some(status) => FaultEffect::Answer(fault_response(&fault, status, JSON_KIND)),
        None => FaultEffect::Delay(fault.delay),
    }
}

/// Sends a parsed message to its target (a device group, tokens, a topic or a condition)
/// and answers with the results; `recipients` is for the log.
fn deliver_json(
    state: &Inner,
    endpoint: Endpoint,
    sender_id: &Arc<str>,
    mut send: JsonSend,
    recipients: usize,
) -> Handled {
    let error = json_message_error(&send);
    let payload = Arc::new(json_payload(sender_id, &mut send));
    let target = std::mem::replace(&mut send.target, JsonTarget::Missing);
    let mut sender = Sender::new(
        state,
        sender_id,
        endpoint.path(),
        Via::LegacyJson,
        payload,
        error,
        send.restricted_package_name.as_deref(),
        send.dry_run,
    );
    if let JsonTarget::To(key) = &target
        && let Some(members) = state.groups.members(sender_id, key)
    {
        let mut handled = group_send(state, &mut sender, &members);
        handled.delay = sender.delay;
        return handled;
    }
    let (kind, body) = target_body(state, &mut sender, target);
    state.stats.delivered(sender.delivered);
    tracing::debug!(
        sender = %sender_id,
        recipients,
        delivered = sender.delivered,
        dry_run = send.dry_run,
        "legacy JSON send"
    );
    let mut response = json_bytes(StatusCode::OK, body);
    set_retry_after(&mut response, sender.retry_after.as_deref());
    let mut handled = Handled::new(response, kind);
    handled.delay = sender.delay;
    handled
}

/// The message-level error of a JSON send, if any; topics and conditions allow more data.
fn json_message_error(send: &JsonSend) -> Option<ErrorCode> {
    let limit = match send.target {
        JsonTarget::Topic(_) | JsonTarget::Condition(_) => MAX_TOPIC_DATA_BYTES,
        _ => MAX_DATA_BYTES,
    };
    let ttl_ok = send.time_to_live != Ttl::Invalid;
    match &send.data {
        Some(data) => message_error(
            data.keys().map(String::as_str),
            data_payload_bytes(data),
            limit,
            ttl_ok,
        ),
        None => message_error(std::iter::empty(), 0, limit, ttl_ok),
    }
}

/// The activity kind and the answer body for a token, token list, topic or condition.
fn target_body(
    state: &Inner,
    sender: &mut Sender<'_>,
    target: JsonTarget,
) -> (&'static str, Vec<u8>) {
    match target {
        JsonTarget::Missing => (
            JSON_KIND,
            multicast_body(
                state,
                vec![RecipientResult::failed(&ErrorCode::MissingRegistration)],
            ),
        ),
        JsonTarget::Tokens(ids) => {
            let results = ids.iter().map(|t| recipient_result(sender.send(t)));
            (JSON_KIND, multicast_body(state, results.collect()))
        }
        JsonTarget::To(token) => (
            JSON_KIND,
            multicast_body(state, vec![recipient_result(sender.send(&token))]),
        ),
        JsonTarget::Topic(name) => {
            let to = format!("{TOPIC_PREFIX}{name}");
            (
                "legacy-topic",
                topic_body(state, sender, &to, &TopicTarget::Topic(&name)),
            )
        }
        JsonTarget::Condition(condition) => {
            let target = TopicTarget::Condition(&condition);
            (
                "legacy-condition",
                topic_body(state, sender, &condition, &target),
            )
        }
    }
}

/// The device-side content of a JSON send; `data` is moved out, values as delivered.
pub(crate) fn json_payload(sender_id: &Arc<str>, send: &mut JsonSend) -> Payload {
    let data = send
        .data
        .take()
        .map(|map| {
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => {
                        let delivered =
                            pushgate_proto::legacy::limits::data_value_as_delivered(&other);
                        (k, delivered)
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Payload {
        from: Some(sender_id.clone()),
        data,
        notification: send.notification.take(),
        collapse_key: send.collapse_key.take(),
        priority: send.priority.take(),
        time_to_live: match send.time_to_live {
            Ttl::Valid(s) => Some(s),
            _ => None,
        },
        delay_while_idle: send.delay_while_idle,
        content_available: send.content_available,
        mutable_content: send.mutable_content,
        ..Default::default()
    }
    .seal()
}

fn recipient_result(outcome: RecipientOutcome) -> RecipientResult {
    match outcome {
        RecipientOutcome::Delivered {
            message_id,
            canonical,
        } => RecipientResult::delivered(message_id, canonical.map(|c| c.to_string())),
        RecipientOutcome::Failed(code) => RecipientResult::failed(&code),
    }
}

/// Shape (a): counts derived from the results by the proto type.
fn multicast_body(state: &Inner, results: Vec<RecipientResult>) -> Vec<u8> {
    let response = MulticastResponse::from_results(state.ids.large_id(), results);
    serde_json::to_vec(&response).unwrap_or_default()
}

/// Shape (c): a send to a device group (notification key) delivers to every member and
/// answers counts and the members it missed; when no member got it, HTTP 503 without JSON
/// (docs/protocols.md, "Legacy HTTP: device-group responses").
fn group_send(state: &Inner, sender: &mut Sender<'_>, members: &[String]) -> Handled {
    const KIND: &str = "legacy-group";
    let mut response = GroupResponse {
        success: 0,
        failure: 0,
        failed_registration_ids: Vec::new(),
    };
    for member in members {
        match sender.send(member) {
            RecipientOutcome::Delivered { .. } => response.success += 1,
            RecipientOutcome::Failed(_) => {
                response.failure += 1;
                response.failed_registration_ids.push(member.clone());
            }
        }
    }
    state.stats.delivered(sender.delivered);
    if response.success == 0 {
        let mut answer = text(StatusCode::SERVICE_UNAVAILABLE, "");
        set_retry_after(&mut answer, sender.retry_after.as_deref());
        return Handled::new(answer, KIND).note("no group member reached");
    }
    let body = serde_json::to_vec(&response).unwrap_or_default();
    let mut answer = json_bytes(StatusCode::OK, body);
    set_retry_after(&mut answer, sender.retry_after.as_deref());
    Handled::new(answer, KIND)
}

/// Shape (b): a numeric message id, or the error; on success the message is fanned out to
/// every subscribed device.
fn topic_body(
    state: &Inner,
    sender: &mut Sender<'_>,
    recipient: &str,
    target: &TopicTarget<'_>,
) -> Vec<u8> {
    let error = sender
        .injected(recipient)
        .or_else(|| sender.message_error().cloned());
    if error.is_none() {
        sender.fan_out(target);
    }
    let response = TopicResponse {
        message_id: error.is_none().then(|| state.ids.large_id()),
        error: error.map(|e| e.as_str().to_string()),
    };
    serde_json::to_vec(&response).unwrap_or_default()
}
