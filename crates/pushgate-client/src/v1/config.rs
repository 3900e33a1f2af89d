//! Settings of the v1 sender and why it could not be built.

use std::time::Duration;

use super::RateLimit;
use crate::http::{BuildError, HttpConfig};
use crate::oauth::OAuthError;
use crate::{Jitter, RetryPolicy};

/// The real FCM v1 host; the send URL is `{base}/v1/projects/{project_id}/messages:send`.
pub const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";
/// HTTP/2 connections (one pooled client each) used round-robin, by default.
pub const DEFAULT_CONNECTIONS: usize = 4;
/// Requests in flight at once, by default (about 100 streams per HTTP/2 connection).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 400;
/// Longest server-requested wait the sender sleeps through itself (Go Admin SDK: 2 min);
/// beyond it the retriable outcome is returned at once for the caller to schedule.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(120);

/// Settings of an [`FcmV1Sender`](super::FcmV1Sender).
#[derive(Debug, Clone)]
pub struct V1Config {
    /// Project to send for; `None` takes the token source's (the key file's `project_id`).
    pub project_id: Option<String>,
    /// Connection settings. `http.endpoint` is the base URL (scheme, host, port, optional
    /// path prefix); `None` means [`DEFAULT_BASE_URL`]. `http2_prior_knowledge` speaks h2c
    /// to plain-HTTP emulators.
    pub http: HttpConfig,
    /// How many clients (each its own connection pool, so its own HTTP/2 connection) are
    /// used round-robin. At least 1.
    pub connections: usize,
    /// Requests in flight at once across all connections. At least 1.
    pub max_in_flight: usize,
    /// Client-side pacing below the project quota; `None` sends as fast as allowed by
    /// `max_in_flight`.
    pub rate_limit: Option<RateLimit>,
    /// Retries of retriable outcomes (UNAVAILABLE, INTERNAL, other 5xx, 429, transport).
    pub retry: RetryPolicy,
    /// Longest server `Retry-After` slept through (see [`DEFAULT_MAX_RETRY_WAIT`]).
    pub max_retry_wait: Duration,
}

impl Default for V1Config {
    /// The real endpoint, 4 connections, 400 in flight, 600,000/min, Google-SDK-like retries.
    fn default() -> Self {
        Self {
            project_id: None,
            http: HttpConfig::default(),
            connections: DEFAULT_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            rate_limit: Some(RateLimit::default()),
            retry: google_sdk_retry_policy(),
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
        }
    }
}

/// The retry policy of Google's Admin SDKs (docs/protocols.md,
/// "FCM v1: retry policy of the Admin SDKs"): 4 retries (5 attempts),
/// delays from 0.5 s doubling to at most 2 min, with jitter; `Retry-After` is a floor.
pub fn google_sdk_retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(120))
        .with_multiplier(2.0)
        .with_jitter(Jitter::Equal)
}

impl V1Config {
    /// The defaults (see [`V1Config::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends for this project instead of the token source's.
    pub fn with_project_id(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }

    /// Sets the base URL, e.g. an emulator's `http://127.0.0.1:8080`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.http.endpoint = Some(base_url.into());
        self
    }

    /// Replaces the HTTP settings. A base URL already set survives when `http` names none,
    /// so the order of `with_base_url` and `with_http` does not matter.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        let base_url = self.http.endpoint.take();
        self.http = http;
        if self.http.endpoint.is_none() {
            self.http.endpoint = base_url;
        }
        self
    }

    /// Sets the number of connections (at least 1).
    pub fn with_connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// Sets the in-flight limit (at least 1).
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// Sets (or with `None` removes) the client-side rate limit.
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimit>) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the longest server-requested wait slept through.
    pub fn with_max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }
}

/// Why an [`FcmV1Sender`](super::FcmV1Sender) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum V1BuildError {
    /// The HTTP settings were refused.
    #[error(transparent)]
    Http(#[from] BuildError),
    /// Neither the configuration nor the token source names a project.
    #[error("no project id: set V1Config::project_id or use a service-account token source")]
    NoProject,
    /// The project id cannot be part of a URL path.
    #[error("invalid project id {0:?}: expected letters, digits, '-', '_' or '.'")]
    InvalidProject(String),
    /// The service-account credentials could not be loaded.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_survives_a_later_with_http() {
        let config = V1Config::new()
            .with_base_url("http://127.0.0.1:9")
            .with_http(HttpConfig::new().with_http2_prior_knowledge(true));
        assert_eq!(config.http.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert!(config.http.http2_prior_knowledge);
        let replaced = config.with_http(HttpConfig::new().with_endpoint("http://127.0.0.1:10"));
        assert_eq!(
            replaced.http.endpoint.as_deref(),
            Some("http://127.0.0.1:10")
        );
    }
}
