//! The two C2DM handlers: ClientLogin and `/c2dm/send` (docs/protocols.md, "C2DM: ClientLogin",
//! "C2DM: send", "C2DM: responses").
//!
//! Send order: `GoogleLogin auth=` (401), injected request faults on `/c2dm/send` (503 +
//! `Retry-After`), form, `MissingRegistration`, `MissingCollapseKey`, `MessageTooBig`, the
//! registration id, recipient faults, quotas, delivery. Every answer is `text/plain`; any
//! answer for an account with a freshly rotated token carries `Update-Client-Auth`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pushgate_proto::c2dm::{
    C2dmRequest, ClientLoginRequest, ClientLoginResponse, MAX_PAYLOAD_BYTES, SERVICE,
    UPDATE_CLIENT_AUTH,
};
use pushgate_proto::legacy::{ErrorCode, PlainTextResponse};

use super::quotas::QuotaHit;
use super::{LOGIN_PATH, SEND_PATH, random_text};
use crate::activity::ActivityEntry;
use crate::devices::{DeliverResult, DeviceKind, Payload, StoredMessage, Via};
use crate::legacy;
use crate::recipient::{self, Expected, Recipient};
use crate::respond::{set_retry_after, text};
use crate::state::{EmulatorState, Inner};
use crate::time::{now_micros, now_ms};

fn record(inner: &Inner, path: &'static str, status: StatusCode, note: Option<String>) {
    inner.stats.request();
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path,
        status: status.as_u16(),
        recipients: usize::from(path == SEND_PATH),
        kind: "c2dm",
        note,
    });
}

fn login_error(code: &str) -> Response {
    let body = ClientLoginResponse::Error {
        code: code.to_string(),
        url: None,
        captcha_token: None,
        captcha_url: None,
    }
    .to_body();
    text(StatusCode::FORBIDDEN, body)
}

/// `POST /accounts/ClientLogin`: `SID=`/`LSID=`/`Auth=` or 403 `Error=`.
pub(super) async fn client_login(State(state): State<EmulatorState>, body: Bytes) -> Response {
    let inner = state.get();
    inner.c2dm.logins.fetch_add(1, Ordering::Relaxed);
    let form = String::from_utf8_lossy(&body);
    let (response, note) = match ClientLoginRequest::from_form(&form) {
        Err(_) => (login_error("BadAuthentication"), "bad form"),
        Ok(request) => match inner.c2dm.accounts.login(&request.email, &request.passwd) {
            None => (login_error("BadAuthentication"), "bad credentials"),
            Some(_) if request.service != SERVICE => {
                (login_error("ServiceDisabled"), "service is not ac2dm")
            }
            Some(auth) => {
                let body = ClientLoginResponse::Tokens {
                    sid: format!("DQAAA{}", random_text(100)),
                    lsid: format!("DQAAA{}", random_text(100)),
                    auth,
                }
                .to_body();
                (text(StatusCode::OK, body), "login")
            }
        },
    };
    record(inner, LOGIN_PATH, response.status(), Some(note.to_string()));
    response
}

/// The token of `Authorization: GoogleLogin auth=<token>`.
fn google_login(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("GoogleLogin") {
        return None;
    }
    let token = rest.trim().strip_prefix("auth=")?.trim();
    (!token.is_empty()).then_some(token)
}

/// `POST /c2dm/send`.
pub(super) async fn send(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = state.get();
    inner.c2dm.sends.fetch_add(1, Ordering::Relaxed);
    let Some(account) = google_login(&headers).and_then(|t| inner.c2dm.accounts.check(t)) else {
        let response = text(StatusCode::UNAUTHORIZED, "Error=Unauthorized\n");
        record(
            inner,
            SEND_PATH,
            response.status(),
            Some("unauthorized".into()),
        );
        return response;
    };
    let (mut response, delay, note) = process(inner, &account.sender_id, &body);
    if let Some(new) = inner.c2dm.accounts.take_announcement(&account.email)
        && let Ok(value) = HeaderValue::from_str(&new)
    {
        response.headers_mut().insert(UPDATE_CLIENT_AUTH, value);
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    record(inner, SEND_PATH, response.status(), note);
    response
}

fn error_answer(code: ErrorCode) -> Response {
    text(StatusCode::OK, PlainTextResponse::Error(code).to_body())
}

type Processed = (Response, Option<std::time::Duration>, Option<String>);

fn process(inner: &Inner, sender_id: &Arc<str>, body: &[u8]) -> Processed {
    let form = String::from_utf8_lossy(body);
    let request = match C2dmRequest::from_form(&form) {
        Ok(r) => r,
        Err(e) => {
            return (
                text(StatusCode::BAD_REQUEST, format!("{e}\n")),
                None,
                Some("bad form".into()),
            );
        }
    };
    let mut delay = None;
    if let Some(fault) = inner
        .faults
        .take_request(SEND_PATH, |t| t == request.registration_id)
    {
        if let Some(status) = fault.status {
            let body = match &fault.error {
                Some(code) => format!("Error={code}\n"),
                None => String::new(),
            };
            let mut response = text(status, body);
            set_retry_after(&mut response, fault.retry_after.as_deref());
            return (response, fault.delay, Some("injected fault".into()));
        }
        delay = fault.delay;
    }
    let (response, note) = match deliver(inner, sender_id, request) {
        Ok(id) => (
            text(
                StatusCode::OK,
                PlainTextResponse::Id {
                    message_id: id,
                    canonical: None,
                }
                .to_body(),
            ),
            None,
        ),
        Err(code) => {
            let note = code.as_str().to_string();
            (error_answer(code), Some(note))
        }
    };
    (response, delay, note)
}

fn deliver(inner: &Inner, sender_id: &Arc<str>, request: C2dmRequest) -> Result<String, ErrorCode> {
    let id = request.registration_id.as_str();
    if id.is_empty() {
        return Err(ErrorCode::MissingRegistration);
    }
    if request.collapse_key.as_deref().unwrap_or("").is_empty() {
        return Err(ErrorCode::MissingCollapseKey);
    }
    if request.payload_bytes() > MAX_PAYLOAD_BYTES {
        return Err(ErrorCode::MessageTooBig);
    }
    let Recipient {
        token: shared,
        device,
    } = recipient::check(
        &inner.devices,
        Expected::new(DeviceKind::C2dm, sender_id),
        id,
    )
    .map_err(legacy::send::error_code)?;
    if let Some(fault) = inner.faults.take_recipient(SEND_PATH, id) {
        return Err(fault.error);
    }
    let now_micros = now_micros();
    let now_ms = now_micros / 1000;
    inner
        .c2dm
        .quotas
        .take(sender_id, device.id, now_ms)
        .map_err(|hit| match hit {
            QuotaHit::Sender => ErrorCode::QuotaExceeded,
            QuotaHit::Device => ErrorCode::DeviceQuotaExceeded,
        })?;
    let payload = Payload {
        from: Some(sender_id.clone()),
        data: request.data.into_iter().collect(),
        collapse_key: request.collapse_key,
        delay_while_idle: request.delay_while_idle.then_some(true),
        ..Default::default()
    }
    .seal();
    let payload = Arc::new(payload);
    let message_id = inner.ids.message_id(now_micros);
    let stored = StoredMessage {
        message_id,
        token: shared,
        via: Via::C2dm,
        received_at_ms: now_ms,
        payload: payload.clone(),
    };
    match device.deliver(stored, inner.inbox_limit) {
        DeliverResult::RateLimited => Err(ErrorCode::DeviceQuotaExceeded),
        DeliverResult::Stored { copies } => {
            inner.stats.delivered(1);
            if copies > 1 {
                inner.stats.duplicate(&device, payload.hash, copies);
            }
            Ok(message_id.to_string())
        }
    }
}
