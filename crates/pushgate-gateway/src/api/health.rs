//! Health and readiness for orchestrators and people: `GET /healthz` (the process answers),
//! `GET /readyz` (the database answers with the expected schema; each channel's last error
//! and pause are shown), `GET /metrics` (Prometheus text), and the webhook's state.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::{AppState, views};

/// `GET /healthz`.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when the database is usable, 503 when not; channels are reported
/// either way (a failing provider does not make the gateway unready: it keeps accepting).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.store.schema_version().await {
        Ok((applied, latest)) if applied == latest => {
            json!({"ok": true, "schema_version": applied})
        }
        Ok((applied, latest)) => json!({
            "ok": false,
            "error": format!("schema at version {applied}, expected {latest}"),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            json!({"ok": false, "error": "the database does not answer"})
        }
    };
    let mut channels: Vec<_> = state
        .channels
        .iter()
        .map(|(app, name, entry)| {
            let s = entry.status.view();
            json!({
                "app": app,
                "channel": name,
                "kind": entry.channel.kind().as_str(),
                "last_error": s.last_error.as_ref().map(|(_, e)| e),
                "last_error_at": s.last_error.as_ref().map(|(t, _)| views::rfc3339(*t)),
                "paused_until": s.paused_until.map(views::rfc3339),
                "attempted": s.attempted,
                "completed": s.completed,
            })
        })
        .collect();
    channels.sort_by_key(|c| (c["app"].to_string(), c["channel"].to_string()));
    let ok = database["ok"] == true;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ok, "database": database, "channels": channels})),
    )
        .into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state
        .metrics
        .render(state.store.as_ref(), &state.webhook_apps)
        .await
    {
        Ok(text) => (
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::internal("cannot read the metrics", e).into_response(),
    }
}

/// `GET /v1/apps/{app}/webhook`: where the app's webhook stands.
pub async fn webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let Some(url) = state.webhook_urls.get(&app.name) else {
        return Err(ApiError::not_found(format!(
            "app {:?} has no webhook",
            app.name
        )));
    };
    let cursor = state.store.webhook_state(&app.name).await?;
    let body = match cursor {
        None => json!({"url": url, "started": false}),
        Some(c) => {
            let backlog = state
                .store
                .count_events_after(&app.name, c.delivered_seq)
                .await?;
            json!({
                "url": url,
                "started": true,
                "delivered_through": c.delivered_seq,
                "backlog": backlog,
                "failed_attempts": c.attempts,
                "last_error": c.last_error,
                "last_attempt_at": c.last_attempt_at.map(views::rfc3339),
                "next_attempt_at": views::rfc3339(c.next_attempt_at),
            })
        }
    };
    Ok(Json(body).into_response())
}
