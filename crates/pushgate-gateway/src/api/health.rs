//! Health and readiness for orchestrators and people: `GET /healthz` (the process answers),
//! `GET /readyz` (the database answers with the expected schema; each channel's last error
//! and pause are shown) and `GET /metrics` (Prometheus text).

use super::AppState;
use super::error::ApiError;
use super::views::{DatabaseView, HealthView, ReadyChannel, ReadyView};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "The process answers", body = HealthView)))]
pub async fn healthz() -> Response {
    Json(HealthView {
        status: "ok".into(),
    })
    .into_response()
}

/// `GET /readyz`: 200 when the database is usable, 503 when not; channels are reported
/// either way (a failing provider does not make the gateway unready: it keeps accepting).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, body = ReadyView),
        (status = 503, description = "The database is not usable", body = ReadyView)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.store.schema_version().await {
        Ok((applied, latest)) if applied == latest => DatabaseView {
            ok: true,
            schema_version: Some(applied),
            error: None,
        },
        Ok((applied, latest)) => DatabaseView {
            ok: false,
            schema_version: Some(applied),
            error: Some(format!("schema at version {applied}, expected {latest}")),
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            DatabaseView {
                ok: false,
                schema_version: None,
                error: Some("the database does not answer".into()),
            }
        }
    };
    let mut channels: Vec<ReadyChannel> = state
        .channels
        .iter()
        .map(|(app, name, entry)| ReadyChannel {
            app: app.to_string(),
            channel: name.to_string(),
            kind: entry.channel.kind().as_str().to_string(),
            status: entry.status.view().into(),
        })
        .collect();
    channels.sort_by(|a, b| (&a.app, &a.channel).cmp(&(&b.app, &b.channel)));
    let ready = database.ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(ReadyView {
            ready,
            database,
            channels,
        }),
    )
        .into_response()
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
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
