//! `POST /emulator/senders {"sender_id","api_key"}` → 201: registers a legacy sender and
//! its server key (409 when the key belongs to another sender).

use axum::extract::State;
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::fields::Fields;
use super::{ControlError, ControlResult};
use crate::respond;
use crate::senders::SenderError;
use crate::state::EmulatorState;

/// Registers a sender.
pub(super) async fn add(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
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
