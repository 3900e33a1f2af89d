//! What every console page shares: the navigation, rendering a template into a response with
//! headers that keep the page to itself, the error page, and small formatting helpers.

use askama::Template;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use pushgate_store::StoreError;
use time::OffsetDateTime;

use crate::api::{ApiError, AppState};

use super::session::Viewer;

/// The header and navigation of every signed-in page.
#[derive(Debug, Clone)]
pub struct Nav {
    /// The apps the session sees.
    pub apps: Vec<String>,
    /// How the session signed in.
    pub who: String,
    /// The session's CSRF token (the sign-out form).
    pub csrf: String,
    /// The app the page is about, if any.
    pub current: Option<String>,
}

impl Nav {
    /// The navigation of `viewer`, on a page about `current`.
    pub fn new(state: &AppState, viewer: &Viewer, current: Option<&str>) -> Self {
        Self {
            apps: viewer.apps(state).iter().map(|a| a.name.clone()).collect(),
            who: viewer.who(),
            csrf: viewer.csrf.clone(),
            current: current.map(str::to_string),
        }
    }

    /// True for the app the page is about (highlighted in the navigation).
    pub fn is_current(&self, app: &str) -> bool {
        self.current.as_deref() == Some(app)
    }
}

/// The content security policy of every page: nothing but the console's own scripts and
/// styles, no framing, forms post to the console only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers every console answer carries.
pub fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Renders `t` as an HTML page with `status`.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => harden(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            harden(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response(),
            )
        }
    }
}

/// Renders `t` as a 200 page.
pub fn ok(t: &impl Template) -> Response {
    render(StatusCode::OK, t)
}

/// The error page.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    status: u16,
    message: &'a str,
}

/// A console page that cannot be shown: rendered as a small HTML page with the status.
#[derive(Debug, Clone)]
pub struct ConsoleError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong, for people (never a secret).
    pub message: String,
}

impl ConsoleError {
    /// 404: no such thing, or not the session's to see.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 400: the request is not what the page takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 403: the form's CSRF token is missing or wrong.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            message: e.message,
        }
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        render(
            self.status,
            &ErrorPage {
                title,
                status: self.status.as_u16(),
                message: &self.message,
            },
        )
    }
}

/// What a console handler answers.
pub type PageResult = Result<Response, ConsoleError>;

/// `t` as `2026-12-06 05:02:01 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A duration in seconds as `42 s`, `5 min`, `3 h`.
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// `text` percent-encoded for a URL's query or path segment.
pub fn enc(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// The console URL of a device's page.
pub fn device_href(app: &str, device_id: &str) -> String {
    format!("/admin/apps/{}/device?id={}", enc(app), enc(device_id))
}

/// The console URL of a message's page.
pub fn message_href(app: &str, id: impl std::fmt::Display) -> String {
    format!("/admin/apps/{}/messages/{id}", enc(app))
}
