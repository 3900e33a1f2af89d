//! Control routes of the CCS part, under `/emulator`:
//!
//! * `POST /devices/{token}/upstream` `{"data":{…},"category"?,"message_id"?,"time_to_live"?}`:
//!   the device sends an upstream message to its sender's app server;
//! * `POST /xmpp/drain` `{"sender_id"?}`: `CONNECTION_DRAINING` on every connection of the
//!   sender, nacks for further downstream there, close after the grace period;
//! * `POST /xmpp/kill` `{"sender_id"?}`: drop every connection of the sender abruptly;
//! * `GET /xmpp/connections`: open connections with their pending counts;
//! * `GET /xmpp/senders/{sender_id}`: open connections and unacked upstream of one sender;
//! * `GET|POST /xmpp/settings` `{"max_pending"?,"ack_delay_ms"?,"drain_grace_ms"?}`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use pushgate_proto::ccs::{ServerMessage, UpstreamMessage};
use pushgate_proto::token::short_token;
use pushgate_xmpp::GcmMessage;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::ControlError;
use super::fields::json_body;
use crate::DEFAULT_SENDER_ID;
use crate::ccs::CcsStats;
use crate::ccs::hub::{Dispatch, Outbound};
use crate::respond;
use crate::state::EmulatorState;

/// Longest delay or grace the settings accept (ten minutes).
const MAX_MS: u64 = 600_000;

/// A body of a fixed shape; empty (or only whitespace) means every field left out.
fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ControlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(body, "body")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamBody {
    data: Option<Map<String, Value>>,
    category: Option<String>,
    message_id: Option<String>,
    time_to_live: Option<u64>,
}

/// The device sends an upstream message to its sender's app server.
pub(super) async fn upstream(
    State(state): State<EmulatorState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let body: UpstreamBody = parse(&body)?;
    let inner = state.get();
    let (shared_token, device) = inner
        .devices
        .lookup(&token)
        .ok_or_else(|| ControlError::NotFound(format!("token: no device has token {token:?}")))?;
    let message_id = match body.message_id {
        Some(id) if id.is_empty() => {
            return Err(ControlError::BadRequest(
                "message_id: must not be empty".into(),
            ));
        }
        Some(id) => id,
        None => format!("m-{:016x}", rand::random::<u64>()),
    };
    let json = ServerMessage::Upstream(UpstreamMessage {
        category: Some(body.category.unwrap_or_else(|| device.package.to_string())),
        data: body.data.unwrap_or_default(),
        message_id: message_id.clone(),
        from: shared_token.to_string(),
        time_to_live: body.time_to_live,
    })
    .to_json();
    let xml = GcmMessage::new(json).with_type("normal").to_xml();
    let ccs = &inner.ccs;
    CcsStats::add(&ccs.stats.upstream_injected);
    let dispatch = ccs.hub.enqueue(
        &device.sender_id,
        Arc::from(message_id.as_str()),
        Arc::from(xml),
        false,
    );
    if dispatch == Dispatch::Sent {
        CcsStats::add(&ccs.stats.upstream_sent);
    }
    tracing::info!(token = %short_token(&token), %message_id, "upstream message injected");
    Ok(respond::json(
        StatusCode::ACCEPTED,
        &json!({
            "message_id": message_id,
            "sender_id": &*device.sender_id,
            "sent": dispatch == Dispatch::Sent,
        }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SenderBody {
    sender_id: Option<String>,
}

/// `CONNECTION_DRAINING` on every connection of the sender.
pub(super) async fn drain(
    State(state): State<EmulatorState>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let body: SenderBody = parse(&body)?;
    let sender = body.sender_id.unwrap_or_else(|| DEFAULT_SENDER_ID.into());
    let ccs = &state.get().ccs;
    let conns = ccs.hub.connections(&sender);
    for c in &conns {
        // Set at once so downstream racing with the control message is nacked too.
        c.draining.store(true, Ordering::Relaxed);
        let _ = c.tx.send(Outbound::Drain);
        CcsStats::add(&ccs.stats.drained);
    }
    tracing::info!(%sender, connections = conns.len(), "CCS connections draining");
    Ok(respond::json(
        StatusCode::OK,
        &json!({"sender_id": sender, "connections": conns.len()}),
    ))
}

/// Drops every connection of the sender abruptly.
pub(super) async fn kill(
    State(state): State<EmulatorState>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let body: SenderBody = parse(&body)?;
    let sender = body.sender_id.unwrap_or_else(|| DEFAULT_SENDER_ID.into());
    let ccs = &state.get().ccs;
    let conns = ccs.hub.connections(&sender);
    for c in &conns {
        c.kill.notify_one();
        CcsStats::add(&ccs.stats.killed);
    }
    tracing::info!(%sender, connections = conns.len(), "CCS connections killed");
    Ok(respond::json(
        StatusCode::OK,
        &json!({"sender_id": sender, "connections": conns.len()}),
    ))
}

/// Open connections with their pending counts.
pub(super) async fn connections(State(state): State<EmulatorState>) -> Response {
    respond::json(
        StatusCode::OK,
        &json!({"connections": state.get().ccs.hub.views()}),
    )
}

/// Open connections and unacked upstream of one sender.
pub(super) async fn sender(
    State(state): State<EmulatorState>,
    Path(sender_id): Path<String>,
) -> Response {
    let hub = &state.get().ccs.hub;
    respond::json(
        StatusCode::OK,
        &json!({
            "sender_id": sender_id,
            "connections": hub.connections(&sender_id).len(),
            "unacked_upstream": hub.unacked(&sender_id),
        }),
    )
}

/// The CCS settings in force.
pub(super) async fn settings(State(state): State<EmulatorState>) -> Response {
    respond::json(StatusCode::OK, &state.get().ccs.settings.view())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    max_pending: Option<usize>,
    ack_delay_ms: Option<u64>,
    drain_grace_ms: Option<u64>,
}

/// Changes some CCS settings; answers them all.
pub(super) async fn set_settings(
    State(state): State<EmulatorState>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let body: SettingsBody = parse(&body)?;
    if body.max_pending == Some(0) {
        return Err(ControlError::BadRequest(
            "max_pending: must be at least 1".into(),
        ));
    }
    for (name, v) in [
        ("ack_delay_ms", body.ack_delay_ms),
        ("drain_grace_ms", body.drain_grace_ms),
    ] {
        if v.is_some_and(|v| v > MAX_MS) {
            return Err(ControlError::BadRequest(format!(
                "{name}: must be at most {MAX_MS}"
            )));
        }
    }
    let live = &state.get().ccs.settings;
    live.set(body.max_pending, body.ack_delay_ms, body.drain_grace_ms);
    tracing::info!(settings = %live.view(), "CCS settings changed");
    Ok(respond::json(StatusCode::OK, &live.view()))
}
