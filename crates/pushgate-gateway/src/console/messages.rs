//! A message's page: what was sent, counts by delivery state and each delivery's result,
//! refreshing itself until every delivery is final. Another app's message is a 404, like an
//! unknown one.

use askama::Template;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::AppState;

use super::page::{ConsoleError, Nav, PageResult, device_href, enc, ok, when};
use super::session::Viewer;

/// Deliveries shown per page.
const PAGE: u32 = 100;
/// Seconds between refreshes while deliveries are pending.
const REFRESH_SECS: u32 = 2;

/// `?cursor=` of the results.
#[derive(Debug, Default, Deserialize)]
pub struct ResultsQuery {
    #[serde(default)]
    cursor: Option<i64>,
}

/// One delivery's row.
struct ResultRow {
    device: String,
    device_href: Option<String>,
    token: String,
    channel: String,
    state: String,
    attempts: i64,
    provider_id: String,
    error: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    title: &'static str,
    nav: Nav,
    app: String,
    id: String,
    created: String,
    ttl: i64,
    payload: String,
    deliveries: u64,
    done: bool,
    refresh: u32,
    counts: Vec<(String, u64)>,
    rows: Vec<ResultRow>,
    next_href: Option<String>,
}

/// `GET /admin/apps/{app}/messages/{id}?cursor=`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<ResultsQuery>,
) -> PageResult {
    let app = viewer.app(&state, &app)?;
    let not_found = || ConsoleError::not_found(format!("no message {id:?} in app {:?}", app.name));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let Some(message) = state
        .store
        .get_message(uuid)
        .await?
        .filter(|m| m.app == app.name)
    else {
        // Say so when retention deleted it, as the API does.
        return Err(
            match crate::api::messages::expired_explanation(&state, &app.name, uuid, &id).await? {
                Some(why) => ConsoleError::not_found(why),
                None => not_found(),
            },
        );
    };
    let summary = state.store.message_summary(uuid).await?;
    let page = state.store.list_deliveries(uuid, q.cursor, PAGE).await?;
    // Done once every delivery is stored (no chunk of a large fan-out left) and final.
    let done = !message.expanding && summary.iter().all(|(s, _)| s.is_final());
    let rows = page
        .items
        .iter()
        .map(|d| ResultRow {
            device: d.device_id.clone().unwrap_or_else(|| "(raw token)".into()),
            device_href: d.device_id.as_deref().map(|id| device_href(&app.name, id)),
            token: d.token.clone(),
            channel: d.channel.clone(),
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            provider_id: d.provider_message_id.clone().unwrap_or_default(),
            error: d.error_code.clone().unwrap_or_default(),
            updated: when(d.updated_at),
        })
        .collect();
    Ok(ok(&MessagePage {
        title: "Message",
        nav: Nav::new(&state, &viewer, Some(&app.name)),
        next_href: page.next_cursor.map(|c| {
            format!(
                "/admin/apps/{}/messages/{}?cursor={c}",
                enc(&app.name),
                message.id
            )
        }),
        app: app.name.clone(),
        id: message.id.to_string(),
        created: when(message.created_at),
        ttl: message.ttl_secs,
        payload: serde_json::to_string_pretty(&message.payload).unwrap_or_default(),
        deliveries: message.deliveries,
        done,
        refresh: REFRESH_SECS,
        counts: summary
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect(),
        rows,
    }))
}
