//! `GET /v1/apps/{app}`: the app's channels (credentials by reference and fingerprint only)
//! and how each channel's worker is doing.

use super::AppState;
use super::auth::Caller;
use super::error::ApiResult;
use super::views::{AppView, ChannelView, CredentialView, ErrorBody, FlowView};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

/// `GET /v1/apps/{app}`.
#[utoipa::path(get, path = "/v1/apps/{app}", tag = "apps", operation_id = "get_app",
    params(("app" = String, Path)),
    responses((status = 200, body = AppView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let records = state.store.list_channels(&app.name).await?;
    let channels = records
        .iter()
        .map(|c| ChannelView {
            name: c.name.clone(),
            kind: c.kind.clone(),
            default: c.is_default,
            endpoint: c.endpoint.clone(),
            credential: CredentialView {
                r#ref: c.credential_ref.clone(),
                fingerprint: c.credential_fingerprint.clone(),
            },
            status: state
                .channels
                .get(&app.name, &c.name)
                .map(|e| e.status.view())
                .unwrap_or_default()
                .into(),
        })
        .collect();
    Ok(Json(AppView {
        name: app.name.clone(),
        default_channel: app.default_channel.clone(),
        c2dm_flow: FlowView {
            channel: app.c2dm_flow.channel.clone(),
            registration_id_max_len: *app.c2dm_flow.registration_id_len.end(),
        },
        channels,
    })
    .into_response())
}
