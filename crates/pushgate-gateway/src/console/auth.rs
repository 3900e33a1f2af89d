//! Signing in and out. A key signs in as an admin (every app) when it is one of `admin_keys`,
//! else as its app when it is an API key (looked up by digest, like the API's bearer check,
//! and counted against the key's request budget). The key itself is never stored or shown.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::time::Duration;
use time::OffsetDateTime;

use crate::api::AppState;

use super::csrf::{self, LOGIN_COOKIE};
use super::page::{PageResult, harden, render};
use super::session::{self, COOKIE, LIFETIME, Scope, Viewer};

/// How long the sign-in form's token lives.
const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(3600);

/// The sign-in page.
#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    title: &'static str,
    csrf: String,
    error: Option<String>,
}

/// The sign-in page with a fresh form token (set as its cookie too).
fn login_page(state: &AppState, status: StatusCode, error: Option<String>) -> Response {
    let token = session::random_token();
    let mut response = render(
        status,
        &LoginPage {
            title: "Sign in",
            csrf: token.clone(),
            error,
        },
    );
    let cookie = session::set_cookie(
        LOGIN_COOKIE,
        &token,
        LOGIN_FORM_LIFETIME,
        state.console.secure,
    );
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// `GET /admin/login`.
pub async fn form(State(state): State<AppState>) -> Response {
    login_page(&state, StatusCode::OK, None)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/login`: checks the form token, then the key.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !csrf::matches(&expected, &f.csrf) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; please try again.".into()),
        );
    }
    let key = f.key.trim();
    let scope = if state.console.is_admin_key(key) {
        Scope::Admin
    } else {
        match state.apps.app_of_key(key) {
            Ok(app) => Scope::App(app.name.clone()),
            Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
                return login_page(&state, e.status, Some(e.message));
            }
            Err(_) => {
                return login_page(
                    &state,
                    StatusCode::UNAUTHORIZED,
                    Some("This key is neither an admin key nor an app's API key.".into()),
                );
            }
        }
    };
    tracing::info!(scope = ?scope, "console sign-in");
    let id = state
        .console
        .sessions
        .start(scope, OffsetDateTime::now_utc());
    let secure = state.console.secure;
    let mut response = harden(Redirect::to("/admin").into_response());
    for cookie in [
        session::set_cookie(COOKIE, &id, LIFETIME, secure),
        session::set_cookie(LOGIN_COOKIE, "", Duration::ZERO, secure),
    ] {
        if let Ok(v) = cookie.parse() {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
    response
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/logout`: ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<SignOut>,
) -> PageResult {
    csrf::check(&viewer, &f.csrf)?;
    state.console.sessions.end(&viewer.id);
    let mut response = harden(Redirect::to("/admin/login").into_response());
    let cookie = session::set_cookie(COOKIE, "", Duration::ZERO, state.console.secure);
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    Ok(response)
}
