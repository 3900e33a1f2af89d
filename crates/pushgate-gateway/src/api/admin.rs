//! `POST /v1/admin/reload`: reads the configuration again and applies it, as SIGHUP does, for
//! operators who cannot send a signal (a container, another host). Takes an admin key
//! (`admin_keys`), the same keys that open the console to every app; an app's API key is
//! refused.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::AppState;
use super::auth::bearer;
use super::error::{ApiError, ApiResult};
use super::views::ErrorBody;
use crate::reload::{ReloadError, ReloadReport};

/// `POST /v1/admin/reload`.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "admin", operation_id = "reload_config",
    responses(
        (status = 200, body = ReloadReport, description = "Applied; what changed, and what needs a restart"),
        (status = 401, body = ErrorBody, description = "No key, or not a key of this gateway"),
        (status = 403, body = ErrorBody, description = "An app's API key, not an admin key"),
        (status = 409, body = ErrorBody, description = "Started without a configuration file"),
        (status = 422, body = ErrorBody, description = "The configuration does not validate; the running one stays"),
        (status = 503, body = ErrorBody, description = "The database could not record it, or the gateway is stopping")),
    security(("bearer" = [])))]
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    admin_only(&state, &headers)?;
    let Some(reloader) = &state.reloader else {
        return Err(refused(ReloadError::NoSource));
    };
    let report = reloader
        .reload("POST /v1/admin/reload")
        .await
        .map_err(refused)?;
    Ok(Json(report).into_response())
}

/// Lets an admin key through: 401 without a key or with an unknown one, 403 with an app's
/// API key.
fn admin_only(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = bearer(headers, "an admin key")?;
    if state.console.is_admin_key(key) {
        return Ok(());
    }
    match state.apps.app_of_key(key) {
        Ok(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this is an app's API key; reloading takes one of admin_keys",
        )),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Err(e),
        Err(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the key is not one of admin_keys",
        )),
    }
}

/// The answer of a refused reload (the running configuration stays).
fn refused(e: ReloadError) -> ApiError {
    let (status, code) = match &e {
        ReloadError::NoSource => (StatusCode::CONFLICT, "no_configuration_file"),
        ReloadError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_configuration"),
        ReloadError::Store(_) | ReloadError::Stopping => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    ApiError::new(status, code, e.to_string())
}
