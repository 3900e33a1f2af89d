//! C2DM control routes under `/emulator/c2dm/`: accounts, quotas, token rotation.
//!
//! * `POST /emulator/c2dm/accounts {"email","password","sender_id"?}` → 201
//!   `{"email","sender_id"}` (replaces an account of the same e-mail).
//! * `PUT /emulator/c2dm/quotas {"per_sender":N|null,"per_device":M|null}` → 200: messages
//!   per one-minute window (counting restarts on every PUT and reset).
//! * `POST /emulator/c2dm/rotate-auth {"email"?}` → 200: the account's next `/c2dm/send`
//!   answer carries `Update-Client-Auth` (default account when no e-mail).

use std::sync::Arc;

use axum::extract::State;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::fields::json_body;
use super::{ControlError, ControlResult};
use crate::respond;
use crate::state::EmulatorState;
use crate::{DEFAULT_C2DM_EMAIL, DEFAULT_SENDER_ID};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountSpec {
    email: String,
    password: String,
    #[serde(default)]
    sender_id: Option<String>,
}

/// Adds (or replaces) a C2DM role account.
pub(super) async fn add_account(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let spec: AccountSpec = json_body(&body, "invalid account")?;
    if spec.email.trim().is_empty() || spec.password.is_empty() {
        return Err(ControlError::BadRequest(
            "email and password must not be empty".into(),
        ));
    }
    let inner = state.get();
    let sender_name = spec
        .sender_id
        .unwrap_or_else(|| DEFAULT_SENDER_ID.to_string());
    let Some(sender_id): Option<Arc<str>> = inner.senders.get(&sender_name) else {
        return Err(ControlError::BadRequest(format!(
            "sender_id: unknown sender {sender_name:?} (register it with POST /emulator/senders)"
        )));
    };
    inner
        .c2dm
        .accounts
        .add(&spec.email, &spec.password, sender_id.clone());
    tracing::info!(email = %spec.email, sender_id = %sender_id, "C2DM account registered");
    Ok(respond::json(
        StatusCode::CREATED,
        &json!({ "email": spec.email.to_ascii_lowercase(), "sender_id": &*sender_id }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaSpec {
    #[serde(default)]
    per_sender: Option<u32>,
    #[serde(default)]
    per_device: Option<u32>,
}

/// Sets the per-sender and per-device quotas.
pub(super) async fn set_quotas(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let spec: QuotaSpec = json_body(&body, "invalid quotas")?;
    state
        .get()
        .c2dm
        .quotas
        .set(spec.per_sender, spec.per_device);
    Ok(respond::json(
        StatusCode::OK,
        &json!({ "per_sender": spec.per_sender, "per_device": spec.per_device, "window_seconds": 60 }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateSpec {
    #[serde(default)]
    email: Option<String>,
}

/// Rotates an account's auth token, announced on its next send.
pub(super) async fn rotate_auth(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
    let spec: RotateSpec = if body.is_empty() {
        RotateSpec::default()
    } else {
        json_body(&body, "invalid rotation")?
    };
    let email = spec
        .email
        .unwrap_or_else(|| DEFAULT_C2DM_EMAIL.to_string())
        .to_ascii_lowercase();
    if !state.get().c2dm.accounts.rotate(&email) {
        return Err(ControlError::NotFound(format!(
            "email: no C2DM account {email:?}"
        )));
    }
    Ok(respond::json(
        StatusCode::OK,
        &json!({ "email": email, "rotated": true }),
    ))
}
