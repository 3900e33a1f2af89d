//! The app's event log: `GET /v1/apps/{app}/events?after=&limit=&type=` pages through it,
//! `GET /v1/apps/{app}/events/stream` follows it live as server-sent events and resumes
//! from `Last-Event-ID` (each event's SSE id is its seq).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use http::HeaderMap;
use pushgate_store::{Event, EventKind};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::query::StrictQuery;
use super::views::{ErrorBody, EventList, EventView};
use crate::event_wakeup;

/// An event as the API, the stream and webhooks show it.
pub fn event_view(e: &Event) -> EventView {
    EventView::from(e)
}

/// Query of the event list and stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this id (the list's `next_cursor`).
    after: Option<i64>,
    /// Page size, 1 to 1000 (default 100); the list only.
    limit: Option<u32>,
    /// Only events of this type.
    r#type: Option<String>,
}

fn kind_of(q: &EventsQuery) -> ApiResult<Option<EventKind>> {
    match q.r#type.as_deref() {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|_| {
            let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::invalid("type", format!("{t:?} is not one of {}", names.join(", ")))
        }),
    }
}

/// `GET /v1/apps/{app}/events`.
#[utoipa::path(get, path = "/v1/apps/{app}/events", tag = "events", operation_id = "list_events",
    params(("app" = String, Path), EventsQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    StrictQuery(q): StrictQuery<EventsQuery>,
) -> ApiResult<Response> {
    let app = caller.for_app(&state, &app)?;
    let kind = kind_of(&q)?;
    let limit = super::page_limit(q.limit)?;
    let after = q.after.unwrap_or(0);
    let events = state
        .store
        .events_after(&app.name, after, limit, kind)
        .await?;
    let next = events.last().map(|e| e.seq).unwrap_or(after);
    Ok(Json(EventList {
        events: events.iter().map(event_view).collect(),
        next_cursor: next,
    })
    .into_response())
}

/// `GET /v1/apps/{app}/events/stream`: from `Last-Event-ID`, else `?after=`, else from now.
#[utoipa::path(get, path = "/v1/apps/{app}/events/stream", tag = "events", operation_id = "stream_events",
    params(("app" = String, Path),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        EventsQuery),
    responses(
        (status = 200, description = "Server-sent events: `id` is the event id, `event` its type, `data` the event as JSON", content_type = "text/event-stream", body = EventView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    headers: HeaderMap,
    StrictQuery(q): StrictQuery<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let app = caller.for_app(&state, &app)?;
    let kind = kind_of(&q)?;
    let resume = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(id) => Some(id.trim().parse::<i64>().map_err(|_| {
            ApiError::invalid("Last-Event-ID", "must be the id of an event (an integer)")
        })?),
        None => q.after,
    };
    let cursor = match resume {
        Some(c) => c,
        None => state.store.last_event_seq(&app.name).await?,
    };
    let events = follow(&state, &app.name, cursor, kind);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The app's events after `cursor` (optionally one kind) as server-sent events, woken by
/// every commit that may have written events: the one follower of the API's stream and the
/// console's live tail.
pub(crate) fn follow(
    state: &AppState,
    app: &str,
    cursor: i64,
    kind: Option<EventKind>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let store = state.store.clone();
    let wake = state.events_wakeup.subscribe();
    let name = app.to_string();
    stream::unfold(
        (cursor, VecDeque::<Event>::new(), wake),
        move |(mut cursor, mut buffer, mut wake)| {
            let store = store.clone();
            let name = name.clone();
            async move {
                loop {
                    if let Some(e) = buffer.pop_front() {
                        let sse = SseEvent::default()
                            .id(e.seq.to_string())
                            .event(e.kind.as_str())
                            .data(serde_json::to_string(&event_view(&e)).unwrap_or_default());
                        return Some((Ok(sse), (cursor, buffer, wake)));
                    }
                    match store.events_after(&name, cursor, 100, kind).await {
                        Ok(batch) if !batch.is_empty() => {
                            cursor = batch.last().map(|e| e.seq).unwrap_or(cursor);
                            buffer.extend(batch);
                        }
                        Ok(_) => event_wakeup::wait(&mut wake).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "event stream cannot read events");
                            tokio::time::sleep(event_wakeup::POLL).await;
                        }
                    }
                }
            }
        },
    )
}
