//! Device groups (notification keys, docs/protocols.md, "Device groups"): `POST /gcm/notification`
//! and
//! `/fcm/notification` (create, add, remove) and `GET ...?notification_key_name=N`.
//!
//! A group belongs to one sender; its name is unique per sender; it holds at most
//! [`MAX_GROUP_MEMBERS`] tokens and disappears when its last member is removed. Keys look
//! like `APA91b…` (146 characters) without the `<iid>:` head of device tokens, so a key is
//! never a well-formed device token. Sending to a key is handled by the legacy and v1 send
//! paths through [`Groups::members`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use pushgate_proto::group::{
    GroupError, GroupOperation, GroupRequest, MAX_GROUP_MEMBERS, NotificationKeyResponse,
    PROJECT_ID_HEADER,
};
use rand::Rng;

use crate::activity::ActivityEntry;
use crate::iid::authenticate;
use crate::recipient;
use crate::respond;
use crate::state::{EmulatorState, Inner};
use crate::time::now_ms;

/// Length of the random part after `APA91b`.
const KEY_BODY_LEN: usize = 140;
/// The base64url alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a group operation was refused; the text is the `error` of the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GroupFailure {
    /// Create with a name already taken for this sender.
    #[error("notification_key already exists")]
    AlreadyExists,
    /// Add/remove/get of a key or name this sender does not have.
    #[error("notification_key not found")]
    NotFound,
    /// Add/remove with a name that is not the key's.
    #[error("notification_key_name does not match notification_key")]
    NameMismatch,
    /// The group would have more than [`MAX_GROUP_MEMBERS`] members.
    #[error("too many registration ids: a notification key holds at most {MAX_GROUP_MEMBERS}")]
    TooManyMembers,
    /// A token is not an active device token of this sender.
    #[error("registration_ids[{0}] is not a valid registration id of this sender")]
    InvalidMember(usize),
}

#[derive(Debug)]
struct Group {
    sender_id: Arc<str>,
    name: String,
    members: Vec<String>,
}

#[derive(Debug, Default)]
struct Store {
    by_key: HashMap<Arc<str>, Group>,
    by_name: HashMap<(Arc<str>, String), Arc<str>>,
}

/// Every device group; one lock, since management calls are rare.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    store: Mutex<Store>,
}

impl Groups {
    /// The members of `key` when it is a group of `sender_id`.
    pub(crate) fn members(&self, sender_id: &str, key: &str) -> Option<Vec<String>> {
        let store = self.store.lock();
        let group = store.by_key.get(key)?;
        (*group.sender_id == *sender_id).then(|| group.members.clone())
    }

    /// The key of group `name` of `sender_id`.
    fn key_of(&self, sender_id: &Arc<str>, name: &str) -> Option<Arc<str>> {
        let store = self.store.lock();
        store
            .by_name
            .get(&(sender_id.clone(), name.to_string()))
            .cloned()
    }

    fn apply(&self, sender_id: &Arc<str>, request: GroupRequest) -> Result<Arc<str>, GroupFailure> {
        let mut store = self.store.lock();
        match request.operation {
            GroupOperation::Create => {
                let name = request.notification_key_name.unwrap_or_default();
                let name_key = (sender_id.clone(), name.clone());
                if store.by_name.contains_key(&name_key) {
                    return Err(GroupFailure::AlreadyExists);
                }
                let mut members = Vec::new();
                for id in request.registration_ids {
                    if !members.contains(&id) {
                        members.push(id);
                    }
                }
                let key = loop {
                    let key = new_key();
                    if !store.by_key.contains_key(&key) {
                        break key;
                    }
                };
                store.by_name.insert(name_key, key.clone());
                store.by_key.insert(
                    key.clone(),
                    Group {
                        sender_id: sender_id.clone(),
                        name,
                        members,
                    },
                );
                Ok(key)
            }
            GroupOperation::Add | GroupOperation::Remove => {
                let key_text = request.notification_key.unwrap_or_default();
                let Some((key, group)) = store.by_key.get_key_value(key_text.as_str()) else {
                    return Err(GroupFailure::NotFound);
                };
                if *group.sender_id != **sender_id {
                    return Err(GroupFailure::NotFound);
                }
                if let Some(name) = &request.notification_key_name
                    && *name != group.name
                {
                    return Err(GroupFailure::NameMismatch);
                }
                let key = key.clone();
                let Some(group) = store.by_key.get_mut(&key) else {
                    return Err(GroupFailure::NotFound);
                };
                if request.operation == GroupOperation::Add {
                    let mut members = group.members.clone();
                    for id in request.registration_ids {
                        if !members.contains(&id) {
                            members.push(id);
                        }
                    }
                    if members.len() > MAX_GROUP_MEMBERS {
                        return Err(GroupFailure::TooManyMembers);
                    }
                    group.members = members;
                } else {
                    group
                        .members
                        .retain(|m| !request.registration_ids.contains(m));
                    if group.members.is_empty() {
                        let name = group.name.clone();
                        store.by_key.remove(&key);
                        store.by_name.remove(&(sender_id.clone(), name));
                    }
                }
                Ok(key)
            }
        }
    }

    /// Forgets every group.
    pub(crate) fn reset(&self) {
        let mut store = self.store.lock();
        store.by_key.clear();
        store.by_name.clear();
    }
}

/// `APA91b` and 140 random base64url characters.
fn new_key() -> Arc<str> {
    let mut rng = rand::rng();
    let mut key = String::with_capacity(6 + KEY_BODY_LEN);
    key.push_str("APA91b");
    let mut left = KEY_BODY_LEN;
    while left > 0 {
        let mut bits = rng.next_u64();
        for _ in 0..left.min(10) {
            key.push(char::from(ALPHABET[(bits & 63) as usize]));
            bits >>= 6;
        }
        left = left.saturating_sub(10);
    }
    Arc::from(key)
}

/// The group management routes, to be merged into the emulator's router.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/gcm/notification", post(manage).get(retrieve))
        .route("/fcm/notification", post(manage).get(retrieve))
}

fn failure(status: StatusCode, error: impl Into<String>) -> Response {
    respond::json(
        status,
        &GroupError {
            error: error.into(),
        },
    )
}

fn record(inner: &Inner, response: &Response, recipients: usize) {
    inner.stats.request();
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path: "/gcm/notification",
        status: response.status().as_u16(),
        recipients,
        kind: "device-group",
        note: None,
    });
}

/// The sender the request authenticates as, after the `project_id` header check.
#[allow(clippy::result_large_err)]
fn sender_of(inner: &Inner, headers: &HeaderMap) -> Result<Arc<str>, Response> {
    let sender_id = authenticate(inner, headers)?;
    let project_id = headers
        .get(PROJECT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if project_id.is_empty() {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            "project_id header is required",
        ));
    }
    if project_id != &*sender_id {
        return Err(failure(
            StatusCode::UNAUTHORIZED,
            "project_id does not match the sender of the key",
        ));
    }
    Ok(sender_id)
}

async fn manage(State(state): State<EmulatorState>, headers: HeaderMap, body: Bytes) -> Response {
    let inner = state.get();
    let (response, n) = manage_response(inner, &headers, &body);
    record(inner, &response, n);
    response
}

fn manage_response(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> (Response, usize) {
    let sender_id = match sender_of(inner, headers) {
        Ok(s) => s,
        Err(response) => return (response, 0),
    };
    let request: GroupRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return (
                failure(
                    StatusCode::BAD_REQUEST,
                    format!("invalid request body: {e}"),
                ),
                0,
            );
        }
    };
    let n = request.registration_ids.len();
    if let Err(e) = request.validate() {
        let status = if n > MAX_GROUP_MEMBERS {
            // Same text as a group growing past the cap.
            return (
                failure(
                    StatusCode::BAD_REQUEST,
                    GroupFailure::TooManyMembers.to_string(),
                ),
                n,
            );
        } else {
            StatusCode::BAD_REQUEST
        };
        return (failure(status, e.to_string()), n);
    }
    if request.operation != GroupOperation::Remove
        && let Some(i) = request
            .registration_ids
            .iter()
            .position(|t| recipient::gcm_device(&inner.devices, &sender_id, t).is_err())
    {
        return (
            failure(
                StatusCode::BAD_REQUEST,
                GroupFailure::InvalidMember(i).to_string(),
            ),
            n,
        );
    }
    match inner.groups.apply(&sender_id, request) {
        Ok(key) => (
            respond::json(
                StatusCode::OK,
                &NotificationKeyResponse {
                    notification_key: key.to_string(),
                },
            ),
            n,
        ),
        Err(e) => (failure(StatusCode::BAD_REQUEST, e.to_string()), n),
    }
}

async fn retrieve(
    State(state): State<EmulatorState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = state.get();
    let response = match sender_of(inner, &headers) {
        Err(response) => response,
        Ok(sender_id) => match query.get("notification_key_name") {
            None => failure(StatusCode::BAD_REQUEST, "notification_key_name is required"),
            Some(name) => match inner.groups.key_of(&sender_id, name) {
                Some(key) => respond::json(
                    StatusCode::OK,
                    &NotificationKeyResponse {
                        notification_key: key.to_string(),
                    },
                ),
                None => failure(StatusCode::BAD_REQUEST, GroupFailure::NotFound.to_string()),
            },
        },
    };
    record(inner, &response, 0);
    response
}
