//! The C2DM-era registration flow, as the django-c2dm module offered it to old clients:
//! `GET /c2dm/registration?device_id=&registration_id=` stores the device unconfirmed and
//! pushes it a confirmation message whose data carries `registration_token`;
//! `GET /c2dm/confirmation?device_id=&registration_token=` confirms it. On the default app
//! at the root, and on any app under `/v1/apps/{app}/c2dm/`. No API key: devices call these.
//! Answers carry no JSON, only the status django-c2dm used: 200, 400 (missing, short or long
//! parameter, wrong token), 500 (internal failure), 501 (any method but GET).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use pushgate_proto::token::short_token;
use pushgate_store::{C2dmFlowRegistration, Confirmation, NewMessage};
use rand::distr::{Alphanumeric, SampleString};
use time::OffsetDateTime;
use tracing::{debug, warn};
use uuid::Uuid;

use super::AppState;
use super::auth::AppInfo;
use crate::c2dm_flow::{REGISTRATION_TOKEN_KEY, REGISTRATION_TOKEN_LEN};
use crate::message::Payload;

/// A refused call: the status django-c2dm used, and a short text for people.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn status(code: StatusCode, why: &str) -> Refusal {
    Refusal(code, why.to_string())
}

/// The named parameter, checked for presence, length in characters (django-c2dm's
/// `CharField(max_length=...)` counted characters, and so does the OpenAPI document's
/// `maxLength`) and control characters (its value becomes a registry device id or token,
/// which never hold any).
fn param<'a>(
    query: &'a HashMap<String, String>,
    name: &str,
    len: RangeInclusive<usize>,
) -> Result<&'a str, Refusal> {
    let value = query
        .get(name)
        .ok_or_else(|| status(StatusCode::BAD_REQUEST, &format!("{name}: missing")))?;
    let chars = value.chars().count();
    if !len.contains(&chars) {
        return Err(status(
            StatusCode::BAD_REQUEST,
            &format!(
                "{name}: must be {} to {} characters, not {chars}",
                len.start(),
                len.end(),
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(status(
            StatusCode::BAD_REQUEST,
            &format!("{name}: must not contain control characters"),
        ));
    }
    Ok(value)
}

/// The query's parameters; a parameter that is not UTF-8 once decoded is a 400.
fn query_map(raw: Option<String>) -> Result<HashMap<String, String>, Refusal> {
    super::query::decode(raw.as_deref().unwrap_or_default())
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|name| status(StatusCode::BAD_REQUEST, &format!("{name}: not UTF-8")))
}

fn app_of(state: &AppState, app: Option<String>) -> Result<Arc<AppInfo>, Refusal> {
    match app {
        Some(name) => state
            .apps
            .get(&name)
            .ok_or_else(|| status(StatusCode::NOT_FOUND, "no such app")),
        None => state
            .apps
            .default_app()
            .ok_or_else(|| status(StatusCode::NOT_FOUND, "no default app")),
    }
}

async fn registration(
    state: AppState,
    method: Method,
    app: Option<String>,
    raw: Option<String>,
) -> Response {
    if method != Method::GET {
        return status(StatusCode::NOT_IMPLEMENTED, "only GET").into_response();
    }
    let app = match app_of(&state, app) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let query = match query_map(raw) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let flow = &app.c2dm_flow;
    let device_id = match param(&query, "device_id", flow.device_id_len.clone()) {
        Ok(v) => v.to_string(),
        Err(r) => return r.into_response(),
    };
    let registration_id = match param(&query, "registration_id", flow.registration_id_len.clone()) {
        Ok(v) => v.to_string(),
        Err(r) => return r.into_response(),
    };
    let confirmation_token = Alphanumeric.sample_string(&mut rand::rng(), REGISTRATION_TOKEN_LEN);
    let payload = Payload {
        data: [(
            REGISTRATION_TOKEN_KEY.to_string(),
            confirmation_token.clone(),
        )]
        .into(),
        collapse_key: Some(REGISTRATION_TOKEN_KEY.to_string()),
        ttl_secs: u32::try_from(state.delivery.default_ttl.as_secs()).unwrap_or(u32::MAX),
        delay_while_idle: true,
        ..Default::default()
    };
    let now = OffsetDateTime::now_utc();
    let reg = C2dmFlowRegistration {
        device_id: device_id.clone(),
        registration_id: registration_id.clone(),
        confirmation_token,
        channel: flow.channel.clone(),
        message: NewMessage {
            id: Uuid::now_v7(),
            app: app.name.clone(),
            payload: payload.to_json(),
            channel_override: None,
            default_channel: flow.channel.clone(),
            ttl_secs: i64::from(payload.ttl_secs.max(1)),
            idempotency_key: None,
            request_hash: None,
            created_at: now,
            channels: None,
        },
    };
    match state.store.c2dm_flow_register(&app.name, reg, now).await {
        Ok(out) => {
            state.channels.wake(&app.name, &flow.channel);
            debug!(
                app = %app.name,
                %device_id,
                registration_id = %short_token(&registration_id),
                message = %out.message_id,
                "C2DM-era registration stored; confirmation message queued"
            );
            StatusCode::OK.into_response()
        }
        Err(e) => {
            warn!(app = %app.name, %device_id, error = %e, "C2DM-era registration failed");
            status(StatusCode::INTERNAL_SERVER_ERROR, "internal failure").into_response()
        }
    }
}

async fn confirmation(
    state: AppState,
    method: Method,
    app: Option<String>,
    raw: Option<String>,
) -> Response {
    if method != Method::GET {
        return status(StatusCode::NOT_IMPLEMENTED, "only GET").into_response();
    }
    let app = match app_of(&state, app) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let query = match query_map(raw) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let device_id = match param(&query, "device_id", app.c2dm_flow.device_id_len.clone()) {
        Ok(v) => v.to_string(),
        Err(r) => return r.into_response(),
    };
    let token = match param(
        &query,
        REGISTRATION_TOKEN_KEY,
        REGISTRATION_TOKEN_LEN..=REGISTRATION_TOKEN_LEN,
    ) {
        Ok(v) => v.to_string(),
        Err(r) => return r.into_response(),
    };
    match state
        .store
        .c2dm_flow_confirm(&app.name, &device_id, &token, OffsetDateTime::now_utc())
        .await
    {
        Ok(Confirmation::Confirmed) => {
            debug!(app = %app.name, %device_id, "C2DM-era registration confirmed");
            StatusCode::OK.into_response()
        }
        Ok(Confirmation::WrongToken) => {
            debug!(app = %app.name, %device_id, "C2DM-era confirmation with a wrong token");
            status(StatusCode::BAD_REQUEST, "registration_token: wrong token").into_response()
        }
        Ok(Confirmation::NothingPending) => {
            debug!(app = %app.name, %device_id, "C2DM-era confirmation with nothing pending");
            status(
                StatusCode::BAD_REQUEST,
                "registration_token: nothing to confirm",
            )
            .into_response()
        }
        Err(e) => {
            warn!(app = %app.name, %device_id, error = %e, "C2DM-era confirmation failed");
            status(StatusCode::INTERNAL_SERVER_ERROR, "internal failure").into_response()
        }
    }
}

/// `ANY /c2dm/registration` (default app).
#[utoipa::path(get, path = "/c2dm/registration", tag = "c2dm", operation_id = "c2dm_registration",
    params(("device_id" = String, Query, description = "8 to 64 characters"), ("registration_id" = String, Query, description = "8 to 140 characters by default, set per app")),
    responses((status = 200, description = "Stored unconfirmed; a confirmation message carrying registration_token is queued"),
        (status = 400, description = "A parameter is missing, too short or too long, or the token is wrong"),
        (status = 404, description = "No such app"),
        (status = 500, description = "Internal failure"),
        (status = 501, description = "Any method but GET")))]
pub async fn registration_default(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
) -> Response {
    registration(state, method, None, raw).await
}

/// `ANY /v1/apps/{app}/c2dm/registration`.
#[utoipa::path(get, path = "/v1/apps/{app}/c2dm/registration", tag = "c2dm", operation_id = "c2dm_registration_in_app",
    params(("app" = String, Path), ("device_id" = String, Query, description = "8 to 64 characters"), ("registration_id" = String, Query, description = "8 to 140 characters by default, set per app")),
    responses((status = 200, description = "Stored unconfirmed; a confirmation message carrying registration_token is queued"),
        (status = 400, description = "A parameter is missing, too short or too long, or the token is wrong"),
        (status = 404, description = "No such app"),
        (status = 500, description = "Internal failure"),
        (status = 501, description = "Any method but GET")))]
pub async fn registration_in_app(
    State(state): State<AppState>,
    method: Method,
    Path(app): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    registration(state, method, Some(app), raw).await
}

/// `ANY /c2dm/confirmation` (default app).
#[utoipa::path(get, path = "/c2dm/confirmation", tag = "c2dm", operation_id = "c2dm_confirmation",
    params(("device_id" = String, Query, description = "8 to 64 characters"), ("registration_token" = String, Query, description = "the 32 characters the confirmation message carried")),
    responses((status = 200, description = "Confirmed: the registration id is now the device token"),
        (status = 400, description = "A parameter is missing, too short or too long, or the token is wrong"),
        (status = 404, description = "No such app"),
        (status = 500, description = "Internal failure"),
        (status = 501, description = "Any method but GET")))]
pub async fn confirmation_default(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
) -> Response {
    confirmation(state, method, None, raw).await
}

/// `ANY /v1/apps/{app}/c2dm/confirmation`.
#[utoipa::path(get, path = "/v1/apps/{app}/c2dm/confirmation", tag = "c2dm", operation_id = "c2dm_confirmation_in_app",
    params(("app" = String, Path), ("device_id" = String, Query, description = "8 to 64 characters"), ("registration_token" = String, Query, description = "the 32 characters the confirmation message carried")),
    responses((status = 200, description = "Confirmed: the registration id is now the device token"),
        (status = 400, description = "A parameter is missing, too short or too long, or the token is wrong"),
        (status = 404, description = "No such app"),
        (status = 500, description = "Internal failure"),
        (status = 501, description = "Any method but GET")))]
pub async fn confirmation_in_app(
    State(state): State<AppState>,
    method: Method,
    Path(app): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    confirmation(state, method, Some(app), raw).await
}
