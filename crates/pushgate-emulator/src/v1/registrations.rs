//! Topic subscriptions through the v1 registrations endpoints the Admin SDKs use
//! (firebase-admin 7.x): `POST /v1/projects/{p}/registrations/{token}/topicSubscriptions
//! ?topic_name=X` and `DELETE .../topicSubscriptions/{topic}[?allow_missing=true]`, both
//! answering `{}`. Auth and errors follow the v1 send endpoint (google.rpc.Status bodies;
//! an unknown token carries the FcmError `UNREGISTERED`).
//!
//! A DELETE of a subscription that does not exist also answers `{}` (as with
//! `allow_missing=true`): the emulator does not model the strict form.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use pushgate_proto::legacy::limits::{TOPIC_PREFIX, is_valid_topic_name};
use pushgate_proto::v1::FcmErrorCode;
use serde_json::json;

use super::{bearer, errors};
use crate::activity::ActivityEntry;
use crate::oauth::BearerCheck;
use crate::recipient::{self, Refusal};
use crate::respond;
use crate::state::{EmulatorState, Inner};
use crate::time::now_ms;

/// The path as the activity log shows it.
const PATH: &str = "/v1/projects/*/registrations/*/topicSubscriptions";

/// The registrations routes, to be merged into the v1 router.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route(
            "/v1/projects/{project}/registrations/{token}/topicSubscriptions",
            post(subscribe),
        )
        .route(
            "/v1/projects/{project}/registrations/{token}/topicSubscriptions/{topic}",
            axum::routing::delete(unsubscribe),
        )
}

async fn subscribe(
    State(state): State<EmulatorState>,
    Path((project, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = state.get();
    let topic = query.get("topic_name").map(String::as_str).unwrap_or("");
    let response = change(inner, &headers, &project, &token, topic, true);
    record(inner, &response);
    response
}

async fn unsubscribe(
    State(state): State<EmulatorState>,
    Path((project, token, topic)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let inner = state.get();
    let response = change(inner, &headers, &project, &token, &topic, false);
    record(inner, &response);
    response
}

fn record(inner: &Inner, response: &Response) {
    inner.stats.request();
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path: PATH,
        status: response.status().as_u16(),
        recipients: 1,
        kind: "fcm-v1-registrations",
        note: None,
    });
}

fn change(
    inner: &Inner,
    headers: &HeaderMap,
    project_name: &str,
    token: &str,
    topic: &str,
    add: bool,
) -> Response {
    let Some(access_token) = bearer(headers) else {
        return errors::credentials_missing();
    };
    let granted_for = match inner.oauth.check(access_token) {
        BearerCheck::Valid(project_id) => project_id,
        BearerCheck::Expired => return errors::invalid_credentials(true),
        BearerCheck::Unknown => return errors::invalid_credentials(false),
    };
    let Some(project) = inner.projects.get(project_name) else {
        return errors::project_not_found(project_name);
    };
    if *granted_for != *project.id {
        return errors::permission_denied(project_name);
    }
    let topic = topic.strip_prefix(TOPIC_PREFIX).unwrap_or(topic);
    if !is_valid_topic_name(topic) {
        return errors::invalid_payload(
            &format!("Invalid topic name {topic:?}: must match [a-zA-Z0-9-_.~%]+"),
            Some("topic_name"),
        );
    }
    let device = match recipient::gcm_device(&inner.devices, &project.number, token) {
        Ok(d) => d,
        Err(Refusal::Unknown | Refusal::Uninstalled | Refusal::WrongPackage) => {
            return errors::fcm(FcmErrorCode::Unregistered);
        }
        Err(Refusal::WrongKind | Refusal::WrongSender) => {
            return errors::fcm(FcmErrorCode::SenderIdMismatch);
        }
        Err(Refusal::Malformed) => return errors::fcm(FcmErrorCode::InvalidArgument),
    };
    if add {
        if inner.topics.subscribe(&device, topic).is_err() {
            return errors::invalid_message(
                "Too many topics: an app instance may subscribe to at most 2000 topics",
                "topic_name",
            );
        }
    } else {
        inner.topics.unsubscribe(&device, topic);
    }
    respond::json(StatusCode::OK, &json!({}))
}
