//! Who is calling: a bearer API key names exactly one app. A key is never compared or stored
//! as itself: the table is keyed by the key's SHA-256. Each key has its own request budget
//! when its app sets a rate, so that one misbehaving client cannot starve the others.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::StatusCode;
use http::header::AUTHORIZATION;
use http::request::Parts;

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
    /// Its budget, when the app sets a rate.
    limiter: Option<KeyLimiter>,
}

fn limiter(rate: KeyRate) -> Option<KeyLimiter> {
    let per_second = std::num::NonZeroU32::new(rate.per_second)?;
    let burst = std::num::NonZeroU32::new(rate.burst)?;
    Some(governor::RateLimiter::direct(
        governor::Quota::per_second(per_second).allow_burst(burst),
    ))
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
}

/// Every app and every key.
#[derive(Debug, Default)]
pub struct Apps {
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

impl Apps {
    /// The apps of a configuration.
    pub fn from_specs(specs: &[AppSpec]) -> Self {
        let mut apps = Apps::default();
        for spec in specs {
            let info = AppInfo {
                name: spec.name.clone(),
                default_channel: spec.default_channel.clone(),
                channels: spec.channels.iter().map(|c| c.name.clone()).collect(),
                c2dm_flow: spec.c2dm_flow.clone(),
            };
            for key in &spec.api_keys {
                let entry = KeyEntry {
                    app: spec.name.clone(),
                    limiter: spec.key_rate.and_then(limiter),
                };
                apps.by_key.insert(digest(key.expose()), entry);
            }
            if spec.is_default {
                apps.default = Some(spec.name.clone());
            }
            apps.by_name.insert(spec.name.clone(), Arc::new(info));
        }
        apps
    }

    /// The app named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<AppInfo>> {
        self.by_name.get(name).cloned()
    }

    /// Every app, in no particular order (the OpenAPI document's per-app bounds).
    pub fn all(&self) -> impl Iterator<Item = &Arc<AppInfo>> {
        self.by_name.values()
    }

    /// Every app's name with its channels' names, sorted by app.
    pub fn with_channels(&self) -> Vec<(String, Vec<String>)> {
        let mut all: Vec<(String, Vec<String>)> = self
            .all()
            .map(|a| (a.name.clone(), a.channels.clone()))
            .collect();
        all.sort();
        all
    }

    /// The default app.
    pub fn default_app(&self) -> Option<Arc<AppInfo>> {
        self.default.as_deref().and_then(|n| self.get(n))
    }

    /// The app of `key`, if the key is valid and within its budget: `Err` is 401 for an
    /// unknown key, 429 (with the wait) for one over its rate.
    pub(crate) fn app_of_key(&self, key: &str) -> Result<Arc<AppInfo>, ApiError> {
        let entry = self.by_key.get(&digest(key)).ok_or_else(|| {
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
        self.get(&entry.app)
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
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "send the app's API key as Authorization: Bearer <key>",
                )
            })?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or_default();
        state.apps.app_of_key(key).map(Caller)
    }
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
