//! Events: the app's recent events, filterable by kind, followed live from the API's own
//! event stream (a session-authenticated mount of it, since a browser's `EventSource` cannot
//! send an API key); and the app's webhook (cursor, backlog, last error) with "retry now".

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use pushgate_store::EventKind;
use serde::Deserialize;

use crate::api::AppState;
use crate::api::events::follow;

use super::csrf;
use super::page::{ConsoleError, Nav, PageResult, device_href, enc, harden, ok, when};
use super::session::Viewer;

/// Recent events shown when the page opens.
const RECENT: usize = 50;
/// Events read back to find the recent ones of one kind.
const LOOKBACK: i64 = 2000;

/// `?type=` (and, for the stream, `after=`).
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    after: Option<i64>,
}

fn kind_of(q: &EventsQuery) -> Result<Option<EventKind>, ConsoleError> {
    match q.r#type.as_str() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| ConsoleError::bad_request(format!("{t:?} is not an event type"))),
    }
}

/// One event's row.
struct EventRow {
    seq: i64,
    at: String,
    kind: String,
    device: String,
    device_href: Option<String>,
    data: String,
}

/// The webhook panel.
struct WebhookPanel {
    url: String,
    started: bool,
    delivered_through: String,
    backlog: String,
    attempts: String,
    last_error: String,
    last_attempt: String,
    next_attempt: String,
}

#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage {
    title: &'static str,
    nav: Nav,
    app: String,
    kinds: Vec<&'static str>,
    kind: String,
    rows: Vec<EventRow>,
    stream_href: String,
    webhook: Option<WebhookPanel>,
}

/// `GET /admin/apps/{app}/events?type=`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<EventsQuery>,
) -> PageResult {
    let app = viewer.app(&state, &app)?;
    let kind = kind_of(&q)?;
    let last = state.store.last_event_seq(&app.name).await?;
    let from = (last - LOOKBACK).max(0);
    let mut events = Vec::new();
    let mut cursor = from;
    while cursor < last {
        let batch = state
            .store
            .events_after(&app.name, cursor, 1000, kind)
            .await?;
        let Some(end) = batch.last().map(|e| e.seq) else {
            break;
        };
        cursor = end;
        events.extend(batch);
        if events.len() > 2 * RECENT {
            events.drain(..events.len() - RECENT);
        }
    }
    let rows = events
        .iter()
        .rev()
        .take(RECENT)
        .map(|e| EventRow {
            seq: e.seq,
            at: when(e.created_at),
            kind: e.kind.as_str().to_string(),
            device: e.device_id.clone().unwrap_or_default(),
            device_href: e.device_id.as_deref().map(|d| device_href(&app.name, d)),
            data: e.data.to_string(),
        })
        .collect();
    let webhook = match &app.webhook_url {
        None => None,
        Some(url) => Some(match state.store.webhook_state(&app.name).await? {
            None => WebhookPanel {
                url: url.clone(),
                started: false,
                delivered_through: "-".into(),
                backlog: "-".into(),
                attempts: "-".into(),
                last_error: "-".into(),
                last_attempt: "-".into(),
                next_attempt: "-".into(),
            },
            Some(w) => WebhookPanel {
                url: url.clone(),
                started: true,
                delivered_through: w.delivered_seq.to_string(),
                backlog: state
                    .store
                    .count_events_after(&app.name, w.delivered_seq)
                    .await?
                    .to_string(),
                attempts: w.attempts.to_string(),
                last_error: w.last_error.unwrap_or_else(|| "none".into()),
                last_attempt: w.last_attempt_at.map(when).unwrap_or_else(|| "-".into()),
                next_attempt: when(w.next_attempt_at),
            },
        }),
    };
    Ok(ok(&EventsPage {
        title: "Events",
        nav: Nav::new(&state, &viewer, Some(&app.name)),
        stream_href: format!(
            "/admin/apps/{}/events/stream?after={last}&type={}",
            enc(&app.name),
            enc(&q.r#type)
        ),
        app: app.name.clone(),
        kinds: EventKind::ALL.iter().map(|k| k.as_str()).collect(),
        kind: q.r#type.clone(),
        rows,
        webhook,
    }))
}

/// `GET /admin/apps/{app}/events/stream?after=&type=`: the API's event stream for the
/// session's app.
pub async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ConsoleError> {
    let app = viewer.app(&state, &app)?;
    let kind = kind_of(&q)?;
    let cursor = match q.after {
        Some(c) => c,
        None => state.store.last_event_seq(&app.name).await?,
    };
    let events = follow(&state, &app.name, cursor, kind);
    Ok(harden(
        Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    ))
}

/// The retry form.
#[derive(Debug, Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/apps/{app}/webhook/retry`: asks the app's webhook sender to try now.
pub async fn retry_webhook(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Form(f): Form<RetryForm>,
) -> PageResult {
    csrf::check(&viewer, &f.csrf)?;
    let app = viewer.app(&state, &app)?;
    let nudge = state
        .console
        .webhook_nudge(&app.name)
        .ok_or_else(|| ConsoleError::not_found(format!("app {:?} has no webhook", app.name)))?;
    nudge.notify_one();
    tracing::info!(app = %app.name, "console asked the webhook to retry now");
    Ok(harden(
        Redirect::to(&format!("/admin/apps/{}/events", enc(&app.name))).into_response(),
    ))
}
