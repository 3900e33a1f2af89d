//! The service-account token source: JWT-bearer exchange, caching, refresh-ahead and single
//! flight (docs/protocols.md, "FCM v1: OAuth service-account flow").

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use pushgate_proto::RetryAfter;
use pushgate_proto::v1::FCM_SCOPE;
use pushgate_proto::v1::oauth::{JWT_BEARER_GRANT, ServiceAccountKey, TokenError, TokenResponse};
use reqwest::header::RETRY_AFTER;
use reqwest::{Client, Url};
use tracing::{Instrument, debug, info_span, warn};

use super::OAuthError;
use super::assertion::Signer;
use super::error::{is_retriable_error_code, is_retriable_status};
use super::key::{key_from_file, key_from_json};
use super::token::{AccessToken, Freshness};
use crate::{HttpConfig, RetryPolicy};

/// Anything that hands out OAuth2 access tokens to a sender.
///
/// Exists so that the v1 sender can be driven by a service account
/// ([`ServiceAccountTokenSource`]), by a token obtained elsewhere (metadata server, workload
/// identity) or by a fake in tests.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A valid token, from the cache when possible. Concurrent callers share one refresh.
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, OAuthError>>;

    /// Says that `token` was refused (HTTP 401): the next [`TokenSource::token`] fetches a new
    /// one, unless the cached token is already another one (so many 401s for the same token
    /// cause one refresh).
    fn invalidate(&self, token: &AccessToken);

    /// The project the credentials belong to, if the source knows it.
    fn project_id(&self) -> Option<&str> {
        None
    }
}

/// Settings of a [`ServiceAccountTokenSource`].
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Scopes requested (space-joined in the assertion). Default: the FCM scope.
    pub scopes: Vec<String>,
    /// Client settings for the token endpoint: timeout, proxy, extra CA (an emulator's),
    /// HTTP/2 prior knowledge. `endpoint` is ignored: the key file's `token_uri` is used.
    pub http: HttpConfig,
    /// Retries of the token call on transport errors, 5xx, 408 and 429.
    pub retry: RetryPolicy,
}

impl Default for OAuthConfig {
    /// The FCM scope, default HTTP settings, 4 attempts from 0.5 s backoff capped at 30 s.
    fn default() -> Self {
        Self {
            scopes: vec![FCM_SCOPE.to_string()],
            http: HttpConfig::default(),
            retry: RetryPolicy::default()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(500))
                .with_max_backoff(Duration::from_secs(30)),
        }
    }
}

impl OAuthConfig {
    /// The defaults (see [`OAuthConfig::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests these scopes instead of the FCM scope.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Uses these HTTP settings for the token endpoint.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Retries the token call with this policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Access tokens for a Google service account: signs an RS256 assertion, exchanges it at the
/// key file's `token_uri`, caches the token and refreshes it ahead of expiry, once for all
/// waiting senders.
///
/// Cheap to clone: clones share the cache. `Debug` never shows the key or a token.
#[derive(Clone)]
pub struct ServiceAccountTokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    signer: Signer,
    project_id: String,
    token_uri: Url,
    client: Client,
    retry: RetryPolicy,
    cached: parking_lot::Mutex<Option<AccessToken>>,
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    /// Count of failed refreshes and the last failure's text: callers that waited for a
    /// refresh that failed get its error instead of trying again one after another.
    failures: parking_lot::Mutex<(u64, String)>,
}

impl fmt::Debug for ServiceAccountTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountTokenSource")
            .field("project_id", &self.inner.project_id)
            .field("token_uri", &self.inner.token_uri.as_str())
            .field("signer", &self.inner.signer)
            .field("cached", &*self.inner.cached.lock())
            .field("fetches", &self.fetches())
            .finish()
    }
}

impl ServiceAccountTokenSource {
    /// A source for this (already checked) key. Fails when the private key cannot sign or
    /// `token_uri` is not an http(s) URL.
    pub fn new(key: ServiceAccountKey, config: OAuthConfig) -> Result<Self, OAuthError> {
        let signer = Signer::new(&key, &config.scopes)?;
        let token_uri = config.http.clone().with_endpoint(key.token_uri.clone());
        let token_uri = token_uri.endpoint_or("")?;
        Ok(Self {
            inner: Arc::new(Inner {
                signer,
                project_id: key.project_id,
                token_uri,
                client: config.http.build_client()?,
                retry: config.retry,
                cached: parking_lot::Mutex::new(None),
                refresh: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
                failures: parking_lot::Mutex::new((0, String::new())),
            }),
        })
    }

    /// Loads and checks a key file, then builds the source.
    pub fn from_file(path: impl AsRef<Path>, config: OAuthConfig) -> Result<Self, OAuthError> {
        Self::new(key_from_file(path)?, config)
    }

    /// Parses and checks a key given as JSON text, then builds the source.
    pub fn from_json(json: &str, config: OAuthConfig) -> Result<Self, OAuthError> {
        Self::new(key_from_json(json)?, config)
    }

    /// How many token exchanges this source has started (for metrics and tests).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The cached token as it stands, without refreshing.
    fn cached(&self) -> Option<AccessToken> {
        self.inner.cached.lock().clone()
    }

    /// The token to use now, refreshing when needed (single flight).
    async fn get(&self) -> Result<AccessToken, OAuthError> {
        let now = Instant::now();
        if let Some(token) = self.cached() {
            match token.freshness(now) {
                Freshness::Fresh => return Ok(token),
                Freshness::RefreshAhead => {
                    // One caller refreshes; the others keep using the still-valid token.
                    let Ok(_guard) = self.inner.refresh.try_lock() else {
                        return Ok(token);
                    };
                    if let Some(current) = self.cached()
                        && !current.same_as(&token)
                    {
                        return Ok(current);
                    }
                    return match self.fetch().await {
                        Ok(fresh) => Ok(fresh),
                        Err(e) => {
                            warn!(error = %e, "token refresh ahead of expiry failed; using the current token");
                            Ok(token)
                        }
                    };
                }
                Freshness::Expired => {}
            }
        }
        let failures_before = self.inner.failures.lock().0;
        let _guard = self.inner.refresh.lock().await;
        if let Some(token) = self.cached()
            && token.freshness(Instant::now()) != Freshness::Expired
        {
            return Ok(token);
        }
        {
            let failures = self.inner.failures.lock();
            if failures.0 != failures_before {
                return Err(OAuthError::SharedFailure(failures.1.clone()));
            }
        }
        let result = self.fetch().await;
        if let Err(e) = &result {
            let mut failures = self.inner.failures.lock();
            failures.0 += 1;
            failures.1 = e.to_string();
        }
        result
    }

    /// Exchanges a new assertion, retrying per policy, and caches the result.
    async fn fetch(&self) -> Result<AccessToken, OAuthError> {
        let span = info_span!(
            "oauth_token",
            project = %self.inner.project_id,
            token_uri = %self.inner.token_uri,
        );
        async {
            let mut attempt: u32 = 1;
            loop {
                self.inner.fetches.fetch_add(1, Ordering::Relaxed);
                let (error, server_wait) = match self.fetch_once().await {
                    Attempt::Done(token) => {
                        *self.inner.cached.lock() = Some(token.clone());
                        return Ok(token);
                    }
                    Attempt::Fail(e) => return Err(e),
                    Attempt::Retry(e, wait) => (e, wait),
                };
                if !self.inner.retry.allows_attempt(attempt + 1) {
                    return Err(error);
                }
                let delay = self.inner.retry.delay(attempt - 1, server_wait);
                warn!(attempt, error = %error, ?delay, "token request failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
        .instrument(span)
        .await
    }

    async fn fetch_once(&self) -> Attempt {
        let assertion = match self.inner.signer.sign_now() {
            Ok(a) => a,
            Err(e) => return Attempt::Fail(e),
        };
        let form = [("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)];
        let sent = Instant::now();
        let response = match self
            .inner
            .client
            .post(self.inner.token_uri.clone())
            .form(&form)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(OAuthError::Transport(e), None),
        };
        let status = response.status().as_u16();
        let wait = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse)
            .map(|r| r.delay_from(SystemTime::now()));
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Retry(OAuthError::Transport(e), None),
        };
        if status == 200 {
            return match parse_token(&body, sent) {
                Ok(token) => {
                    debug!(
                        expires_in = ?token.expires_at().saturating_duration_since(sent),
                        "access token obtained"
                    );
                    Attempt::Done(token)
                }
                Err(e) => Attempt::Fail(e),
            };
        }
        let parsed = serde_json::from_slice::<TokenError>(&body).ok();
        if let Some(TokenError {
            error,
            error_description,
        }) = &parsed
            && error == "invalid_grant"
        {
            return Attempt::Fail(OAuthError::InvalidGrant {
                description: error_description.clone().unwrap_or_default(),
            });
        }
        let retriable = is_retriable_status(status)
            || parsed
                .as_ref()
                .is_some_and(|p| is_retriable_error_code(&p.error));
        let error = OAuthError::Http {
            status,
            error: parsed.as_ref().map_or_else(
                || "<no OAuth error in the body>".into(),
                |p| p.error.clone(),
            ),
            description: parsed.and_then(|p| p.error_description),
        };
        if retriable {
            Attempt::Retry(error, wait)
        } else {
            Attempt::Fail(error)
        }
    }
}

/// One token call's result.
enum Attempt {
    Done(AccessToken),
    Retry(OAuthError, Option<Duration>),
    Fail(OAuthError),
}

/// Reads a 200 answer; the lifetime counts from when the request was sent.
fn parse_token(body: &[u8], sent: Instant) -> Result<AccessToken, OAuthError> {
    let response: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        OAuthError::InvalidResponse(format!(
            "not a token response ({:?} error at column {})",
            e.classify(),
            e.column()
        ))
    })?;
    if response.access_token.is_empty() {
        return Err(OAuthError::InvalidResponse("empty access_token".into()));
    }
    if !response.token_type.is_empty() && !response.token_type.eq_ignore_ascii_case("bearer") {
        return Err(OAuthError::InvalidResponse(format!(
            "token_type {:?} is not Bearer",
            response.token_type
        )));
    }
    let lifetime = response
        .expires_in_secs()
        .ok_or_else(|| OAuthError::InvalidResponse("expires_in is not a number".into()))?;
    let expires_at = sent
        .checked_add(Duration::from_secs(lifetime))
        .unwrap_or(sent + Duration::from_secs(3600));
    AccessToken::with_times(response.access_token, sent, expires_at)
}

impl TokenSource for ServiceAccountTokenSource {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, OAuthError>> {
        Box::pin(self.get())
    }

    fn invalidate(&self, token: &AccessToken) {
        let mut cached = self.inner.cached.lock();
        if cached.as_ref().is_some_and(|c| c.same_as(token)) {
            debug!("access token invalidated after a refusal");
            *cached = None;
        }
    }

    fn project_id(&self) -> Option<&str> {
        Some(&self.inner.project_id)
    }
}

/// A fixed token from elsewhere (gcloud, a metadata server): never refreshed.
///
/// Exists for tools and tests that already hold a token. After `invalidate` it keeps handing
/// out the same token: sends then end as `AuthFailed`.
#[derive(Debug, Clone)]
pub struct StaticTokenSource {
    token: AccessToken,
    project_id: Option<String>,
}

impl StaticTokenSource {
    /// Wraps a token valid for `lifetime`, for `project_id` if given.
    pub fn new(
        token: impl Into<String>,
        lifetime: Duration,
        project_id: Option<String>,
    ) -> Result<Self, OAuthError> {
        Ok(Self {
            token: AccessToken::new(token, lifetime)?,
            project_id,
        })
    }
}

impl TokenSource for StaticTokenSource {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, OAuthError>> {
        let token = self.token.clone();
        Box::pin(async move { Ok(token) })
    }

    fn invalidate(&self, _token: &AccessToken) {}

    fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }
}

#[cfg(test)]
mod tests;
