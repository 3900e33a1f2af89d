//! The send API: `POST /v1/apps/{app}/messages` (checked completely, stored with its
//! deliveries in one transaction, answered 202) and `GET /v1/messages/{id}` (counts by state
//! and per-device results).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use pushgate_store::{InsertOutcome, NewMessage, StoreError};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;
use uuid::Uuid;

use super::AppState;
use super::auth::{AppInfo, Caller};
use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::query::StrictQuery;
use super::views::{Accepted, DeliveryView, ErrorBody, MessageStatus, rfc3339};
use crate::message::{ParsedSend, Payload, SendBody, parse_send_body, request_digest};

/// The error code of a message that retention deleted.
pub const EXPIRED_FROM_HISTORY: &str = "expired_from_history";

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_string()))
}

/// `POST /v1/apps/{app}/messages`: checked completely (against every channel it reaches),
/// stored with its deliveries in one transaction, then 202. `Idempotency-Key` makes a retried
/// POST answer the first answer again.
#[utoipa::path(post, path = "/v1/apps/{app}/messages", tag = "messages", operation_id = "send_message",
    params(("app" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters")),
    request_body = SendBody,
    responses(
        (status = 202, body = Accepted, headers(("Location" = String), ("Idempotent-Replayed" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    headers: HeaderMap,
    JsonBody(bytes): JsonBody,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let key = idempotency_key(&headers)?;
    let out = accept(&state, &app, &bytes, key).await?;
    let body = Accepted {
        id: out.message_id,
        deliveries: out.deliveries,
        queued: out.queued,
        expanding: out.expanding,
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/messages/{}", out.message_id)) {
        response.headers_mut().insert(http::header::LOCATION, v);
    }
    if out.duplicate {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Checks a send request completely (against every channel it may reach), stores it with its
/// deliveries in one transaction and wakes the workers of the channels it queued work for: the
/// one path of every send, from the API and from the console's Send form alike.
pub(crate) async fn accept(
    state: &AppState,
    app: &AppInfo,
    bytes: &[u8],
    key: Option<String>,
) -> ApiResult<InsertOutcome> {
    let default_ttl = u32::try_from(state.delivery.default_ttl.as_secs()).unwrap_or(u32::MAX);
    let parsed = parse_send_body(bytes, state.limits.max_target_list, default_ttl)?;
    let channel_override = parsed.body.channel.clone();
    if let Some(ch) = &channel_override
        && !app.channels.contains(ch)
    {
        return Err(ApiError::invalid(
            "channel",
            format!("app {:?} has no channel {ch:?}", app.name),
        ));
    }
    let checked = checked_channels(state, app, &parsed, channel_override.as_deref()).await?;
    // Compared only when the same key comes again: a message without one needs none.
    let request_hash = key.as_ref().map(|_| request_digest(&parsed.body));
    let msg = NewMessage {
        id: Uuid::now_v7(),
        app: app.name.clone(),
        payload: parsed.payload.to_json(),
        channel_override,
        default_channel: app.default_channel.clone(),
        // The queue never expires a message before its first chance to be sent.
        ttl_secs: i64::from(parsed.payload.ttl_secs.max(1)),
        idempotency_key: key,
        request_hash,
        created_at: OffsetDateTime::now_utc(),
        channels: checked.listed,
    };
    let out = match state.store.insert_message(msg, &parsed.targets).await {
        Err(StoreError::UnlistedChannel(name)) => {
            return Err(refusal(state, app, &name, &parsed.payload));
        }
        other => other?,
    };
    if out.duplicate && !out.same_request {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    // A fan-out still expanding has work coming for every channel it reaches, not only those
    // of its first chunk: their workers help store the rest as they claim.
    let mut woken = out.queued_channels.clone();
    if out.expanding && !out.duplicate {
        woken.extend(checked.reached);
        woken.sort();
        woken.dedup();
    }
    for name in &woken {
        state.channels.wake(&app.name, name);
    }
    Ok(out)
}

/// The channels a send was checked against.
struct Checked {
    /// The only channels its deliveries may be queued on ([`NewMessage::channels`]), when the
    /// store is to check them.
    listed: Option<Vec<String>>,
    /// The channels its audience reaches, when they were read from the store.
    reached: Vec<String>,
}

/// Checks the payload against the channels the message may reach, and returns the list the
/// store must keep its queued deliveries to, if any, and the channels read. The channel named
/// in the request is the only one reached (and it exists). Targets that name their devices (by
/// id or token) need no read first: the list is every channel of the app whose check the
/// payload passes, and the store refuses a message that would queue a delivery on any other
/// (see [`refusal`]). For an audience (all, users, tags, topic, condition), whose later chunks
/// are stored after the answer, the channels it reaches are read from the store and each is
/// checked.
async fn checked_channels(
    state: &AppState,
    app: &AppInfo,
    parsed: &ParsedSend,
    channel_override: Option<&str>,
) -> ApiResult<Checked> {
    if let Some(name) = channel_override {
        check_on(state, app, name, &parsed.payload)?;
        return Ok(Checked {
            listed: None,
            reached: vec![name.to_string()],
        });
    }
    if parsed.targets.names_only() {
        let passing = app
            .channels
            .iter()
            .filter(|name| check_on(state, app, name, &parsed.payload).is_ok())
            .cloned()
            .collect();
        return Ok(Checked {
            listed: Some(passing),
            reached: Vec::new(),
        });
    }
    let reached = state
        .store
        .reached_channels(&app.name, &parsed.targets, None, &app.default_channel)
        .await?;
    for name in &reached {
        check_on(state, app, name, &parsed.payload)?;
    }
    Ok(Checked {
        listed: None,
        reached,
    })
}

/// Why the store refused a message that would have queued a delivery on channel `name`: the
/// channel's own check of the payload, or the channel is not configured (a device registered
/// on a channel since removed); or, when a reload added the channel meanwhile, that the
/// request should be sent again.
fn refusal(state: &AppState, app: &AppInfo, name: &str, payload: &Payload) -> ApiError {
    match check_on(state, app, name, payload) {
        Err(refused) => refused,
        Ok(()) => ApiError::invalid(
            "targets",
            format!(
                "reaches devices of channel {name:?}, which was added while the message was \
                 checked; send it again"
            ),
        ),
    }
}

/// Checks the payload against one channel of the app, naming the channel in the error.
fn check_on(state: &AppState, app: &AppInfo, name: &str, payload: &Payload) -> ApiResult<()> {
    let entry = state
        .channels
        .get(&app.name, name)
        .ok_or_else(|| unconfigured(name))?;
    entry.channel.check(payload).map_err(|e| {
        ApiError::invalid(
            e.field.clone(),
            format!(
                "{} (channel {name:?}, {})",
                e.problem,
                entry.channel.kind().as_str()
            ),
        )
    })
}

/// The answer to a message that reaches devices of a channel the gateway does not run.
fn unconfigured(name: &str) -> ApiError {
    ApiError::invalid(
        "targets",
        format!("reaches devices of channel {name:?}, which is not configured"),
    )
}

/// Query of a message's results.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// `GET /v1/messages/{id}?cursor=&limit=` (also under `/v1/apps/{app}/messages/{id}`).
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", operation_id = "get_message",
    params(("id" = String, Path), ResultsQuery),
    responses((status = 200, body = MessageStatus), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown, or another app's; `expired_from_history` when retention deleted it", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictQuery(q): StrictQuery<ResultsQuery>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found(format!("no message {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let app = caller.0.name.as_str();
    let message = match state.store.get_message(uuid).await? {
        Some(m) if m.app == app => m,
        // Another app's message is as unknown as one never sent.
        Some(_) => return Err(not_found()),
        None => return Err(missing(&state, app, uuid, &id).await?),
    };
    let limit = super::page_limit(q.limit)?;
    // Retention may delete the message between these reads.
    let summary = match state.store.message_summary(uuid).await {
        Err(StoreError::NotFound) => return Err(missing(&state, app, uuid, &id).await?),
        other => other?,
    };
    let page = state.store.list_deliveries(uuid, q.cursor, limit).await?;
    let counts = summary
        .iter()
        .map(|(s, n)| (s.as_str().to_string(), *n))
        .collect();
    let pending: u64 = summary
        .iter()
        .filter(|(s, _)| !s.is_final())
        .map(|(_, n)| n)
        .sum();
    Ok(Json(MessageStatus {
        id: message.id,
        app: message.app,
        created_at: rfc3339(message.created_at),
        ttl: message.ttl_secs,
        deliveries: message.deliveries,
        expanding: message.expanding,
        done: pending == 0 && !message.expanding,
        counts,
        results: page.items.iter().map(DeliveryView::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// The answer for a message id that is not stored: `expired_from_history` when retention
/// deleted it ([`expired_explanation`]), else plain `not_found`.
async fn missing(state: &AppState, app: &str, id: Uuid, text: &str) -> ApiResult<ApiError> {
    Ok(match expired_explanation(state, app, id, text).await? {
        Some(why) => ApiError::new(StatusCode::NOT_FOUND, EXPIRED_FROM_HISTORY, why),
        None => ApiError::not_found(format!("no message {text:?}")),
    })
}

/// Why message `id` (shown as `text`) of `app` is not stored, when retention deleted it: the
/// app's messages were deleted up to a time at or after the id's own (a UUIDv7 carries the
/// millisecond it was made, just before its message was accepted). `None` for an id that
/// retention cannot have deleted. The API and the console both say it.
pub(crate) async fn expired_explanation(
    state: &AppState,
    app: &str,
    id: Uuid,
    text: &str,
) -> Result<Option<String>, pushgate_store::StoreError> {
    let Some((secs, nanos)) = id.get_timestamp().map(|t| t.to_unix()) else {
        return Ok(None);
    };
    let Some(horizon) = state.store.purged_through(app).await? else {
        return Ok(None);
    };
    let made = i128::from(secs) * 1000 + i128::from(nanos / 1_000_000);
    if made > horizon.unix_timestamp_nanos() / 1_000_000 {
        return Ok(None);
    }
    let limit = state
        .retention
        .limits_for(app)
        .messages
        .map(|d| format!(" ({})", crate::config::limit_words(Some(d))))
        .unwrap_or_default();
    Ok(Some(format!(
        "message {text:?} is older than the app's retention{limit} and was deleted from history"
    )))
}

/// `GET /v1/apps/{app}/messages/{id}`: the same, with the app checked first.
#[utoipa::path(get, path = "/v1/apps/{app}/messages/{id}", tag = "messages", operation_id = "get_app_message",
    params(("app" = String, Path), ("id" = String, Path), ResultsQuery),
    responses((status = 200, body = MessageStatus), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Unknown, or another app's; `expired_from_history` when retention deleted it", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_in_app(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, id)): Path<(String, String)>,
    StrictQuery(q): StrictQuery<ResultsQuery>,
) -> ApiResult<Response> {
    caller.for_app(&state, &app)?;
    get(State(state), caller, Path(id), StrictQuery(q)).await
}
