//! The console's stylesheet and script, embedded in the binary: the console renders with no
//! network connection and no CDN.

use axum::response::{IntoResponse, Response};
use http::header;

use super::page::harden;

/// The stylesheet.
const CSS: &str = include_str!("../../assets/console/console.css");
/// The script (the events page's live tail).
const JS: &str = include_str!("../../assets/console/console.js");

/// `GET /admin/assets/console.css`.
pub async fn css() -> Response {
    harden(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response())
}

/// `GET /admin/assets/console.js`.
pub async fn js() -> Response {
    harden(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            JS,
        )
            .into_response(),
    )
}
