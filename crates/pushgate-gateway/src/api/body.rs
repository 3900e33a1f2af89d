//! Reading request bodies strictly: JSON only, within the size limit, with JSON errors for
//! anything else (axum's own rejections are plain text).

use axum::extract::{FromRef, FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;

use super::AppState;
use super::error::ApiError;

/// A JSON request body, read whole (at most `limits.max_body_bytes`).
pub struct JsonBody(pub Bytes);

impl<S> FromRequest<S> for JsonBody
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let limit = state.limits.max_body_bytes;
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let deadline = state.limits.body_read_timeout;
        let read = axum::body::to_bytes(req.into_body(), limit);
        match tokio::time::timeout(deadline, read).await {
            Ok(Ok(bytes)) => Ok(JsonBody(bytes)),
            Ok(Err(e)) if is_too_large(&e) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than the limit of {limit} bytes"),
            )),
            Ok(Err(_)) => Err(ApiError::invalid("body", "the body could not be read")),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the body did not arrive within {deadline:?}"),
            )),
        }
    }
}

/// True when reading stopped at the size limit (rather than, say, a dropped connection).
fn is_too_large(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Reads `bytes` as `T` with errors that name the field by its path.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(crate::strict_json::from_slice(bytes)?)
}
