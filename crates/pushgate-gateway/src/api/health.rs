//! Health and readiness for orchestrators and people: `GET /healthz` (the process answers),
//! `GET /readyz` (the database answers with the expected schema; each channel's last error
//! and pause are shown) and `GET /metrics` (Prometheus text).

use super::AppState;
use super::error::ApiError;
use super::views::{DatabaseView, HealthView, ReadyChannel, ReadyView};
use crate::config::MetricsAccess;
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
pub async fn metrics(State(state): State<AppState>, headers: http::HeaderMap) -> Response {
    if let Err(refused) = may_read_metrics(&state.metrics_access, &headers) {
        return refused.into_response();
    }
    match state
        .metrics
        .render(
            state.store.as_ref(),
            &state.apps.webhook_apps(),
            &state.apps.with_channels(),
        )
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

/// Whether this request may read the metrics here: not at all when they have a listener of
/// their own (404), only with the token when one is set (401).
fn may_read_metrics(access: &MetricsAccess, headers: &http::HeaderMap) -> Result<(), ApiError> {
    if access.listen.is_some() {
        return Err(ApiError::not_found(
            "metrics are served on the metrics listener (metrics_listen)",
        ));
    }
    let Some(token) = &access.token else {
        return Ok(());
    };
    let sent = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same_secret(sent, token.expose()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send the metrics token as Authorization: Bearer <token>",
        ))
    }
}

/// Compares two secrets without revealing by timing how much of them matched.
fn same_secret(a: &str, b: &str) -> bool {
    let digest = |s: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(digest(a).as_ref(), digest(b).as_ref())
        .is_ok()
}
