//! Fault injection: `POST /emulator/faults` adds one (status, error code, `Retry-After`,
//! delay; for one token and/or path; `count` times), `GET` lists them, `DELETE` clears them.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use pushgate_proto::legacy::ErrorCode;
use pushgate_proto::token::short_token;
use serde_json::json;

use super::fields::Fields;
use super::{ControlError, ControlResult};
use crate::faults::FaultSpec;
use crate::respond;
use crate::state::EmulatorState;

/// Longest injectable delay (ten minutes).
const MAX_DELAY_MS: u64 = 600_000;

/// Adds a fault; answers its id.
pub(super) async fn add(State(state): State<EmulatorState>, body: Bytes) -> ControlResult {
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

/// Lists the faults still armed.
pub(super) async fn list(State(state): State<EmulatorState>) -> Response {
    respond::json(
        StatusCode::OK,
        &json!({ "faults": state.get().faults.views() }),
    )
}

/// Removes every fault.
pub(super) async fn clear(State(state): State<EmulatorState>) -> Response {
    state.get().faults.clear();
    tracing::info!("faults cleared");
    respond::json(StatusCode::OK, &json!({ "cleared": true }))
}
