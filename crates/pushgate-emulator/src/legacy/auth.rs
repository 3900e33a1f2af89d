//! `Authorization: key=<api key>` checking and the front end's HTML 401 and 405 pages
//! (docs/protocols.md, "Legacy HTTP: authentication", "Legacy HTTP: status codes").

use std::sync::Arc;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::ext::ReasonPhrase;

use super::Endpoint;
use crate::respond::{HTML_UTF8, html_error_page, with_body};
use crate::senders::Senders;

/// FCM's reason phrase and title when the key is missing (observed 2019).
const FCM_MISSING_KEY: &str = "The request was missing an Authentication Key (FCM Token). Please, refer to section \"Authentication\" of the FCM documentation, at https://firebase.google.com/docs/cloud-messaging/server.";
/// FCM's reason phrase and title for a key it does not accept (observed 2016).
const FCM_INVALID_KEY: &str =
    "Invalid (legacy) Server-key delivered or Sender is not authorized to perform request.";

/// The sender id of the request's API key, or the 401 page to answer with.
// The error is the response itself: it is returned as is, and boxing it would cost an
// allocation on a path that only failing callers take.
#[allow(clippy::result_large_err)]
pub(crate) fn authenticate(
    senders: &Senders,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<Arc<str>, Response> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(api_key);
    let Some(key) = key else {
        tracing::debug!(path = endpoint.path(), "legacy send without an API key");
        return Err(unauthorized(endpoint, FCM_MISSING_KEY));
    };
    match senders.sender_for_key(key) {
        Some(sender) => Ok(sender),
        None => {
            tracing::debug!(
                path = endpoint.path(),
                "legacy send with an unknown API key"
            );
            Err(unauthorized(endpoint, FCM_INVALID_KEY))
        }
    }
}

/// The key of `key=<api key>`; `None` when the header has another form or no key.
fn api_key(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, key) = value.split_at_checked(4)?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("key=") && !key.is_empty()).then_some(key)
}

/// 401: the generic page on `/gcm/send`, FCM's specific wording on `/fcm/send`.
fn unauthorized(endpoint: Endpoint, fcm_reason: &'static str) -> Response {
    let title = match endpoint {
        Endpoint::Gcm => "Unauthorized",
        Endpoint::Fcm => fcm_reason,
    };
    let mut response = with_body(
        StatusCode::UNAUTHORIZED,
        HTML_UTF8,
        html_error_page(StatusCode::UNAUTHORIZED, title),
    );
    if endpoint == Endpoint::Fcm {
        response
            .extensions_mut()
            .insert(ReasonPhrase::from_static(fcm_reason.as_bytes()));
    }
    response
}

/// 405 for anything but POST, as the front end answered it.
pub(crate) fn method_not_allowed(method: &Method) -> Response {
    let title = format!("HTTP method {method} is not supported by this URL");
    let mut response = with_body(
        StatusCode::METHOD_NOT_ALLOWED,
        HTML_UTF8,
        html_error_page(StatusCode::METHOD_NOT_ALLOWED, &title),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_key_form_only() {
        assert_eq!(api_key("key=abc"), Some("abc"));
        assert_eq!(api_key("  KEY= abc "), Some("abc"));
        assert_eq!(api_key("key="), None);
        assert_eq!(api_key("Bearer abc"), None);
        assert_eq!(api_key("é"), None);
        assert_eq!(api_key(""), None);
    }
}
