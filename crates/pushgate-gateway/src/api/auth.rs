//! Who is calling: a bearer API key names exactly one app. A key is never compared or stored
//! as itself: the table is keyed by the key's SHA-256. Each key has its own request budget
//! when its app sets a rate, so that one misbehaving client cannot starve the others.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::StatusCode;
use http::header::AUTHORIZATION;
use http::request::Parts;
use parking_lot::RwLock;

use super::AppState;
use super::error::ApiError;
use crate::config::{AppSpec, C2dmFlowSpec, KeyRate};

/// One key's request budget.
type KeyLimiter = governor::DefaultDirectRateLimiter;

/// What a key opens.
#[derive(Debug)]
struct KeyEntry {
    /// The app it belongs to.
    app: String,
    /// The rate its budget was made for (kept across a reload when unchanged).
    rate: Option<KeyRate>,
    /// Its budget, when the app sets a rate.
    limiter: Option<Arc<KeyLimiter>>,
}

fn limiter(rate: KeyRate) -> Option<Arc<KeyLimiter>> {
    let per_second = std::num::NonZeroU32::new(rate.per_second)?;
    let burst = std::num::NonZeroU32::new(rate.burst)?;
    Some(Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(per_second).allow_burst(burst),
    )))
}

/// What the API knows of one app.
#[derive(Debug, Clone)]
pub struct AppInfo {
    /// Its name.
    pub name: String,
    /// The channel of devices that name none.
    pub default_channel: String,
    /// Its channel names.
    pub channels: Vec<String>,
    /// Its C2DM-era flow.
    pub c2dm_flow: C2dmFlowSpec,
    /// Where its events are POSTed, when it has a webhook.
    pub webhook_url: Option<String>,
}

/// Every app and every key, replaced as a whole by a reload: a request sees the table of
/// before or of after the reload, never half of each.
#[derive(Debug, Default)]
pub struct Apps {
    table: RwLock<Arc<AppTable>>,
}

/// One configuration's apps and keys.
#[derive(Debug, Default)]
struct AppTable {
    by_name: HashMap<String, Arc<AppInfo>>,
    by_key: HashMap<[u8; 32], KeyEntry>,
    default: Option<String>,
}

/// The SHA-256 of a key: what key tables hold and compare, never the key itself.
pub(crate) fn digest(key: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl AppTable {
    /// The table of `specs`; a key that `previous` already held for the same app at the same
    /// rate keeps its budget, so that a reload does not refill every bucket.
    fn build(specs: &[AppSpec], previous: Option<&AppTable>) -> Self {
        let mut table = AppTable::default();
        for spec in specs {
            let info = AppInfo {
                name: spec.name.clone(),
                default_channel: spec.default_channel.clone(),
                channels: spec.channels.iter().map(|c| c.name.clone()).collect(),
                c2dm_flow: spec.c2dm_flow.clone(),
                webhook_url: spec.webhook.as_ref().map(|w| w.url.clone()),
            };
            for key in &spec.api_keys {
                let d = digest(key.expose());
                let kept = previous
                    .and_then(|p| p.by_key.get(&d))
                    .filter(|old| old.app == spec.name && old.rate == spec.key_rate)
                    .map(|old| old.limiter.clone());
                let entry = KeyEntry {
                    app: spec.name.clone(),
                    rate: spec.key_rate,
                    limiter: kept.unwrap_or_else(|| spec.key_rate.and_then(limiter)),
                };
                table.by_key.insert(d, entry);
            }
            if spec.is_default {
                table.default = Some(spec.name.clone());
            }
            table.by_name.insert(spec.name.clone(), Arc::new(info));
        }
        table
    }
}

impl Apps {
    /// The apps of a configuration.
    pub fn from_specs(specs: &[AppSpec]) -> Self {
        Self {
            table: RwLock::new(Arc::new(AppTable::build(specs, None))),
        }
    }

    /// Puts the apps of a new configuration in place (reload); requests already past their
    /// key check finish with the app they found.
    pub fn replace(&self, specs: &[AppSpec]) {
        let fresh = AppTable::build(specs, Some(&self.table.read()));
        *self.table.write() = Arc::new(fresh);
    }

    fn table(&self) -> Arc<AppTable> {
        self.table.read().clone()
    }

    /// The app named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<AppInfo>> {
        self.table().by_name.get(name).cloned()
    }

    /// Every app, in no particular order (the OpenAPI document's per-app bounds).
    pub fn all(&self) -> Vec<Arc<AppInfo>> {
        self.table().by_name.values().cloned().collect()
    }

    /// Every app's name with its channels' names, sorted by app.
    pub fn with_channels(&self) -> Vec<(String, Vec<String>)> {
        let mut all: Vec<(String, Vec<String>)> = self
            .all()
            .iter()
            .map(|a| (a.name.clone(), a.channels.clone()))
            .collect();
        all.sort();
        all
    }

    /// The apps that have a webhook, sorted (for metrics).
    pub fn webhook_apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self
            .all()
            .iter()
            .filter(|a| a.webhook_url.is_some())
            .map(|a| a.name.clone())
            .collect();
        apps.sort();
        apps
    }

    /// The default app.
    pub fn default_app(&self) -> Option<Arc<AppInfo>> {
        let table = self.table();
        table
            .default
            .as_deref()
            .and_then(|n| table.by_name.get(n).cloned())
    }

    /// The app of `key`, if the key is valid and within its budget: `Err` is 401 for an
    /// unknown key, 429 (with the wait) for one over its rate.
    pub(crate) fn app_of_key(&self, key: &str) -> Result<Arc<AppInfo>, ApiError> {
        let table = self.table();
        let entry = table.by_key.get(&digest(key)).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the API key is not valid",
            )
        })?;
        if let Some(limiter) = &entry.limiter
            && let Err(not_until) = limiter.check()
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
            return Err(ApiError::too_many_requests(
                wait.as_secs_f64().ceil().max(1.0) as u64,
            ));
        }
        table
            .by_name
            .get(&entry.app)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no such app"))
    }
}

/// The app whose key authenticated the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<AppInfo>);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let key = bearer(&parts.headers, "the app's API key")?;
        state.apps.app_of_key(key).map(Caller)
    }
}

/// The key of `Authorization: Bearer <key>`; 401 naming `what` to send when there is none.
pub(crate) fn bearer<'h>(headers: &'h http::HeaderMap, what: &str) -> Result<&'h str, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("send {what} as Authorization: Bearer <key>"),
            )
        })?;
    Ok(header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or_default())
}

impl Caller {
    /// The caller's app if it is `app`: 404 when no such app exists, 403 when it is another
    /// app's.
    pub fn for_app(&self, state: &AppState, app: &str) -> Result<Arc<AppInfo>, ApiError> {
        if self.0.name == app {
            return Ok(self.0.clone());
        }
        if state.apps.get(app).is_some() {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this API key is not valid for app {app:?}"),
            ))
        } else {
            Err(ApiError::not_found(format!("no app named {app:?}")))
        }
    }
}
