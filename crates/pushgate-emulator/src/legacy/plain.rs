//! The plain-text (form) form of a legacy send: one `registration_id`, `id=` / `Error=`
//! lines back, and HTTP 5xx where JSON would say `Unavailable` (docs/protocols.md,
//! "Legacy HTTP: plain text").

use std::sync::Arc;

use http::StatusCode;
use pushgate_proto::legacy::limits::{MAX_DATA_BYTES, MAX_TTL_SECONDS};
use pushgate_proto::legacy::{ErrorCode, PlainTextRequest, PlainTextResponse};
use pushgate_proto::token::short_token;

use super::send::{RecipientOutcome, Sender, message_error};
use super::{Endpoint, Handled, fault_response};
use crate::devices::{Payload, Via};
use crate::respond::{set_retry_after, text};
use crate::state::Inner;

const KIND: &str = "legacy-plain";

/// A plain-text send from parse to answer.
pub(super) fn send(
    state: &Inner,
    endpoint: Endpoint,
    sender_id: &Arc<str>,
    body: &[u8],
) -> Handled {
    let Ok(form) = std::str::from_utf8(body) else {
        return Handled::new(
            text(StatusCode::BAD_REQUEST, "Malformed form body: not UTF-8\n"),
            KIND,
        )
        .note("form body not UTF-8");
    };
    let (request, ttl_ok) = match read_form(form) {
        Ok(read) => read,
        Err(problem) => {
            return Handled::new(text(StatusCode::BAD_REQUEST, format!("{problem}\n")), KIND)
                .note(problem);
        }
    };
    let mut delay = None;
    if let Some(fault) = state
        .faults
        .take_request(endpoint.path(), |t| t == request.registration_id)
    {
        if let Some(status) = fault.status {
            let mut handled = fault_response(&fault, status, KIND);
            handled.recipients = 1;
            return handled;
        }
        delay = fault.delay;
    }
    let mut handled = if request.registration_id.is_empty() {
        let body = PlainTextResponse::Error(ErrorCode::MissingRegistration).to_body();
        Handled::new(text(StatusCode::OK, body), KIND)
    } else {
        deliver(state, endpoint, sender_id, request, ttl_ok)
    };
    handled.recipients = 1;
    handled.delay = handled.delay.max(delay);
    handled
}

/// The request and whether its TTL is usable. A TTL that is not an integer in range is a
/// per-recipient `InvalidTtl`, so the rest of the form is still read.
fn read_form(form: &str) -> Result<(PlainTextRequest, bool), String> {
    match PlainTextRequest::from_form(form) {
        Ok(request) => {
            let ttl_ok = request.time_to_live.is_none_or(|t| t <= MAX_TTL_SECONDS);
            Ok((request, ttl_ok))
        }
        Err(e) if e.field == "time_to_live" => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(form)
                .map_err(|e| format!("Malformed form body: {e}"))?;
            let rest: Vec<(String, String)> = pairs
                .into_iter()
                .filter(|(k, _)| k != "time_to_live")
                .collect();
            let rest = serde_urlencoded::to_string(rest)
                .map_err(|e| format!("Malformed form body: {e}"))?;
            PlainTextRequest::from_form(&rest)
                .map(|request| (request, false))
                .map_err(|e| format!("Malformed form body: {e}"))
        }
        Err(e) => Err(format!("Malformed form body: {e}")),
    }
}

fn deliver(
    state: &Inner,
    endpoint: Endpoint,
    sender_id: &Arc<str>,
    request: PlainTextRequest,
    ttl_ok: bool,
) -> Handled {
    let data_bytes = request.data.iter().map(|(k, v)| k.len() + v.len()).sum();
    let error = message_error(
        request.data.keys().map(String::as_str),
        data_bytes,
        MAX_DATA_BYTES,
        ttl_ok,
    );
    let payload = Payload {
        from: Some(sender_id.clone()),
        data: request.data.into_iter().collect(),
        notification: None,
        collapse_key: request.collapse_key,
        priority: None,
        time_to_live: request.time_to_live.filter(|_| ttl_ok),
        delay_while_idle: request.delay_while_idle.then_some(true),
        content_available: None,
        mutable_content: None,
        ..Default::default()
    }
    .seal();
    let mut sender = Sender::new(
        state,
        sender_id,
        endpoint.path(),
        Via::LegacyPlain,
        Arc::new(payload),
        error,
        request.restricted_package_name.as_deref(),
        request.dry_run,
    );
    let outcome = sender.send(&request.registration_id);
    state.stats.delivered(sender.delivered);
    tracing::debug!(
        sender = %sender_id,
        token = %short_token(&request.registration_id),
        delivered = sender.delivered,
        "legacy plain-text send"
    );
    let mut response = match outcome {
        RecipientOutcome::Delivered {
            message_id,
            canonical,
        } => text(
            StatusCode::OK,
            PlainTextResponse::Id {
                message_id,
                canonical: canonical.map(|c| c.to_string()),
            }
            .to_body(),
        ),
        // Plain text never says Error=Unavailable: the service answered with a 5xx.
        RecipientOutcome::Failed(ErrorCode::Unavailable) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "Unavailable\n")
        }
        RecipientOutcome::Failed(ErrorCode::InternalServerError) => {
            text(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError\n")
        }
        RecipientOutcome::Failed(code) => {
            text(StatusCode::OK, PlainTextResponse::Error(code).to_body())
        }
    };
    set_retry_after(&mut response, sender.retry_after.as_deref());
    let mut handled = Handled::new(response, KIND);
    handled.delay = sender.delay;
    handled
}
