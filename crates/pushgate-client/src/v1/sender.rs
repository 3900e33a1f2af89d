//! The FCM HTTP v1 sender: one request per message over pooled HTTP/2 connections, every
//! answer mapped to an [`Outcome`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Method, Request, StatusCode, Uri, Version};
use pushgate_proto::token::short_token;
use pushgate_proto::v1::oauth::ServiceAccountKey;
use pushgate_proto::v1::{ErrorBody, Message, SendResponse};
use pushgate_proto::{FailureScope, Outcome, RetryAfter};
use reqwest::Url;
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, debug_span, field};

use super::config::{DEFAULT_BASE_URL, V1BuildError, V1Config};
use super::rate::RateLimiter;
use crate::RetryPolicy;
use crate::http::BuildError;
use crate::oauth::{AccessToken, OAuthConfig, ServiceAccountTokenSource, TokenSource};
use crate::transport::Transport;

/// Asks for verbose error details, as the Admin SDKs do (docs/protocols.md,
/// "FCM v1: endpoint and headers").
const API_FORMAT_HEADER: HeaderName = HeaderName::from_static("x-goog-api-format-version");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Sends FCM HTTP v1 messages for one project (the Admin SDKs' `messaging.send`,
/// `send_each`, `send_each_for_multicast`, without their 500-message cap).
///
/// Every answer becomes an [`Outcome`]: nothing here returns `Err`. Requests are spread
/// round-robin over several pooled clients (HTTP/2 multiplexes about 100 streams on each
/// connection), limited by a semaphore and paced by a token bucket below the project quota.
/// Retriable outcomes are retried per the [`RetryPolicy`], never sooner than `Retry-After`.
/// A 401 invalidates the access token and resends once with a fresh one.
///
/// Cheap to clone: clones share connections, limits and the token cache.
#[derive(Clone)]
pub struct FcmV1Sender {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: Arc<dyn TokenSource>,
    project_id: String,
    send_url: Url,
    /// `send_url` parsed once; each request's URI is a clone (reference counts only).
    send_uri: Uri,
    transports: Vec<Transport>,
    next_client: AtomicUsize,
    in_flight: Semaphore,
    max_in_flight: usize,
    limiter: Option<RateLimiter>,
    retry: RetryPolicy,
    max_retry_wait: Duration,
    last_version: AtomicU8,
}

impl fmt::Debug for FcmV1Sender {
    /// Never shows a token or key: the token source's own `Debug` redacts them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmV1Sender")
            .field("project_id", &self.inner.project_id)
            .field("send_url", &self.inner.send_url.as_str())
            .field("connections", &self.inner.transports.len())
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("rate_limiter", &self.inner.limiter)
            .field("retry", &self.inner.retry)
            .field("tokens", &self.inner.tokens)
            .finish()
    }
}

/// What one HTTP exchange produced, before it is mapped.
enum Exchange {
    Answer {
        status: StatusCode,
        retry_after: Option<Duration>,
        body: Bytes,
    },
    Transport(String),
}

impl FcmV1Sender {
    /// A sender that takes its access tokens from `token_source`.
    pub fn new<T: TokenSource + 'static>(
        token_source: T,
        config: V1Config,
    ) -> Result<Self, V1BuildError> {
        Self::with_shared_source(Arc::new(token_source), config)
    }

    /// A sender sharing a token source (and so its cache) with other senders.
    pub fn with_shared_source(
        token_source: Arc<dyn TokenSource>,
        config: V1Config,
    ) -> Result<Self, V1BuildError> {
        let project_id = match (&config.project_id, token_source.project_id()) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p.to_string(),
            (None, None) => return Err(V1BuildError::NoProject),
        };
        if !is_valid_project_id(&project_id) {
            return Err(V1BuildError::InvalidProject(project_id));
        }
        let base = config.http.endpoint_or(DEFAULT_BASE_URL)?;
        let send_url = format!(
            "{}/v1/projects/{project_id}/messages:send",
            base.as_str().trim_end_matches('/')
        );
        let send_url = config
            .http
            .clone()
            .with_endpoint(send_url)
            .endpoint_or("")?;
        let send_uri = Uri::try_from(send_url.as_str()).map_err(|e| BuildError::Endpoint {
            url: send_url.to_string(),
            reason: e.to_string(),
        })?;
        let transports = Transport::pool(&config.http, &send_uri, config.connections)?;
        let max_in_flight = config.max_in_flight.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                tokens: token_source,
                project_id,
                send_url,
                send_uri,
                transports,
                next_client: AtomicUsize::new(0),
                in_flight: Semaphore::new(max_in_flight),
                max_in_flight,
                limiter: config.rate_limit.map(RateLimiter::new),
                retry: config.retry,
                max_retry_wait: config.max_retry_wait,
                last_version: AtomicU8::new(0),
            }),
        })
    }

    /// A sender for a service account, its token endpoint reached with the same HTTP
    /// settings (proxy, extra CA) as the send endpoint.
    pub fn from_service_account(
        key: ServiceAccountKey,
        config: V1Config,
    ) -> Result<Self, V1BuildError> {
        let oauth = OAuthConfig::new().with_http(config.http.clone());
        Self::new(ServiceAccountTokenSource::new(key, oauth)?, config)
    }

    /// [`from_service_account`](Self::from_service_account) with a key file on disk.
    pub fn from_service_account_file(
        path: impl AsRef<Path>,
        config: V1Config,
    ) -> Result<Self, V1BuildError> {
        Self::from_service_account(crate::oauth::key_from_file(path)?, config)
    }

    /// Paces this sender at 1/`sharers` of its rate limit from now on: several gateway
    /// instances sending for one project share the project's quota (no effect without a
    /// rate limit).
    pub fn share_rate_between(&self, sharers: u32) {
        if let Some(limiter) = &self.inner.limiter {
            limiter.share_between(sharers);
        }
    }

    /// The project messages are sent for.
    pub fn project_id(&self) -> &str {
        &self.inner.project_id
    }

    /// `{base}/v1/projects/{project_id}/messages:send`.
    pub fn send_url(&self) -> &Url {
        &self.inner.send_url
    }

    /// The token source (e.g. to share it with another sender).
    pub fn token_source(&self) -> &Arc<dyn TokenSource> {
        &self.inner.tokens
    }

    /// The HTTP version of the last answer received, to check that HTTP/2 was negotiated.
    pub fn last_http_version(&self) -> Option<Version> {
        match self.inner.last_version.load(Ordering::Relaxed) {
            1 => Some(Version::HTTP_09),
            2 => Some(Version::HTTP_10),
            3 => Some(Version::HTTP_11),
            4 => Some(Version::HTTP_2),
            5 => Some(Version::HTTP_3),
            _ => None,
        }
    }

    /// Sends one message (with retries) and says what happened.
    pub async fn send(&self, message: &Message) -> Outcome {
        self.send_with(message, false).await
    }

    /// Runs every check of the service on the message without delivering it
    /// (`validate_only`); success is `Delivered` with the name `…/fake_message_id`.
    pub async fn send_validate_only(&self, message: &Message) -> Outcome {
        self.send_with(message, true).await
    }

    /// Sends (or, with `validate_only`, checks) one message.
    ///
    /// A message that fails [`Message::validate`] is `MessageRejected` with
    /// `"<field>: <problem>"` and no request is made.
    pub async fn send_with(&self, message: &Message, validate_only: bool) -> Outcome {
        if let Err(e) = message.validate() {
            debug!(error = %e, "message refused before sending");
            return Outcome::MessageRejected {
                reason: e.to_string(),
            };
        }
        let request = BorrowedSendRequest {
            validate_only,
            message,
        };
        let body = match serde_json::to_vec(&request) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                return Outcome::MessageRejected {
                    reason: format!("message: cannot encode as JSON: {e}"),
                };
            }
        };
        self.deliver(body, || target_label(message), validate_only)
            .await
    }

    /// Sends every message concurrently (up to `max_in_flight`) and returns their outcomes in
    /// the same order. No cap on the number of messages.
    pub async fn send_each(&self, messages: &[Message]) -> Vec<Outcome> {
        self.send_each_with(messages, false).await
    }

    /// [`send_each`](Self::send_each) with a choice of `validate_only`.
    pub async fn send_each_with(&self, messages: &[Message], validate_only: bool) -> Vec<Outcome> {
        // Indices, not `&Message` items: a closure over borrowed items would make the
        // future's `Send` proof higher-ranked over their lifetime, and fail.
        stream::iter(0..messages.len())
            .map(move |i| self.send_with(&messages[i], validate_only))
            .buffered(self.inner.max_in_flight)
            .collect()
            .await
    }

    /// Sends `template` to each token (its `token` replaced; it must have no `topic` or
    /// `condition`) and returns one outcome per token, in order. No cap on the number of
    /// tokens: they are sent as individual requests, `max_in_flight` at a time.
    pub async fn send_multicast(&self, template: &Message, tokens: &[String]) -> Vec<Outcome> {
        stream::iter(0..tokens.len())
            .map(move |i| {
                let mut message = template.clone();
                message.token = Some(tokens[i].clone());
                async move { self.send(&message).await }
            })
            .buffered(self.inner.max_in_flight)
            .collect()
            .await
    }

    /// Sends a request body exactly as given: no client-side validation, same auth, retries
    /// and mapping as [`send`](Self::send). Exists for interop tests and debugging of bodies
    /// this client would never build (an unknown field, a number in `data`).
    pub async fn send_raw(&self, body: impl Into<Bytes>) -> Outcome {
        self.deliver(body.into(), || "raw".to_string(), false).await
    }

    /// The retry loop around one request body. `target` names the message's target in the
    /// span; it is only called when the span is recorded (debug level: at info, a span per
    /// message would cost more CPU than the rest of the client's own work).
    async fn deliver(
        &self,
        body: Bytes,
        target: impl FnOnce() -> String,
        validate_only: bool,
    ) -> Outcome {
        let span = debug_span!(
            "fcm_v1_send",
            project = %self.inner.project_id,
            target = %target(),
            validate_only,
            attempts = field::Empty,
            status = field::Empty,
            outcome = field::Empty,
        );
        async {
            let policy = &self.inner.retry;
            let mut attempt: u32 = 1;
            let mut refreshed = false;
            let outcome = loop {
                let token = match self.inner.tokens.token().await {
                    Ok(t) => t,
                    Err(e) => {
                        break Outcome::AuthFailed {
                            reason: format!("token source: {e}"),
                        };
                    }
                };
                // Boxed: the exchange's state (HTTP/2 handles, timers) would otherwise make
                // every send future several KiB, copied each time a caller moves it.
                let outcome = match Box::pin(self.exchange(&body, &token)).await {
                    Exchange::Answer {
                        status,
                        retry_after,
                        body: answer,
                    } => {
                        tracing::Span::current().record("status", status.as_u16());
                        if status == StatusCode::UNAUTHORIZED
                            && !refreshed
                            && !names_fcm_error(&answer)
                        {
                            debug!("401: refreshing the access token and resending once");
                            self.inner.tokens.invalidate(&token);
                            refreshed = true;
                            continue;
                        }
                        map_answer(status, retry_after, &answer)
                    }
                    // No answer at all: the endpoint cannot be reached, for any token.
                    Exchange::Transport(reason) => Outcome::RetryLater {
                        reason: format!("transport: {reason}"),
                        after: None,
                        scope: FailureScope::Channel,
                    },
                };
                if !outcome.is_retriable() || !policy.allows_attempt(attempt + 1) {
                    break outcome;
                }
                let server_wait = outcome.retry_after();
                if server_wait.is_some_and(|w| w > self.inner.max_retry_wait) {
                    debug!(
                        ?server_wait,
                        "server asks for a longer wait than we sleep through"
                    );
                    break outcome;
                }
                let delay = policy.delay(attempt - 1, server_wait);
                debug!(
                    attempt,
                    ?delay,
                    reason = outcome.reason().unwrap_or(""),
                    "retriable outcome; waiting"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            };
            let span = tracing::Span::current();
            span.record("attempts", attempt);
            span.record("outcome", outcome.kind().as_str());
            if !outcome.is_success() {
                debug!(reason = outcome.reason().unwrap_or(""), "send failed");
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// One HTTP request: rate limit, in-flight permit, next connection.
    async fn exchange(&self, body: &Bytes, token: &AccessToken) -> Exchange {
        if let Some(limiter) = &self.inner.limiter {
            limiter.acquire().await;
        }
        let Ok(_permit) = self.inner.in_flight.acquire().await else {
            return Exchange::Transport("sender is shut down".into());
        };
        let index = self.inner.next_client.fetch_add(1, Ordering::Relaxed);
        let transport = &self.inner.transports[index % self.inner.transports.len()];
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.inner.send_uri.clone();
        let headers = request.headers_mut();
        headers.reserve(6);
        // Kept sensitive (as `AccessToken` marks it): h2 never puts an `Authorization` value in
        // HPACK's dynamic table anyway (nghttp2's rule, `skip_value_index`), so a
        // non-sensitive value would be Huffman-coded into every request just the same; the
        // flag only changes the literal's kind to "never indexed" for intermediaries, and
        // costs nothing measurable (measured 2026-12-06: the same ~3,000 instructions of
        // HPACK string encoding per request either way, for `:path` and this value).
        headers.insert(AUTHORIZATION, token.authorization().clone());
        headers.insert(CONTENT_TYPE, JSON);
        headers.insert(API_FORMAT_HEADER, HeaderValue::from_static("2"));
        let answer = match transport.send(request, body.clone()).await {
            Ok(answer) => answer,
            Err(e) => return Exchange::Transport(e.to_string()),
        };
        self.inner
            .last_version
            .store(version_code(answer.head.version), Ordering::Relaxed);
        let retry_after = answer
            .head
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse)
            .map(|r| r.delay_from(SystemTime::now()));
        Exchange::Answer {
            status: answer.head.status,
            retry_after,
            body: answer.body,
        }
    }
}

/// [`SendRequest`](pushgate_proto::v1::SendRequest) over a borrowed message: the same JSON without cloning the message.
#[derive(Serialize)]
struct BorrowedSendRequest<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    validate_only: bool,
    message: &'a Message,
}

/// Maps a received answer to the shared vocabulary.
fn map_answer(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Outcome {
    if status == StatusCode::OK {
        return match serde_json::from_slice::<SendResponse>(body) {
            Ok(r) => Outcome::Delivered { message_id: r.name },
            Err(e) => Outcome::MessageRejected {
                reason: format!("invalid 200 answer: {e}"),
            },
        };
    }
    ErrorBody::outcome_of_response(status.as_u16(), body, retry_after)
}

/// True when an error body carries an FcmError code (a 401 with `THIRD_PARTY_AUTH_ERROR` is
/// about APNs / Web Push credentials: a new access token would not help).
fn names_fcm_error(body: &[u8]) -> bool {
    serde_json::from_slice::<ErrorBody>(body).is_ok_and(|b| b.fcm_error_code().is_some())
}

/// The span's target field: a shortened token, a topic name, or `condition`.
fn target_label(message: &Message) -> String {
    if let Some(token) = &message.token {
        short_token(token)
    } else if let Some(topic) = &message.topic {
        format!("topic:{topic}")
    } else if message.condition.is_some() {
        "condition".into()
    } else {
        "none".into()
    }
}

fn version_code(v: Version) -> u8 {
    match v {
        Version::HTTP_09 => 1,
        Version::HTTP_10 => 2,
        Version::HTTP_11 => 3,
        Version::HTTP_2 => 4,
        Version::HTTP_3 => 5,
        _ => 0,
    }
}

/// Project ids (and `domain:project` ids) are letters, digits, `-`, `_`, `.`, `:`; anything
/// else would change the URL path.
fn is_valid_project_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests;
