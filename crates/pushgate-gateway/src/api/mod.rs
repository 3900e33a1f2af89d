//! The HTTP API. Handlers check input completely and write to the store; they never call a
//! provider (workers do). Every error is JSON with a code, a message naming what is wrong,
//! and the request id.

mod apps;
mod auth;
mod body;
mod c2dm;
mod devices;
mod error;
mod events;
mod health;
mod messages;
mod request_id;
mod views;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};
use pushgate_store::Store;

pub use auth::{AppInfo, Apps};
pub use c2dm::{REGISTRATION_TOKEN_KEY, REGISTRATION_TOKEN_LEN};
pub use error::{ApiError, ApiResult};
pub use events::event_view;

use crate::config::{ApiLimits, DeliverySettings};
use crate::metrics::Metrics;
use crate::signal::EventSignal;
use crate::worker::ChannelSet;

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
    pub signal: EventSignal,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Apps with a webhook (for metrics).
    pub webhook_apps: Vec<String>,
    /// Each webhook's URL, by app.
    pub webhook_urls: Arc<HashMap<String, String>>,
}

/// Every route of the API over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/apps/{app}", get(apps::get))
        .route("/v1/apps/{app}/events", get(events::list))
        .route("/v1/apps/{app}/events/stream", get(events::stream))
        .route("/v1/apps/{app}/webhook", get(health::webhook))
        .route("/v1/apps/{app}/devices", get(devices::list))
        .route("/v1/apps/{app}/devices:import", post(devices::import))
        .route(
            "/v1/apps/{app}/devices/{device_id}",
            put(devices::put).get(devices::get).delete(devices::delete),
        )
        .route("/v1/apps/{app}/messages", post(messages::send))
        .route("/v1/apps/{app}/messages/{id}", get(messages::get_in_app))
        .route("/v1/messages/{id}", get(messages::get))
        .route("/c2dm/registration", any(c2dm::registration_default))
        .route("/c2dm/confirmation", any(c2dm::confirmation_default))
        .route(
            "/v1/apps/{app}/c2dm/registration",
            any(c2dm::registration_in_app),
        )
        .route(
            "/v1/apps/{app}/c2dm/confirmation",
            any(c2dm::confirmation_in_app),
        )
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
