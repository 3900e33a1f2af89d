//! `GET /emulator/topics/{name}`: who is subscribed to a topic.

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::respond;
use crate::state::EmulatorState;

/// `GET /emulator/topics/{name}` → `{"topic", "subscribers": [{"token", "sender_id",
/// "state", "add_date"}]}` (canonical tokens).
pub(super) async fn subscribers(
    State(state): State<EmulatorState>,
    Path(name): Path<String>,
) -> Response {
    let inner = state.get();
    let subscribers: Vec<Value> = inner
        .topics
        .subscribers(&name)
        .into_iter()
        .map(|d| {
            let add_date = inner.topics.topics_of(&d).remove(&name);
            json!({
                "token": &*d.canonical(),
                "sender_id": &*d.sender_id,
                "state": if d.is_uninstalled() { "uninstalled" } else { "active" },
                "add_date": add_date,
            })
        })
        .collect();
    respond::json(
        StatusCode::OK,
        &json!({ "topic": name, "count": subscribers.len(), "subscribers": subscribers }),
    )
}
