//! `GET /v1/apps/{app}`: the app's channels (credentials by reference and fingerprint only)
//! and how each channel's worker is doing.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Caller;
use super::error::ApiResult;
use super::{AppState, views};

/// `GET /v1/apps/{app}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let records = state.store.list_channels(&app.name).await?;
    let channels: Vec<_> = records
        .iter()
        .map(|c| {
            let status = state
                .channels
                .get(&app.name, &c.name)
                .map(|e| e.status.view())
                .unwrap_or_default();
            json!({
                "name": c.name,
                "kind": c.kind,
                "default": c.is_default,
                "endpoint": c.endpoint,
                "credential": {"ref": c.credential_ref, "fingerprint": c.credential_fingerprint},
                "status": {
                    "attempted": status.attempted,
                    "completed": status.completed,
                    "last_error": status.last_error.as_ref().map(|(_, e)| e),
                    "last_error_at": status.last_error.as_ref().map(|(t, _)| views::rfc3339(*t)),
                    "paused_until": status.paused_until.map(views::rfc3339),
                },
            })
        })
        .collect();
    Ok(Json(json!({
        "name": app.name,
        "default_channel": app.default_channel,
        "c2dm_flow": {
            "channel": app.c2dm_flow.channel,
            "registration_id_max_len": app.c2dm_flow.registration_id_len.end(),
        },
        "channels": channels,
    }))
    .into_response())
}
