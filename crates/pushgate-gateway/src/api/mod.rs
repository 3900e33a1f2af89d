//! The HTTP API. Handlers check input completely and write to the store; they never call a
//! provider (workers do). Every error is JSON with a code, a message naming what is wrong,
//! and the request id.

mod admin;
mod apps;
pub(crate) mod auth;
mod body;
mod c2dm_flow;
mod device_bodies;
pub(crate) mod devices;
pub mod doc_rules;
mod error;
pub(crate) mod events;
mod health;
pub(crate) mod messages;
mod query;
mod request_id;
pub(crate) mod views;
mod webhook;

use std::sync::Arc;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use pushgate_store::Store;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{AppInfo, Apps};
pub use error::{ApiError, ApiResult};
pub use events::event_view;

use crate::config::{ApiLimits, DeliverySettings, MetricsAccess};
use crate::event_wakeup::EventWakeup;
use crate::metrics::Metrics;
use crate::worker::ChannelSet;

/// Page size of every list when `limit` is not given.
pub const PAGE_DEFAULT: u32 = 100;
/// Largest `limit` of every list.
pub const PAGE_MAX: u32 = 1000;

/// The page size a list was asked for: 1 to `PAGE_MAX`, `PAGE_DEFAULT` when not given.
pub(crate) fn page_limit(requested: Option<u32>) -> ApiResult<u32> {
    let limit = requested.unwrap_or(PAGE_DEFAULT);
    if (1..=PAGE_MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {PAGE_MAX}"),
        ))
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The durable state.
    pub store: Arc<dyn Store>,
    /// Apps and their keys.
    pub apps: Arc<Apps>,
    /// Channels (for payload checks, wake-ups and status).
    pub channels: ChannelSet,
    /// Body and list limits.
    pub limits: ApiLimits,
    /// Delivery settings (default TTL).
    pub delivery: DeliverySettings,
    /// Wakes event followers (the SSE stream).
    pub events_wakeup: EventWakeup,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The generated OpenAPI document, set when the router is built; the per-app bounds are
    /// filled in at each request, so that they follow a reload.
    pub openapi: Arc<OnceLock<serde_json::Value>>,
    /// Who may read `/metrics` on this listener.
    pub metrics_access: MetricsAccess,
    /// The admin console's keys, sessions and webhook nudges.
    pub console: Arc<crate::console::Console>,
    /// Applies a re-read configuration (`POST /v1/admin/reload`); `None` answers 409.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
    /// How long history is kept (to explain a message deleted by retention).
    pub retention: Arc<crate::config::RetentionSettings>,
}

/// Adds the bearer-key security scheme the operations name.
struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The app's API key"))
                    .build(),
            ),
        );
    }
}

/// The parts of the document not generated from routed handlers: the C2DM-era endpoints
/// (routed for every method, to answer 501) and the document's own metadata.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "pushgate",
        description = "Self-hosted push gateway for Google's push services: device registry, durable sends, events."
    ),
    paths(
        c2dm_flow::registration_default,
        c2dm_flow::registration_in_app,
        c2dm_flow::confirmation_default,
        c2dm_flow::confirmation_in_app
    ),
    modifiers(&BearerKey),
    tags(
        (name = "devices", description = "The device registry"),
        (name = "messages", description = "Sending, and what became of each delivery"),
        (name = "events", description = "What the provider changed and what devices sent: log, stream, webhook"),
        (name = "apps", description = "Apps and their channels"),
        (name = "admin", description = "Operating the gateway; takes an admin key"),
        (name = "c2dm", description = "The C2DM-era registration flow (django-c2dm), for old clients; no API key"),
        (name = "operations", description = "Health, readiness, metrics, this document")
    )
)]
struct ApiDoc;

/// `GET /openapi.json`: this API, generated from the handlers and the types they answer.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    let mut doc = state.openapi.get().cloned().unwrap_or_default();
    doc_rules::apply(&mut doc, &state);
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    ([(http::header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// The routes of the metrics listener (`metrics_listen`): `/metrics` and `/healthz`, no key.
pub fn metrics_router(mut state: AppState) -> Router {
    state.metrics_access = MetricsAccess::default();
    Router::new()
        .route("/metrics", axum::routing::get(health::metrics))
        .route("/healthz", axum::routing::get(health::healthz))
        .fallback(|| async { ApiError::not_found("this listener serves /metrics only") })
        .with_state(state)
}

/// Every route of the API over `state`; every one of them is in `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_body_bytes;
    let (routes, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(apps::get))
        .routes(routes!(events::list))
        .routes(routes!(events::stream))
        .routes(routes!(webhook::state))
        .routes(routes!(devices::list))
        .routes(routes!(devices::import))
        .routes(routes!(devices::put, devices::get, devices::delete))
        .routes(routes!(messages::send))
        .routes(routes!(messages::get_in_app))
        .routes(routes!(messages::get))
        .routes(routes!(admin::reload))
        .split_for_parts();
    let _ = state
        .openapi
        .set(serde_json::to_value(&doc).unwrap_or_default());
    routes
        .route("/c2dm/registration", any(c2dm_flow::registration_default))
        .route("/c2dm/confirmation", any(c2dm_flow::confirmation_default))
        .route(
            "/v1/apps/{app}/c2dm/registration",
            any(c2dm_flow::registration_in_app),
        )
        .route(
            "/v1/apps/{app}/c2dm/confirmation",
            any(c2dm_flow::confirmation_in_app),
        )
        .merge(crate::console::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        // JsonBody enforces the real limit with a JSON error; this only stops axum's own.
        .layer(DefaultBodyLimit::max(limit.saturating_add(1)))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track_http,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn(request_id::attach))
}
