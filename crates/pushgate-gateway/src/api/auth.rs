//! Who is calling: a bearer API key names exactly one app. A key is never compared or stored
//! as itself: the table is keyed by the key's SHA-256.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::StatusCode;
use http::header::AUTHORIZATION;
use http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::config::{AppSpec, C2dmFlowSpec};

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
    by_key: HashMap<[u8; 32], String>,
    default: Option<String>,
}

fn digest(key: &str) -> [u8; 32] {
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
                apps.by_key.insert(digest(key.expose()), spec.name.clone());
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

    /// The default app.
    pub fn default_app(&self) -> Option<Arc<AppInfo>> {
        self.default.as_deref().and_then(|n| self.get(n))
    }

    fn app_of_key(&self, key: &str) -> Option<Arc<AppInfo>> {
        self.by_key
            .get(&digest(key))
            .and_then(|name| self.get(name))
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
        state.apps.app_of_key(key).map(Caller).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the API key is not valid",
            )
        })
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
