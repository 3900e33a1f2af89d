//! The admin console: `/admin` on the API's own listener, HTML rendered on the server from
//! askama templates (which escape every value), a stylesheet and a small script embedded in
//! the binary, nothing fetched from the network.
//!
//! Signing in takes an admin key (`admin_keys`: every app) or an app's API key (that app
//! only); the session is an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over TLS) that
//! expires, and every form carries the session's CSRF token. Every page checks that the
//! session may see the app it names and answers 404 otherwise, whatever id the URL guesses.
//! The pages read the same store and services as the API, and the Send form goes through the
//! API's own validation and insert path.

mod assets;
mod auth;
mod csrf;
mod devices;
mod events;
mod messages;
mod overview;
mod page;
mod send;
mod session;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::api::AppState;
use crate::config::Secret;

pub use session::{Scope, Sessions};

/// Where the console is mounted.
pub const BASE: &str = "/admin";

/// What the console keeps beside the API's state: its keys, its sessions, and what asks each
/// webhook sender to try again now.
pub struct Console {
    /// SHA-256 of every admin key (replaced by a reload).
    admin_keys: parking_lot::RwLock<Vec<[u8; 32]>>,
    /// Signed-in sessions.
    sessions: Sessions,
    /// Served over TLS: cookies are `Secure`.
    secure: bool,
    /// Each webhook sender's "retry now", by app (changed by a reload).
    webhook_nudges: parking_lot::RwLock<HashMap<String, Arc<Notify>>>,
}

impl Console {
    /// The console of a gateway with these admin keys, on a TLS listener or not.
    pub fn new(
        admin_keys: &[Secret],
        secure: bool,
        webhook_nudges: HashMap<String, Arc<Notify>>,
    ) -> Self {
        Self {
            admin_keys: parking_lot::RwLock::new(digests(admin_keys)),
            sessions: Sessions::default(),
            secure,
            webhook_nudges: parking_lot::RwLock::new(webhook_nudges),
        }
    }

    /// Puts a reloaded configuration's admin keys in place; sessions already signed in
    /// stay until they expire or sign out.
    pub fn replace_admin_keys(&self, admin_keys: &[Secret]) {
        *self.admin_keys.write() = digests(admin_keys);
    }

    /// The "retry now" of `app`'s webhook sender, when it has one.
    pub fn webhook_nudge(&self, app: &str) -> Option<Arc<Notify>> {
        self.webhook_nudges.read().get(app).cloned()
    }

    /// Sets (or, with `None`, removes) `app`'s webhook sender's "retry now" (reload).
    pub fn set_webhook_nudge(&self, app: &str, nudge: Option<Arc<Notify>>) {
        let mut nudges = self.webhook_nudges.write();
        match nudge {
            Some(n) => nudges.insert(app.to_string(), n),
            None => nudges.remove(app),
        };
    }

    /// True when `key` is one of the admin keys: its digest is compared with each admin
    /// key's in constant time, and every admin key is compared.
    pub(crate) fn is_admin_key(&self, key: &str) -> bool {
        let d = crate::api::auth::digest(key);
        self.admin_keys.read().iter().fold(false, |found, k| {
            aws_lc_rs::constant_time::verify_slices_are_equal(k, &d).is_ok() | found
        })
    }
}

/// The SHA-256 of each key.
fn digests(keys: &[Secret]) -> Vec<[u8; 32]> {
    keys.iter()
        .map(|k| crate::api::auth::digest(k.expose()))
        .collect()
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("admin_keys", &self.admin_keys.read().len())
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// Every route of the console, under [`BASE`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/", get(overview::page))
        .route("/admin/login", get(auth::form).post(auth::sign_in))
        .route("/admin/logout", post(auth::sign_out))
        .route("/admin/assets/console.css", get(assets::css))
        .route("/admin/assets/console.js", get(assets::js))
        .route("/admin/apps/{app}/devices", get(devices::search))
        .route("/admin/apps/{app}/device", get(devices::show))
        .route("/admin/apps/{app}/device/state", post(devices::set_state))
        .route(
            "/admin/apps/{app}/device/delete",
            get(devices::confirm_delete).post(devices::delete),
        )
        .route("/admin/apps/{app}/send", get(send::form).post(send::submit))
        .route("/admin/apps/{app}/messages/{id}", get(messages::show))
        .route("/admin/apps/{app}/events", get(events::page))
        .route("/admin/apps/{app}/events/stream", get(events::stream))
        .route(
            "/admin/apps/{app}/webhook/retry",
            post(events::retry_webhook),
        )
}
