//! Health and readiness for orchestrators and people: `GET /healthz` (the process answers),
//! `GET /readyz` (the database answers with the expected schema; each channel's last error
//! and pause are shown), `GET /metrics` (Prometheus text), and the webhook's state.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::views::{
    DatabaseView, ErrorBody, HealthView, ReadyChannel, ReadyView, WebhookView, rfc3339,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = HealthView)))]
pub async fn healthz() -> Response {
    Json(HealthView {
        status: "ok".into(),
    })
    .into_response()
}

/// `GET /readyz`: 200 when the database is usable, 503 when not; channels are reported
/// either way (a failing provider does not make the gateway unready: it keeps accepting).
#[utoipa::path(get, path = "/readyz", tag = "operations",
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
#[utoipa::path(get, path = "/metrics", tag = "operations",
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

/// `GET /v1/apps/{app}/webhook`: where the app's webhook stands.
#[utoipa::path(get, path = "/v1/apps/{app}/webhook", tag = "events",
    params(("app" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such app, or no webhook", body = ErrorBody)),
    security(("bearer" = [])))]
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
        None => WebhookView {
            url: url.clone(),
            started: false,
            delivered_through: None,
            backlog: None,
            failed_attempts: None,
            last_error: None,
            last_attempt_at: None,
            next_attempt_at: None,
        },
        Some(c) => WebhookView {
            url: url.clone(),
            started: true,
            delivered_through: Some(c.delivered_seq),
            backlog: Some(
                state
                    .store
                    .count_events_after(&app.name, c.delivered_seq)
                    .await?,
            ),
            failed_attempts: Some(c.attempts),
            last_error: c.last_error,
            last_attempt_at: c.last_attempt_at.map(rfc3339),
            next_attempt_at: Some(rfc3339(c.next_attempt_at)),
        },
    };
    Ok(Json(body).into_response())
}
