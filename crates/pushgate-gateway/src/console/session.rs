//! Console sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over
//! TLS) names a session kept in memory by the id's SHA-256, with what it may see, its CSRF
//! token and when it expires. Signing out or a restart ends it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use http::HeaderMap;
use http::request::Parts;
use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::api::{AppInfo, AppState};

use super::page::ConsoleError;

/// The session cookie's name.
pub const COOKIE: &str = "pushgate_console";
/// How long a session lasts after signing in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once; signing in beyond it drops the oldest.
const MAX_SESSIONS: usize = 10_000;

/// What a session may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every app (signed in with an admin key).
    Admin,
    /// One app (signed in with its API key).
    App(String),
}

impl Scope {
    /// True when the session may see `app`.
    pub fn sees(&self, app: &str) -> bool {
        match self {
            Scope::Admin => true,
            Scope::App(own) => own == app,
        }
    }
}

/// One signed-in session.
#[derive(Debug, Clone)]
struct Session {
    scope: Scope,
    csrf: String,
    expires: OffsetDateTime,
}

/// Every signed-in session, by the SHA-256 of its id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<[u8; 32], Session>>,
}

/// 32 random bytes, URL-safe base64.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system generator does not fail on Linux; an all-zero token would still be refused
    // below only by chance, so a failure is loud instead.
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    /// Starts a session for `scope`; returns its id (the cookie's value).
    pub fn start(&self, scope: Scope, now: OffsetDateTime) -> String {
        let id = random_token();
        let session = Session {
            scope,
            csrf: random_token(),
            expires: now + LIFETIME,
        };
        let mut map = self.by_id.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(crate::api::auth::digest(&id), session);
        id
    }

    /// The live session with this id.
    fn get(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let key = crate::api::auth::digest(id);
        let mut map = self.by_id.lock();
        match map.get(&key) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session with this id.
    pub fn end(&self, id: &str) {
        self.by_id.lock().remove(&crate::api::auth::digest(id));
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/admin`, `Secure` over TLS;
/// `max_age` 0 deletes it.
pub(super) fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// Who is looking at the console: the signed-in session of the request. A request without
/// one is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// What it may see.
    pub scope: Scope,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The session id (for signing out).
    pub(super) id: String,
}

impl Viewer {
    /// The app `name` if this session may see it; 404 for an app that does not exist and
    /// for one it may not see alike, so that guessing names tells nothing.
    pub fn app(&self, state: &AppState, name: &str) -> Result<Arc<AppInfo>, ConsoleError> {
        state
            .apps
            .get(name)
            .filter(|a| self.scope.sees(&a.name))
            .ok_or_else(|| ConsoleError::not_found(format!("no app {name:?}")))
    }

    /// The apps this session may see, by name.
    pub fn apps(&self, state: &AppState) -> Vec<Arc<AppInfo>> {
        let mut apps: Vec<Arc<AppInfo>> = state
            .apps
            .all()
            .into_iter()
            .filter(|a| self.scope.sees(&a.name))
            .collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        apps
    }

    /// How the session signed in, for the page header.
    pub fn who(&self) -> String {
        match &self.scope {
            Scope::Admin => "admin (every app)".to_string(),
            Scope::App(app) => format!("app key of {app}"),
        }
    }
}

impl<S> FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let now = OffsetDateTime::now_utc();
        let found = cookie(&parts.headers, COOKIE).and_then(|id| {
            state
                .console
                .sessions
                .get(&id, now)
                .map(|s| (id, s.scope, s.csrf))
        });
        match found {
            Some((id, scope, csrf)) => Ok(Viewer { scope, csrf, id }),
            None => Err(Redirect::to("/admin/login").into_response()),
        }
    }
}
