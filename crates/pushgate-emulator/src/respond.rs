//! Building responses with the exact content types Google's servers used.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// `Content-Type` of legacy JSON answers.
pub(crate) const JSON_UTF8: &str = "application/json; charset=UTF-8";
/// `Content-Type` of plain-text answers and of 400/5xx texts.
pub(crate) const TEXT_UTF8: &str = "text/plain; charset=UTF-8";
/// `Content-Type` of the front end's HTML error pages (401, 405).
pub(crate) const HTML_UTF8: &str = "text/html; charset=UTF-8";

/// A response with `status`, `content_type` and `body`.
pub(crate) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    with_body(status, TEXT_UTF8, body)
}

/// A JSON response from already-serialised bytes.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    with_body(status, JSON_UTF8, body)
}

/// A JSON response from a serialisable value (500 text if it cannot be serialised, which
/// only a bug can cause).
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a response");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

/// The HTML error page of Google's front end, `title` in `<TITLE>` and `<H1>`.
pub(crate) fn html_error_page(status: StatusCode, title: &str) -> String {
    format!(
        "<HTML>\n<HEAD>\n<TITLE>{title}</TITLE>\n</HEAD>\n<BODY BGCOLOR=\"#FFFFFF\" TEXT=\"#000000\">\n<H1>{title}</H1>\n<H2>Error {}</H2>\n</BODY>\n</HTML>\n",
        status.as_u16()
    )
}

/// Sets `Retry-After` when `value` is a valid header value.
pub(crate) fn set_retry_after(response: &mut Response, value: Option<&str>) {
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
}
