//! Devices: search (device id prefix, token prefix, user, tag, topic, state) in pages; a
//! device's page with its registration, its state history from the event log (rotations,
//! invalidation, failed deliveries), its recent deliveries with the provider's answers, and
//! disable, enable and delete (behind a confirmation), each a POST with the CSRF token.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use pushgate_store::{Device, DeviceFilter, DeviceState, EventKind, StoreError};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::api::AppState;

use super::csrf;
use super::page::{
    ConsoleError, Nav, PageResult, device_href, enc, harden, message_href, ok, when,
};
use super::session::Viewer;

/// Devices shown per page.
const PAGE: usize = 50;
/// Most devices one search request reads when filtering by token prefix, before it offers
/// to go on.
const SCAN: usize = 2000;
/// Events read back for a device's history.
const HISTORY_EVENTS: i64 = 5000;
/// Recent deliveries shown on a device's page.
const RECENT_ANSWERS: usize = 25;

/// The search form.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    cursor: Option<String>,
}

/// One result row.
struct DeviceRow {
    href: String,
    device_id: String,
    state: String,
    user: String,
    tags: String,
    channel: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct SearchPage {
    title: &'static str,
    nav: Nav,
    app: String,
    q: SearchQuery,
    rows: Vec<DeviceRow>,
    next_href: Option<String>,
    scanned_note: Option<String>,
}

fn none_if_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// True when `d` passes the filter (the store's filter, for a device fetched by id).
fn passes(d: &Device, f: &DeviceFilter) -> bool {
    f.user.as_ref().is_none_or(|u| d.user.as_ref() == Some(u))
        && f.tag.as_ref().is_none_or(|t| d.tags.contains(t))
        && f.topic.as_ref().is_none_or(|t| d.topics.contains(t))
        && f.state.is_none_or(|s| d.state == s)
}

fn row(app: &str, d: &Device) -> DeviceRow {
    DeviceRow {
        href: device_href(app, &d.device_id),
        device_id: d.device_id.clone(),
        state: d.state.as_str().to_string(),
        user: d.user.clone().unwrap_or_default(),
        tags: d.tags.join(", "),
        channel: d.channel.clone().unwrap_or_else(|| "(default)".into()),
        updated: when(d.updated_at),
    }
}

/// `GET /admin/apps/{app}/devices?id=&token=&user=&tag=&topic=&state=&cursor=`.
pub async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<SearchQuery>,
) -> PageResult {
    let app = viewer.app(&state, &app)?;
    let device_state = match q.state.trim() {
        "" => None,
        s => Some(s.parse::<DeviceState>().map_err(|_| {
            ConsoleError::bad_request(format!("state {s:?} is not active, disabled or invalid"))
        })?),
    };
    let filter = DeviceFilter {
        user: none_if_empty(&q.user),
        tag: none_if_empty(&q.tag),
        topic: none_if_empty(&q.topic),
        state: device_state,
    };
    let id_prefix = q.id.trim().to_string();
    let token_prefix = q.token.trim().to_string();
    let token_ok = |d: &Device| {
        token_prefix.is_empty()
            || d.token
                .as_deref()
                .is_some_and(|t| t.starts_with(&token_prefix))
    };
    let mut rows = Vec::new();
    let mut cursor = q.cursor.clone().filter(|c| !c.is_empty());
    // Ids starting with the prefix follow it in id order: the device named exactly by the
    // prefix first, then the list after it.
    if !id_prefix.is_empty() && cursor.is_none() {
        if let Some(d) = state.store.get_device(&app.name, &id_prefix).await?
            && passes(&d, &filter)
            && token_ok(&d)
        {
            rows.push(row(&app.name, &d));
        }
        cursor = Some(id_prefix.clone());
    }
    let mut scanned = 0usize;
    let mut next: Option<String> = None;
    let mut scanned_note = None;
    'pages: loop {
        let page = state
            .store
            .list_devices(&app.name, &filter, cursor.as_deref(), 200)
            .await?;
        for d in &page.items {
            scanned += 1;
            if !d.device_id.starts_with(&id_prefix) {
                break 'pages;
            }
            if token_ok(d) {
                rows.push(row(&app.name, d));
                // One more than a page: there is a next page, after this page's last.
                if rows.len() > PAGE {
                    rows.pop();
                    next = rows.last().map(|r| r.device_id.clone());
                    break 'pages;
                }
            }
        }
        match page.next_cursor {
            None => break,
            Some(c) => {
                if scanned >= SCAN {
                    scanned_note = Some(format!(
                        "Read {scanned} devices for this page without filling it; the next page goes on from there."
                    ));
                    next = Some(c);
                    break;
                }
                cursor = Some(c);
            }
        }
    }
    let next_href = next.map(|c| {
        format!(
            "/admin/apps/{}/devices?id={}&token={}&user={}&tag={}&topic={}&state={}&cursor={}",
            enc(&app.name),
            enc(&q.id),
            enc(&q.token),
            enc(&q.user),
            enc(&q.tag),
            enc(&q.topic),
            enc(&q.state),
            enc(&c)
        )
    });
    Ok(ok(&SearchPage {
        title: "Devices",
        nav: Nav::new(&state, &viewer, Some(&app.name)),
        app: app.name.clone(),
        q,
        rows,
        next_href,
        scanned_note,
    }))
}

/// `?id=` of a device's pages.
#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    id: String,
}

/// One line of a device's history.
struct HistoryRow {
    at: String,
    kind: String,
    details: String,
}

/// One recent delivery.
struct AnswerRow {
    at: String,
    message_href: String,
    message_id: String,
    channel: String,
    attempt: i64,
    outcome: String,
    reason: String,
    provider_id: String,
}

#[derive(Template)]
#[template(path = "console/device.html")]
struct DevicePage {
    title: &'static str,
    nav: Nav,
    app: String,
    device_id: String,
    token: String,
    pending_token: String,
    channel: String,
    user: String,
    tags: String,
    topics: String,
    app_version: String,
    state: String,
    invalid_reason: String,
    registration: String,
    created: String,
    updated: String,
    history: Vec<HistoryRow>,
    answers: Vec<AnswerRow>,
    delete_href: String,
    send_href: String,
}

/// The device `id` of `app`, or 404.
async fn find(state: &AppState, app: &str, id: &str) -> Result<Device, ConsoleError> {
    state
        .store
        .get_device(app, id)
        .await?
        .ok_or_else(|| ConsoleError::not_found(format!("no device {id:?} in app {app:?}")))
}

/// The device's rotations, invalidation and failed deliveries among the app's recent events,
/// newest first.
async fn history(state: &AppState, app: &str, id: &str) -> Result<Vec<HistoryRow>, StoreError> {
    let last = state.store.last_event_seq(app).await?;
    let mut cursor = (last - HISTORY_EVENTS).max(0);
    let mut rows = Vec::new();
    while cursor < last {
        let batch = state.store.events_after(app, cursor, 1000, None).await?;
        let Some(end) = batch.last().map(|e| e.seq) else {
            break;
        };
        cursor = end;
        rows.extend(
            batch
                .into_iter()
                .filter(|e| e.device_id.as_deref() == Some(id))
                .filter(|e| {
                    matches!(
                        e.kind,
                        EventKind::TokenRotated
                            | EventKind::DeviceInvalidated
                            | EventKind::DeliveryFailed
                    )
                })
                .map(|e| HistoryRow {
                    at: when(e.created_at),
                    kind: e.kind.as_str().to_string(),
                    details: e.data.to_string(),
                }),
        );
    }
    rows.reverse();
    rows.truncate(100);
    Ok(rows)
}

/// `GET /admin/apps/{app}/device?id=`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<DeviceQuery>,
) -> PageResult {
    let app = viewer.app(&state, &app)?;
    let d = find(&state, &app.name, &q.id).await?;
    let history = history(&state, &app.name, &d.device_id).await?;
    let answers = state
        .metrics
        .activity()
        .for_device(&app.name, &d.device_id, RECENT_ANSWERS)
        .into_iter()
        .map(|a| AnswerRow {
            at: when(a.at),
            message_href: message_href(&app.name, a.message_id),
            message_id: a.message_id.to_string(),
            channel: a.channel,
            attempt: a.attempt,
            outcome: a.outcome.to_string(),
            reason: a.reason.unwrap_or_default(),
            provider_id: a.provider_message_id.unwrap_or_default(),
        })
        .collect();
    let dash = || "-".to_string();
    Ok(ok(&DevicePage {
        title: "Device",
        nav: Nav::new(&state, &viewer, Some(&app.name)),
        app: app.name.clone(),
        delete_href: format!(
            "/admin/apps/{}/device/delete?id={}",
            enc(&app.name),
            enc(&d.device_id)
        ),
        send_href: format!(
            "/admin/apps/{}/send?kind=device_ids&targets={}",
            enc(&app.name),
            enc(&d.device_id)
        ),
        token: d
            .token
            .clone()
            .unwrap_or_else(|| "(none: registration not confirmed)".into()),
        pending_token: d.pending_token.clone().unwrap_or_else(dash),
        channel: d
            .channel
            .clone()
            .unwrap_or_else(|| format!("{} (the app's default)", app.default_channel)),
        user: d.user.clone().unwrap_or_else(dash),
        tags: d.tags.join(", "),
        topics: d.topics.join(", "),
        app_version: d.app_version.clone().unwrap_or_else(dash),
        state: d.state.as_str().to_string(),
        invalid_reason: d.invalid_reason.clone().unwrap_or_default(),
        registration: d.registration.as_str().to_string(),
        created: when(d.created_at),
        updated: when(d.updated_at),
        device_id: d.device_id,
        history,
        answers,
    }))
}

/// The state form.
#[derive(Debug, Deserialize)]
pub struct StateForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/apps/{app}/device/state` (`state` = `active` or `disabled`).
pub async fn set_state(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Form(f): Form<StateForm>,
) -> PageResult {
    csrf::check(&viewer, &f.csrf)?;
    let app = viewer.app(&state, &app)?;
    let new_state = match f.state.as_str() {
        "active" => DeviceState::Active,
        "disabled" => DeviceState::Disabled,
        other => {
            return Err(ConsoleError::bad_request(format!(
                "state {other:?} is not active or disabled"
            )));
        }
    };
    let d = find(&state, &app.name, &f.id).await?;
    match state
        .store
        .set_device_state(
            &app.name,
            &d.device_id,
            new_state,
            None,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(why)) => {
            return Err(ConsoleError {
                status: http::StatusCode::CONFLICT,
                message: format!("cannot make the device {}: {why}", new_state.as_str()),
            });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(app = %app.name, state = new_state.as_str(), "console changed a device's state");
    Ok(harden(
        Redirect::to(&device_href(&app.name, &d.device_id)).into_response(),
    ))
}

#[derive(Template)]
#[template(path = "console/delete.html")]
struct DeletePage {
    title: &'static str,
    nav: Nav,
    app: String,
    device_id: String,
    csrf: String,
    device_href: String,
}

/// `GET /admin/apps/{app}/device/delete?id=`: asks to confirm.
pub async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(q): Query<DeviceQuery>,
) -> PageResult {
    let app = viewer.app(&state, &app)?;
    let d = find(&state, &app.name, &q.id).await?;
    Ok(ok(&DeletePage {
        title: "Delete device",
        nav: Nav::new(&state, &viewer, Some(&app.name)),
        device_href: device_href(&app.name, &d.device_id),
        app: app.name.clone(),
        device_id: d.device_id,
        csrf: viewer.csrf.clone(),
    }))
}

/// The delete form.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Template)]
#[template(path = "console/notice.html")]
struct Notice {
    title: &'static str,
    nav: Nav,
    message: String,
    back_href: String,
    back_label: &'static str,
}

/// `POST /admin/apps/{app}/device/delete`.
pub async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Form(f): Form<DeleteForm>,
) -> PageResult {
    csrf::check(&viewer, &f.csrf)?;
    let app = viewer.app(&state, &app)?;
    match state
        .store
        .delete_device(&app.name, &f.id, OffsetDateTime::now_utc())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(ConsoleError::not_found(format!(
                "no device {:?} in app {:?}",
                f.id, app.name
            )));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(app = %app.name, "console deleted a device");
    Ok(ok(&Notice {
        title: "Device deleted",
        nav: Nav::new(&state, &viewer, Some(&app.name)),
        message: format!(
            "Device {} was deleted; its waiting deliveries failed.",
            f.id
        ),
        back_href: format!("/admin/apps/{}/devices", enc(&app.name)),
        back_label: "Back to the devices",
    }))
}
