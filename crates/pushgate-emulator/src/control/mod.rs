//! The control API under `/emulator/`, one module per resource; [`routes`] lists every route.
//!
//! JSON in and out; bad input gets a 400 `{"error": "..."}` that names the field, unknown
//! tokens a 404.
//!
//! * [`senders`]: legacy senders (`POST /senders`);
//! * [`devices`]: virtual devices, their inboxes, uninstall and token rotation;
//! * [`faults`]: injected faults;
//! * [`stats`]: the activity log and counters;
//! * [`topics`]: who is subscribed to a topic;
//! * [`v1`]: FCM v1 projects, their quotas, and the access-token lifetime;
//! * [`c2dm`]: C2DM accounts, quotas and auth-token rotation;
//! * [`ccs`]: CCS connections, settings, and upstream messages from devices;
//! * [`fields`]: the field-by-field body reader the hand-checked routes share.

mod c2dm;
mod ccs;
mod devices;
mod faults;
mod fields;
mod senders;
mod stats;
mod topics;
mod v1;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use serde_json::json;

use crate::respond;
use crate::state::EmulatorState;

/// Where the control API is mounted.
const PREFIX: &str = "/emulator";

/// Every control route, mounted under `/emulator`: the one list of the control API.
pub(crate) fn routes() -> Router<EmulatorState> {
    let api = Router::new()
        // Senders and virtual devices.
        .route("/senders", post(senders::add))
        .route("/devices", post(devices::create))
        .route("/devices/{token}", get(devices::show))
        .route("/devices/{token}/messages", get(devices::messages))
        .route("/devices/{token}/uninstall", post(devices::uninstall))
        .route("/devices/{token}/rotate", post(devices::rotate))
        .route("/devices/{token}/upstream", post(ccs::upstream))
        // Fault injection.
        .route(
            "/faults",
            post(faults::add).get(faults::list).delete(faults::clear),
        )
        // What happened so far.
        .route("/activity", get(stats::activity))
        .route("/stats", get(stats::stats))
        .route("/topics/{name}", get(topics::subscribers))
        .route("/reset", post(reset))
        // FCM v1 and OAuth.
        .route("/projects", post(v1::create_project))
        .route("/projects/{project}/key", get(v1::key_file))
        .route("/projects/{project}/quota", put(v1::set_quota))
        .route("/oauth", put(v1::set_oauth))
        // C2DM.
        .route("/c2dm/accounts", post(c2dm::add_account))
        .route("/c2dm/quotas", put(c2dm::set_quotas))
        .route("/c2dm/rotate-auth", post(c2dm::rotate_auth))
        // CCS (XMPP).
        .route("/xmpp/drain", post(ccs::drain))
        .route("/xmpp/kill", post(ccs::kill))
        .route("/xmpp/connections", get(ccs::connections))
        .route("/xmpp/senders/{sender_id}", get(ccs::sender))
        .route("/xmpp/settings", get(ccs::settings).post(ccs::set_settings));
    Router::new().nest(PREFIX, api)
}

/// Why a control call was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    /// Bad input; the text names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No such token, project or C2DM account.
    #[error("{0}")]
    NotFound(String),
    /// Clashes with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The emulator could not do its part.
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        respond::json(status, &json!({ "error": self.to_string() }))
    }
}

/// What a control handler answers: its response, or why it refused.
type ControlResult = Result<Response, ControlError>;

/// `POST /emulator/reset`: back to a fresh emulator (default sender only, no device).
async fn reset(State(state): State<EmulatorState>) -> Response {
    state.reset();
    tracing::info!("emulator reset");
    respond::json(StatusCode::OK, &json!({ "reset": true }))
}
