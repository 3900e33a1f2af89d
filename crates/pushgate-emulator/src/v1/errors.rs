//! The `google.rpc.Status` bodies `messages:send` answers with (docs/protocols.md,
//! "FCM v1: errors"), built on
//! the proto's [`ErrorBody`].

use std::time::Duration;

use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use pushgate_proto::legacy::ErrorCode;
use pushgate_proto::v1::{ErrorBody, FcmErrorCode, Status};
use serde_json::{Value, json};

use crate::respond;

/// `@type` of a field-violation detail.
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// `@type` of an auth-failure detail.
const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// `@type` of a quota detail.
const QUOTA_FAILURE_TYPE: &str = "type.googleapis.com/google.rpc.QuotaFailure";
/// The tail shared by both observed 401 messages.
const EXPECTED_CREDENTIAL: &str = "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
/// What the service says about a malformed token (observed).
pub(crate) const INVALID_TOKEN: &str =
    "The registration token is not a valid FCM registration token";
/// What the service says about a stale token (observed).
pub(crate) const NOT_FOUND: &str = "Requested entity was not found.";

/// A response carrying `body` with its own status code.
pub(crate) fn respond(body: &ErrorBody) -> Response {
    let status = StatusCode::from_u16(body.error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond::json(status, body)
}

/// Adds `Retry-After: <whole seconds, at least 1>`.
pub(crate) fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn status(code: u16, status: &str, message: impl Into<String>, details: Vec<Value>) -> ErrorBody {
    ErrorBody {
        error: Status {
            code,
            message: message.into(),
            status: status.into(),
            details,
        },
    }
}

fn error_info(reason: &str) -> Value {
    json!({
        "@type": ERROR_INFO_TYPE,
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {
            "service": "fcm.googleapis.com",
            "method": "google.firebase.fcm.v1.FcmService.SendMessage"
        }
    })
}

fn bad_request_detail(field: Option<&str>, description: &str) -> Value {
    let violation = match field {
        Some(f) => json!({"field": f, "description": description}),
        None => json!({"description": description}),
    };
    json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": [violation]})
}

/// 401 without any `Authorization: Bearer`.
pub(crate) fn credentials_missing() -> Response {
    let body = status(
        401,
        "UNAUTHENTICATED",
        format!("Request is missing required authentication credential. {EXPECTED_CREDENTIAL}"),
        vec![error_info("CREDENTIALS_MISSING")],
    );
    www_authenticate(respond(&body))
}

/// 401 for a token never issued; with `expired`, for one past its lifetime.
pub(crate) fn invalid_credentials(expired: bool) -> Response {
    let details = if expired {
        vec![error_info("ACCESS_TOKEN_EXPIRED")]
    } else {
        Vec::new()
    };
    let body = status(
        401,
        "UNAUTHENTICATED",
        format!("Request had invalid authentication credentials. {EXPECTED_CREDENTIAL}"),
        details,
    );
    www_authenticate(respond(&body))
}

fn www_authenticate(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    response
}

/// 403: a token of another project.
pub(crate) fn permission_denied(project: &str) -> Response {
    respond(&status(
        403,
        "PERMISSION_DENIED",
        format!(
            "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
        ),
        Vec::new(),
    ))
}

/// 404: no such project (shape unconfirmed, docs/protocols.md, "Emulator checklist: FCM v1": a
/// plain Status, no FcmError,
/// so it cannot be mistaken for `UNREGISTERED`).
pub(crate) fn project_not_found(project: &str) -> Response {
    respond(&status(
        404,
        "NOT_FOUND",
        format!("Project {project} not found. Create it with POST /emulator/projects."),
        Vec::new(),
    ))
}

/// 400 for a body the front end refuses (unknown name, wrong type, bad JSON).
pub(crate) fn invalid_payload(message: &str, field: Option<&str>) -> Response {
    respond(&status(
        400,
        "INVALID_ARGUMENT",
        message,
        vec![bad_request_detail(field, message)],
    ))
}

/// 400 for a message that breaks a rule: BadRequest naming the field plus FcmError.
pub(crate) fn invalid_message(message: &str, field: &str) -> Response {
    let mut body = ErrorBody::fcm(FcmErrorCode::InvalidArgument, message);
    body.error
        .details
        .push(bad_request_detail(Some(field), message));
    respond(&body)
}

/// 429 for the project quota, with the QuotaFailure detail and `Retry-After`.
pub(crate) fn quota_exceeded(project_number: &str, wait: Duration) -> Response {
    let message = format!(
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com' for consumer 'project_number:{project_number}'."
    );
    let mut body = ErrorBody::fcm(FcmErrorCode::QuotaExceeded, message);
    body.error.details.push(json!({
        "@type": QUOTA_FAILURE_TYPE,
        "violations": [{
            "subject": format!("project_number:{project_number}"),
            "description": "Send requests per minute per project"
        }]
    }));
    with_retry_after(respond(&body), wait)
}

/// 429 for a device over its own rate.
pub(crate) fn device_rate_exceeded() -> Response {
    let mut body = ErrorBody::fcm(
        FcmErrorCode::QuotaExceeded,
        "Message rate exceeded for this device.",
    );
    body.error.details.push(json!({
        "@type": QUOTA_FAILURE_TYPE,
        "violations": [{"subject": "device", "description": "Messages per device per minute"}]
    }));
    respond(&body)
}

/// The usual message of each FcmError code.
pub(crate) fn fcm_message(code: FcmErrorCode) -> &'static str {
    match code {
        FcmErrorCode::UnspecifiedError => "Unknown error.",
        FcmErrorCode::InvalidArgument => INVALID_TOKEN,
        FcmErrorCode::Unregistered => NOT_FOUND,
        FcmErrorCode::SenderIdMismatch => "SenderId mismatch",
        FcmErrorCode::QuotaExceeded => "Quota exceeded.",
        FcmErrorCode::Unavailable => "The service is currently unavailable.",
        FcmErrorCode::Internal => "Internal error encountered.",
        FcmErrorCode::ThirdPartyAuthError | FcmErrorCode::ApnsAuthError => {
            "Auth error from APNS or Web Push Service"
        }
    }
}

/// The FcmError body of `code` with its usual message.
pub(crate) fn fcm(code: FcmErrorCode) -> Response {
    respond(&ErrorBody::fcm(code, fcm_message(code)))
}

/// The FcmError code an injected fault names: a v1 name, or a legacy name mapped to its
/// v1 twin (so one fault list serves both protocols).
pub(crate) fn fcm_code_of(error: &ErrorCode) -> FcmErrorCode {
    if let Some(code) = FcmErrorCode::parse(error.as_str()) {
        return code;
    }
    match error {
        ErrorCode::NotRegistered => FcmErrorCode::Unregistered,
        ErrorCode::MismatchSenderId => FcmErrorCode::SenderIdMismatch,
        ErrorCode::InvalidRegistration
        | ErrorCode::InvalidPackageName
        | ErrorCode::MessageTooBig
        | ErrorCode::InvalidDataKey
        | ErrorCode::InvalidTtl
        | ErrorCode::MissingRegistration
        | ErrorCode::InvalidParameters => FcmErrorCode::InvalidArgument,
        ErrorCode::Unavailable => FcmErrorCode::Unavailable,
        ErrorCode::InternalServerError => FcmErrorCode::Internal,
        ErrorCode::DeviceMessageRateExceeded
        | ErrorCode::TopicsMessageRateExceeded
        | ErrorCode::QuotaExceeded => FcmErrorCode::QuotaExceeded,
        ErrorCode::InvalidApnsCredential => FcmErrorCode::ThirdPartyAuthError,
        _ => FcmErrorCode::UnspecifiedError,
    }
}

/// The body of a request-level fault with `status`: 503/500/429 get their FcmError (or the
/// fault's own code when it names one); other statuses a plain Status.
pub(crate) fn fault(status_code: StatusCode, error: Option<&ErrorCode>) -> Response {
    let code = error.map(fcm_code_of).or(match status_code.as_u16() {
        503 => Some(FcmErrorCode::Unavailable),
        500 => Some(FcmErrorCode::Internal),
        429 => Some(FcmErrorCode::QuotaExceeded),
        _ => None,
    });
    let mut body = match code {
        Some(code) => ErrorBody::fcm(code, fcm_message(code)),
        None => status(
            status_code.as_u16(),
            canonical(status_code.as_u16()),
            status_code.canonical_reason().unwrap_or("Error"),
            Vec::new(),
        ),
    };
    body.error.code = status_code.as_u16();
    respond(&body)
}

/// The canonical status name Google uses for an HTTP status.
fn canonical(http: u16) -> &'static str {
    match http {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}
