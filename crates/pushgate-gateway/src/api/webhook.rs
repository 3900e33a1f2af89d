//! `GET /v1/apps/{app}/webhook`: where an app's webhook stands (cursor, backlog, last error),
//! for the operator who wonders why events do not arrive.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::views::{ErrorBody, WebhookView, rfc3339};

/// `GET /v1/apps/{app}/webhook`: where the app's webhook stands.
#[utoipa::path(get, path = "/v1/apps/{app}/webhook", tag = "events", operation_id = "get_webhook",
    params(("app" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such app, or no webhook", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn state(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let Some(url) = &app.webhook_url else {
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
