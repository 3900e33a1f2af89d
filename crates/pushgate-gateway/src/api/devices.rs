//! The device registry API: `PUT|GET|DELETE /v1/apps/{app}/devices/{device_id}`,
//! `GET /v1/apps/{app}/devices` (filters, cursor pages) and
//! `POST /v1/apps/{app}/devices:import` (many devices in one transaction).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use pushgate_store::{DeviceFilter, DeviceState, NewDevice};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{AppInfo, Caller};
use super::body::{JsonBody, parse};
use super::device_bodies::{DeviceBody, ImportedDevice};
use super::error::{ApiError, ApiResult};
use super::query::StrictQuery;
use super::views::{DeviceList, DevicePut, DeviceView, ErrorBody, ImportResult};
use crate::device_rules::{
    DEVICE_FIELDS, MAX_DEVICE_ID_CHARS, MAX_LABEL_CHARS, MAX_TOKEN_CHARS, check_channel,
    check_labels, check_text,
};

/// The fields of a device in `PUT .../devices/{device_id}` (without `device_id`) and in each
/// `devices:import` entry (with it).
#[derive(Debug, Deserialize)]
pub struct DeviceFields {
    /// Import only: the application's id for the device.
    #[serde(default)]
    device_id: Option<String>,
    /// The provider token (1 to 4096 characters).
    token: String,
    /// A channel of the app, when not its default.
    #[serde(default)]
    channel: Option<String>,
    /// The application's user id.
    #[serde(default)]
    user: Option<String>,
    /// Targeting tags (at most 100).
    #[serde(default)]
    tags: Vec<String>,
    /// Topic subscriptions in the registry (at most 100, topic names).
    #[serde(default)]
    topics: Vec<String>,
    /// Client application version.
    #[serde(default)]
    app_version: Option<String>,
    /// `active` or `disabled`; omitted keeps a disabled device disabled.
    #[serde(default)]
    state: Option<StateBody>,
}

/// What the application may set a device's state to.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateBody {
    Active,
    Disabled,
}

/// The body of `devices:import`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// 1 to 1000 devices, each with its `device_id`.
    #[schema(value_type = Vec<ImportedDevice>)]
    devices: Vec<serde_json::Value>,
}

/// Reads one device object; `allowed` are the fields it may have, errors are prefixed with
/// `prefix` (`devices[3].`).
fn read_fields(
    prefix: &str,
    value: serde_json::Value,
    allowed: &[&str],
) -> ApiResult<DeviceFields> {
    let Some(obj) = value.as_object() else {
        let field = prefix.trim_end_matches('.');
        return Err(ApiError::invalid(
            if field.is_empty() { "body" } else { field },
            "must be a JSON object",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            format!("{prefix}{unknown}"),
            format!("unknown field, expected one of {}", allowed.join(", ")),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            format!("{prefix}token")
        } else {
            format!("{prefix}{path}")
        };
        ApiError::invalid(field, e.into_inner())
    })
}

/// Checks a device id from a path or a body.
pub(super) fn check_device_id(field: &str, id: &str) -> ApiResult<()> {
    Ok(check_text(field, id, MAX_DEVICE_ID_CHARS)?)
}

/// Checks one device's fields (paths prefixed with `prefix`) into what the store takes.
fn new_device(
    app: &AppInfo,
    prefix: &str,
    device_id: String,
    f: DeviceFields,
) -> ApiResult<NewDevice> {
    check_text(&format!("{prefix}token"), &f.token, MAX_TOKEN_CHARS)?;
    if let Some(ch) = &f.channel {
        check_channel(&format!("{prefix}channel"), ch, &app.channels)?;
    }
    if let Some(user) = &f.user {
        check_text(&format!("{prefix}user"), user, MAX_LABEL_CHARS)?;
    }
    if let Some(v) = &f.app_version {
        check_text(&format!("{prefix}app_version"), v, MAX_LABEL_CHARS)?;
    }
    check_labels(&format!("{prefix}tags"), &f.tags, false)?;
    check_labels(&format!("{prefix}topics"), &f.topics, true)?;
    Ok(NewDevice {
        device_id,
        token: f.token,
        channel: f.channel,
        user: f.user,
        tags: f.tags,
        topics: f.topics,
        app_version: f.app_version,
        state: f.state.map(|s| match s {
            StateBody::Active => DeviceState::Active,
            StateBody::Disabled => DeviceState::Disabled,
        }),
    })
}

/// `PUT /v1/apps/{app}/devices/{device_id}`: 201 when new, 200 when updated.
#[utoipa::path(put, path = "/v1/apps/{app}/devices/{device_id}", tag = "devices", operation_id = "put_device",
    params(("app" = String, Path), ("device_id" = String, Path)),
    request_body = DeviceBody,
    responses(
        (status = 201, description = "Registered", body = DevicePut),
        (status = 200, description = "Updated", body = DevicePut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, device_id)): Path<(String, String)>,
    JsonBody(bytes): JsonBody,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    check_device_id("device_id", &device_id)?;
    let value: serde_json::Value = parse(&bytes)?;
    let fields = read_fields("", value, &DEVICE_FIELDS[1..])?;
    let device = new_device(&app, "", device_id.clone(), fields)?;
    let put = state
        .store
        .put_device(&app.name, device, OffsetDateTime::now_utc())
        .await?;
    let stored = state
        .store
        .get_device(&app.name, &device_id)
        .await?
        .ok_or_else(|| ApiError::internal("device vanished after storing", "not found"))?;
    let body = DevicePut {
        device: DeviceView::from(&stored),
        took_over_from: put.took_over_from,
    };
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

/// `GET /v1/apps/{app}/devices/{device_id}`.
#[utoipa::path(get, path = "/v1/apps/{app}/devices/{device_id}", tag = "devices", operation_id = "get_device",
    params(("app" = String, Path), ("device_id" = String, Path)),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, device_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let device = state
        .store
        .get_device(&app.name, &device_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no device {device_id:?} in app {:?}", app.name))
        })?;
    Ok(Json(DeviceView::from(&device)).into_response())
}

/// `DELETE /v1/apps/{app}/devices/{device_id}`: 204.
#[utoipa::path(delete, path = "/v1/apps/{app}/devices/{device_id}", tag = "devices", operation_id = "delete_device",
    params(("app" = String, Path), ("device_id" = String, Path)),
    responses((status = 204, description = "Deleted; its waiting deliveries fail"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, device_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    match state
        .store
        .delete_device(&app.name, &device_id, OffsetDateTime::now_utc())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(pushgate_store::StoreError::NotFound) => Err(ApiError::not_found(format!(
            "no device {device_id:?} in app {:?}",
            app.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Query of the device list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only devices of this user.
    user: Option<String>,
    /// Only devices with this tag.
    tag: Option<String>,
    /// Only devices subscribed to this topic.
    topic: Option<String>,
    /// Only devices in this state (`active`, `disabled`, `invalid`).
    state: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// `GET /v1/apps/{app}/devices?user=&tag=&topic=&state=&cursor=&limit=`.
#[utoipa::path(get, path = "/v1/apps/{app}/devices", tag = "devices", operation_id = "list_devices",
    params(("app" = String, Path), ListQuery),
    responses((status = 200, body = DeviceList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let device_state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<DeviceState>().map_err(|_| {
            ApiError::invalid("state", format!("{s:?} is not active, disabled or invalid"))
        })?),
    };
    let limit = super::page_limit(q.limit)?;
    let filter = DeviceFilter {
        user: q.user,
        tag: q.tag,
        topic: q.topic,
        state: device_state,
    };
    let page = state
        .store
        .list_devices(&app.name, &filter, q.cursor.as_deref(), limit)
        .await?;
    Ok(Json(DeviceList {
        devices: page.items.iter().map(DeviceView::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// `POST /v1/apps/{app}/devices:import` `{"devices": [{"device_id", "token", ...}]}`: all or
/// nothing, in one transaction.
#[utoipa::path(post, path = "/v1/apps/{app}/devices:import", tag = "devices", operation_id = "import_devices",
    params(("app" = String, Path)),
    request_body = ImportBody,
    responses((status = 200, body = ImportResult), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    JsonBody(bytes): JsonBody,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let body: ImportBody = parse(&bytes)?;
    let max = state.limits.max_device_batch;
    if body.devices.is_empty() || body.devices.len() > max {
        return Err(ApiError::invalid(
            "devices",
            format!("must hold 1 to {max} devices, not {}", body.devices.len()),
        ));
    }
    let mut devices = Vec::with_capacity(body.devices.len());
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in body.devices.into_iter().enumerate() {
        let prefix = format!("devices[{i}].");
        let mut fields = read_fields(&prefix, raw, DEVICE_FIELDS)?;
        let Some(device_id) = fields.device_id.take() else {
            return Err(ApiError::invalid(format!("{prefix}device_id"), "required"));
        };
        check_device_id(&format!("{prefix}device_id"), &device_id)?;
        if !seen.insert(device_id.clone()) {
            return Err(ApiError::invalid(
                format!("{prefix}device_id"),
                "appears twice in the batch",
            ));
        }
        devices.push(new_device(&app, &prefix, device_id, fields)?);
    }
    let results = state
        .store
        .put_devices(&app.name, devices, OffsetDateTime::now_utc())
        .await?;
    let created = results.iter().filter(|r| r.created).count();
    let took_over: Vec<&str> = results
        .iter()
        .filter_map(|r| r.took_over_from.as_deref())
        .collect();
    Ok(Json(ImportResult {
        imported: results.len(),
        created,
        updated: results.len() - created,
        took_over_from: took_over.into_iter().map(str::to_string).collect(),
    })
    .into_response())
}
