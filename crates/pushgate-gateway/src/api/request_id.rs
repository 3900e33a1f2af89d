//! Request ids: taken from `X-Request-Id` when the caller sends a sane one, made up
//! otherwise; returned in the header, put on the request's log span, and added to every
//! JSON error body so a caller can quote it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;
use uuid::Uuid;

/// Longest request id taken from a caller.
const MAX_LEN: usize = 128;
/// Largest error body rewritten to carry the id.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The middleware.
pub async fn attach(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), "request done");
        }
    });
    with_id(response, &id).await
}

async fn with_id(response: Response, id: &str) -> Response {
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let (mut parts, body) = response.into_parts();
    if let Ok(v) = HeaderValue::from_str(id) {
        parts.headers.insert("x-request-id", v);
    }
    if !(parts.status.is_client_error() || parts.status.is_server_error()) || !is_json {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => b,
        Err(_) => return Response::from_parts(parts, axum::body::Body::empty()),
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert(
                "request_id".into(),
                serde_json::Value::String(id.to_string()),
            );
            parts.headers.remove(http::header::CONTENT_LENGTH);
            axum::body::Body::from(serde_json::Value::Object(map).to_string())
        }
        _ => axum::body::Body::from(bytes),
    };
    Response::from_parts(parts, body)
}
