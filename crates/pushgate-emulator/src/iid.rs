//! The Instance ID server API (`iid.googleapis.com`, docs/protocols.md, "Instance ID"): batch topic
//! (un)subscription, single subscription, and instance info.
//!
//! Auth is the legacy `Authorization: key=<api key>`, or `Authorization: Bearer <emulator
//! access token>` together with `access_token_auth: true` (what the Admin SDKs send).
//! Whole-request errors are `{"error": "<code>"}` with an HTTP status; per-token results
//! are `{}` or `{"error": "NOT_FOUND" | "INVALID_ARGUMENT" | "TOO_MANY_TOPICS"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use pushgate_proto::iid::{
    BatchRequest, BatchResponse, BatchResult, InstanceInfo, MAX_BATCH_TOKENS, Relations,
    TopicRelation,
};
use pushgate_proto::legacy::limits::{TOPIC_PREFIX, is_valid_topic_name};
use serde_json::json;

use crate::activity::ActivityEntry;
use crate::oauth::BearerCheck;
use crate::recipient::{self, Refusal};
use crate::respond;
use crate::state::{EmulatorState, Inner};
use crate::time::now_ms;
use crate::topics::SubscribeError;

/// Activity kind of every IID request.
const KIND: &str = "iid";

/// The IID routes, to be merged into the emulator's router.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/iid/v1:batchAdd", post(batch_add))
        .route("/iid/v1:batchRemove", post(batch_remove))
        .route("/iid/info/{token}", get(info))
        .route(
            "/iid/v1/{token}/rel/topics/{topic}",
            post(subscribe_one).delete(unsubscribe_one),
        )
}

/// A whole-request IID error: `{"error": code}` (and a readable `reason` when useful).
fn error(status: StatusCode, code: &str, reason: Option<&str>) -> Response {
    let body = match reason {
        Some(reason) => json!({ "error": code, "reason": reason }),
        None => json!({ "error": code }),
    };
    respond::json(status, &body)
}

fn record(inner: &Inner, path: &'static str, status: StatusCode, recipients: usize) {
    inner.stats.request();
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path,
        status: status.as_u16(),
        recipients,
        kind: KIND,
        note: None,
    });
}

/// The sender id the request authenticates as, or the 401 answer.
#[allow(clippy::result_large_err)]
pub(crate) fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<Arc<str>, Response> {
    let unauthorized = || error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    if let Some(key) = value.strip_prefix("key=") {
        return inner
            .senders
            .sender_for_key(key.trim())
            .ok_or_else(unauthorized);
    }
    let (scheme, bearer) = value.split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized());
    }
    let token_auth = headers
        .get("access_token_auth")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !token_auth {
        return Err(unauthorized());
    }
    match inner.oauth.check(bearer.trim()) {
        BearerCheck::Valid(project_id) => inner
            .projects
            .get(&project_id)
            .map(|p| p.number.clone())
            .ok_or_else(unauthorized),
        BearerCheck::Expired | BearerCheck::Unknown => Err(unauthorized()),
    }
}

#[derive(Clone, Copy)]
enum BatchOp {
    Add,
    Remove,
}

async fn batch_add(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    batch(
        state.get(),
        &headers,
        &body,
        BatchOp::Add,
        "/iid/v1:batchAdd",
    )
}

async fn batch_remove(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    batch(
        state.get(),
        &headers,
        &body,
        BatchOp::Remove,
        "/iid/v1:batchRemove",
    )
}

fn batch(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
    op: BatchOp,
    path: &'static str,
) -> Response {
    let (response, recipients) = batch_response(inner, headers, body, op);
    record(inner, path, response.status(), recipients);
    response
}

fn batch_response(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
    op: BatchOp,
) -> (Response, usize) {
    let sender_id = match authenticate(inner, headers) {
        Ok(s) => s,
        Err(response) => return (response, 0),
    };
    let request: BatchRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("request body is not a batch request: {e}");
            return (
                error(StatusCode::BAD_REQUEST, "InvalidArgument", Some(&reason)),
                0,
            );
        }
    };
    if let Err(e) = request.validate() {
        let reason = if request.registration_tokens.len() > MAX_BATCH_TOKENS {
            format!("{e} (at most {MAX_BATCH_TOKENS} registration tokens per request)")
        } else {
            e.to_string()
        };
        return (
            error(StatusCode::BAD_REQUEST, "InvalidArgument", Some(&reason)),
            0,
        );
    }
    let Ok(topic) = request.topic() else {
        return (error(StatusCode::BAD_REQUEST, "InvalidArgument", None), 0);
    };
    let results = request
        .registration_tokens
        .iter()
        .map(|t| BatchResult {
            error: batch_one(inner, &sender_id, t, topic, op)
                .err()
                .map(str::to_string),
        })
        .collect::<Vec<_>>();
    let n = results.len();
    (respond::json(StatusCode::OK, &BatchResponse { results }), n)
}

fn batch_one(
    inner: &Inner,
    sender_id: &str,
    token: &str,
    topic: &str,
    op: BatchOp,
) -> Result<(), &'static str> {
    let device =
        recipient::gcm_device(&inner.devices, sender_id, token).map_err(
            |refusal| match refusal {
                Refusal::Malformed | Refusal::WrongKind | Refusal::WrongSender => {
                    "INVALID_ARGUMENT"
                }
                Refusal::Unknown | Refusal::Uninstalled | Refusal::WrongPackage => "NOT_FOUND",
            },
        )?;
    match op {
        BatchOp::Add => inner
            .topics
            .subscribe(&device, topic)
            .map_err(|SubscribeError::TooManyTopics| "TOO_MANY_TOPICS"),
        BatchOp::Remove => {
            inner.topics.unsubscribe(&device, topic);
            Ok(())
        }
    }
}

async fn info(
    State(state): State<EmulatorState>,
    Path(token): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = state.get();
    let response = info_response(inner, &token, &query, &headers);
    record(inner, "/iid/info/*", response.status(), 1);
    response
}

/// The answer for a token the sender cannot use: `InvalidToken` for a token that is not
/// one, `NotFound` for the rest.
fn token_error(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Malformed | Refusal::WrongKind | Refusal::WrongSender => {
            error(StatusCode::BAD_REQUEST, "InvalidToken", None)
        }
        Refusal::Unknown | Refusal::Uninstalled | Refusal::WrongPackage => {
            error(StatusCode::NOT_FOUND, "NotFound", None)
        }
    }
}

fn info_response(
    inner: &Inner,
    token: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let sender_id = match authenticate(inner, headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let device = match recipient::gcm_device(&inner.devices, &sender_id, token) {
        Ok(d) => d,
        // Another sender's (or a C2DM) token is not found for this one (no information leak).
        Err(Refusal::WrongKind | Refusal::WrongSender) => {
            return token_error(Refusal::Unknown);
        }
        Err(refusal) => return token_error(refusal),
    };
    let details = query
        .get("details")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let rel = details
        .then(|| inner.topics.topics_of(&device))
        .filter(|topics| !topics.is_empty())
        .map(|topics| Relations {
            topics: topics
                .into_iter()
                .map(|(name, add_date)| (name, TopicRelation { add_date }))
                .collect(),
        });
    let info = InstanceInfo {
        application: device.package.to_string(),
        authorized_entity: device.sender_id.to_string(),
        platform: "ANDROID".to_string(),
        application_version: None,
        rel,
    };
    respond::json(StatusCode::OK, &info)
}

async fn subscribe_one(
    State(state): State<EmulatorState>,
    Path((token, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let inner = state.get();
    let response = single(inner, &headers, &token, &topic, BatchOp::Add);
    record(inner, "/iid/v1/*/rel/topics/*", response.status(), 1);
    response
}

async fn unsubscribe_one(
    State(state): State<EmulatorState>,
    Path((token, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let inner = state.get();
    let response = single(inner, &headers, &token, &topic, BatchOp::Remove);
    record(inner, "/iid/v1/*/rel/topics/*", response.status(), 1);
    response
}

fn single(inner: &Inner, headers: &HeaderMap, token: &str, topic: &str, op: BatchOp) -> Response {
    let sender_id = match authenticate(inner, headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let topic = topic.strip_prefix(TOPIC_PREFIX).unwrap_or(topic);
    if !is_valid_topic_name(topic) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            Some("topic name must match [a-zA-Z0-9-_.~%]+"),
        );
    }
    let device = match recipient::gcm_device(&inner.devices, &sender_id, token) {
        Ok(d) => d,
        Err(refusal) => return token_error(refusal),
    };
    match op {
        BatchOp::Add => {
            if inner.topics.subscribe(&device, topic).is_err() {
                return error(StatusCode::BAD_REQUEST, "TOO_MANY_TOPICS", None);
            }
        }
        BatchOp::Remove => {
            inner.topics.unsubscribe(&device, topic);
        }
    }
    respond::json(StatusCode::OK, &json!({}))
}
