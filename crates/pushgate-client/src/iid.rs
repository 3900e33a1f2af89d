//! Topic subscriptions and Instance ID lookups (docs/protocols.md, "Topics: limits",
//! "Instance ID").
//!
//! Exists so that a service can (un)subscribe any number of tokens to a topic the way
//! firebase-admin's `subscribeToTopic` / `unsubscribeFromTopic` do: batches of at most 1000
//! tokens (`iid/v1:batchAdd` / `iid/v1:batchRemove`), per-token errors reported by their
//! index in the caller's list.

use std::fmt;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use pushgate_proto::ValidationError;
use pushgate_proto::iid::{BatchRequest, BatchResponse, InstanceInfo, MAX_BATCH_TOKENS};
use pushgate_proto::legacy::limits::{TOPIC_PREFIX, is_valid_topic_name};
use pushgate_proto::v1::ErrorBody as V1ErrorBody;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use serde::Deserialize;
use tracing::{Instrument, debug, info_span, warn};

use crate::http::{BuildError, HttpConfig};
use crate::oauth::{OAuthError, TokenSource};

/// The real Instance ID server.
pub const DEFAULT_BASE_URL: &str = "https://iid.googleapis.com";
/// Header the Admin SDKs add next to a Bearer token on IID calls.
pub const ACCESS_TOKEN_AUTH_HEADER: &str = "access_token_auth";
/// How many batches of one large (un)subscribe are in flight at once.
pub const MAX_CONCURRENT_BATCHES: usize = 4;
/// The real FCM server, home of the v1 registrations endpoints.
pub const DEFAULT_FCM_BASE_URL: &str = "https://fcm.googleapis.com";
/// How many single-token v1 registration calls are in flight at once.
pub const MAX_CONCURRENT_V1_CALLS: usize = 32;
/// Most characters of an error body kept in an error.
const MAX_ERROR_BODY_CHARS: usize = 1024;

/// How IID calls authenticate (docs/protocols.md, "Instance ID").
///
/// Exists because the IID server takes both the legacy server key and, in current docs,
/// an OAuth2 token (plus `access_token_auth: true`). `Debug` never shows the key.
#[derive(Clone)]
pub enum IidAuth {
    /// `Authorization: key=<server key>`.
    ApiKey(String),
    /// `Authorization: Bearer <token>` and `access_token_auth: true`.
    OAuth(Arc<dyn TokenSource>),
}

impl fmt::Debug for IidAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IidAuth::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            IidAuth::OAuth(source) => f.debug_tuple("OAuth").field(source).finish(),
        }
    }
}

/// Why an IID call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum IidError {
    /// The request breaks a rule (topic name, empty token); nothing was sent.
    #[error("invalid request: {0}")]
    Invalid(#[from] ValidationError),
    /// The server refused the whole request: `{"error": "<code>"}` with an HTTP status.
    #[error("IID server answered HTTP {status}: {error}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's `error` text (or the start of the body).
        error: String,
    },
    /// A 200 body that is not the documented shape (or has the wrong number of results).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The v1 registrations form needs OAuth credentials that name a project.
    #[error("the v1 registrations endpoints need OAuth credentials with a project id")]
    NeedsOAuthProject,
    /// No OAuth token could be obtained.
    #[error("access token: {0}")]
    OAuth(#[from] OAuthError),
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
}

/// One token that failed, by its position in the caller's list (firebase-admin's
/// `FirebaseArrayIndexError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicManagementError {
    /// Index of the token in the list given to subscribe/unsubscribe.
    pub index: usize,
    /// The server's code: `NOT_FOUND`, `INVALID_ARGUMENT`, `TOO_MANY_TOPICS`, …
    pub reason: String,
}

/// The merged answer of one subscribe/unsubscribe call (firebase-admin's
/// `TopicManagementResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicManagementResult {
    /// Tokens the server accepted.
    pub success_count: usize,
    /// Tokens that failed.
    pub failure_count: usize,
    /// The failures, in index order.
    pub errors: Vec<TopicManagementError>,
}

impl TopicManagementResult {
    /// Records one failed token.
    fn fail(&mut self, index: usize, reason: String) {
        self.failure_count += 1;
        self.errors.push(TopicManagementError { index, reason });
    }

    /// Adds one batch's results, whose first token is `offset` in the caller's list.
    fn absorb(&mut self, offset: usize, response: &BatchResponse) {
        for (i, result) in response.results.iter().enumerate() {
            match &result.error {
                None => self.success_count += 1,
                Some(reason) => self.fail(offset + i, reason.clone()),
            }
        }
    }
}

/// Manages topic subscriptions through the Instance ID server API.
///
/// Exists as the one place that knows IID batching, auth headers and error shapes. Cheap to
/// clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct TopicManager {
    client: Client,
    base: Url,
    fcm_base: Url,
    auth: IidAuth,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl TopicManager {
    /// A manager with this auth. `config.endpoint` is the base URL (e.g.
    /// `http://127.0.0.1:port`); `None` means [`DEFAULT_BASE_URL`].
    pub fn new(auth: IidAuth, config: HttpConfig) -> Result<Self, BuildError> {
        let base = config.endpoint_or(DEFAULT_BASE_URL)?;
        if let IidAuth::ApiKey(key) = &auth {
            HeaderValue::from_str(&format!("key={key}")).map_err(|_| BuildError::Credential)?;
        }
        let fcm_base = HttpConfig::new().endpoint_or(DEFAULT_FCM_BASE_URL)?;
        Ok(Self {
            client: config.build_client()?,
            base,
            fcm_base,
            auth,
        })
    }

    /// Sets where the v1 registrations endpoints live (default [`DEFAULT_FCM_BASE_URL`]),
    /// e.g. an emulator's `http://127.0.0.1:port`.
    pub fn with_fcm_base_url(mut self, url: &str) -> Result<Self, BuildError> {
        self.fcm_base = HttpConfig::new().with_endpoint(url).endpoint_or(url)?;
        Ok(self)
    }

    /// Subscribes `tokens` to `topic` the way firebase-admin 7.x does: one
    /// `POST {fcm}/v1/projects/{p}/registrations/{token}/topicSubscriptions?topic_name=…`
    /// per token, concurrently, with the OAuth source's project. Per-token failures carry
    /// the `FcmError` code (e.g. `UNREGISTERED`) or the status name.
    pub async fn subscribe_v1(
        &self,
        topic: &str,
        tokens: &[String],
    ) -> Result<TopicManagementResult, IidError> {
        self.registrations(topic, tokens, true).await
    }

    /// Unsubscribes `tokens` from `topic` with one
    /// `DELETE …/topicSubscriptions/{topic}?allow_missing=true` per token, concurrently.
    pub async fn unsubscribe_v1(
        &self,
        topic: &str,
        tokens: &[String],
    ) -> Result<TopicManagementResult, IidError> {
        self.registrations(topic, tokens, false).await
    }

    async fn registrations(
        &self,
        topic: &str,
        tokens: &[String],
        add: bool,
    ) -> Result<TopicManagementResult, IidError> {
        let project = match &self.auth {
            IidAuth::OAuth(source) => source
                .project_id()
                .ok_or(IidError::NeedsOAuthProject)?
                .to_string(),
            IidAuth::ApiKey(_) => return Err(IidError::NeedsOAuthProject),
        };
        let name = topic.strip_prefix(TOPIC_PREFIX).unwrap_or(topic);
        if !is_valid_topic_name(name) {
            return Err(ValidationError::new(
                "topic",
                format!("{topic:?} must be [a-zA-Z0-9-_.~%]+, optionally after /topics/"),
            )
            .into());
        }
        if tokens.is_empty() {
            return Err(ValidationError::new("registration_tokens", "must not be empty").into());
        }
        if let Some(i) = tokens.iter().position(|t| t.is_empty()) {
            return Err(ValidationError::new(
                format!("registration_tokens[{i}]"),
                "must not be empty",
            )
            .into());
        }
        let span = info_span!("iid_registrations_v1", add, tokens = tokens.len());
        async {
            let mut calls = Vec::with_capacity(tokens.len());
            for token in tokens {
                let url = self.registration_url(&project, token, name, add)?;
                let method = if add { Method::POST } else { Method::DELETE };
                let body = add.then(|| b"{}".to_vec());
                calls.push(self.call(method, url, body));
            }
            let answers: Vec<Result<Vec<u8>, IidError>> = stream::iter(calls)
                .buffered(MAX_CONCURRENT_V1_CALLS)
                .collect()
                .await;
            let mut merged = TopicManagementResult::default();
            for (index, answer) in answers.into_iter().enumerate() {
                match answer {
                    Ok(_) => merged.success_count += 1,
                    Err(IidError::Server { error, .. }) => merged.fail(index, error),
                    Err(IidError::Transport(e)) => {
                        debug!(index, error = %e, "no answer for one token");
                        merged.fail(index, "UNAVAILABLE".into());
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(merged)
        }
        .instrument(span)
        .await
    }

    fn registration_url(
        &self,
        project: &str,
        token: &str,
        topic: &str,
        add: bool,
    ) -> Result<Url, IidError> {
        let mut url = self.fcm_base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| IidError::InvalidResponse("FCM base URL cannot take a path".into()))?;
            path.pop_if_empty().extend([
                "v1",
                "projects",
                project,
                "registrations",
                token,
                "topicSubscriptions",
            ]);
            if !add {
                path.push(topic);
            }
        }
        if add {
            url.query_pairs_mut().append_pair("topic_name", topic);
        } else {
            url.query_pairs_mut().append_pair("allow_missing", "true");
        }
        Ok(url)
    }

    /// Subscribes `tokens` to `topic` (with or without `/topics/`), 1000 per request.
    pub async fn subscribe(
        &self,
        topic: &str,
        tokens: &[String],
    ) -> Result<TopicManagementResult, IidError> {
        self.batch("iid/v1:batchAdd", topic, tokens).await
    }

    /// Unsubscribes `tokens` from `topic`, 1000 per request.
    pub async fn unsubscribe(
        &self,
        topic: &str,
        tokens: &[String],
    ) -> Result<TopicManagementResult, IidError> {
        self.batch("iid/v1:batchRemove", topic, tokens).await
    }

    /// `GET iid/info/<token>`; `details` adds the topic subscriptions (`rel`).
    pub async fn info(&self, token: &str, details: bool) -> Result<InstanceInfo, IidError> {
        let mut url = self.join("iid/info")?;
        url.path_segments_mut()
            .map_err(|_| IidError::InvalidResponse("base URL cannot take a path".into()))?
            .push(token);
        if details {
            url.set_query(Some("details=true"));
        }
        let body = self.call(Method::GET, url, None).await?;
        serde_json::from_slice(&body).map_err(|e| IidError::InvalidResponse(e.to_string()))
    }

    async fn batch(
        &self,
        path: &str,
        topic: &str,
        tokens: &[String],
    ) -> Result<TopicManagementResult, IidError> {
        let requests: Vec<BatchRequest> = tokens
            .chunks(MAX_BATCH_TOKENS)
            .map(|chunk| BatchRequest::new(topic, chunk.to_vec()))
            .collect();
        if requests.is_empty() {
            // Let the protocol's own rule name the problem.
            BatchRequest::new(topic, Vec::new()).validate()?;
        }
        for request in &requests {
            request.validate()?;
        }
        let url = self.join(path)?;
        let span = info_span!(
            "iid_batch",
            path,
            tokens = tokens.len(),
            batches = requests.len()
        );
        async {
            let calls: Vec<_> = requests
                .iter()
                .map(|request| self.send_batch(url.clone(), request))
                .collect();
            let answers: Vec<Result<BatchResponse, IidError>> = stream::iter(calls)
                .buffered(MAX_CONCURRENT_BATCHES)
                .collect()
                .await;
            let mut merged = TopicManagementResult::default();
            for (n, answer) in answers.into_iter().enumerate() {
                merged.absorb(n * MAX_BATCH_TOKENS, &answer?);
            }
            debug!(
                success = merged.success_count,
                failure = merged.failure_count,
                "topic management answered"
            );
            Ok(merged)
        }
        .instrument(span)
        .await
    }

    async fn send_batch(
        &self,
        url: Url,
        request: &BatchRequest,
    ) -> Result<BatchResponse, IidError> {
        let body =
            serde_json::to_vec(request).map_err(|e| IidError::InvalidResponse(e.to_string()))?;
        let answer = self.call(Method::POST, url, Some(body)).await?;
        let response: BatchResponse = serde_json::from_slice(&answer)
            .map_err(|e| IidError::InvalidResponse(e.to_string()))?;
        if response.results.len() != request.registration_tokens.len() {
            return Err(IidError::InvalidResponse(format!(
                "{} results for {} tokens",
                response.results.len(),
                request.registration_tokens.len()
            )));
        }
        Ok(response)
    }

    /// One authenticated call; with OAuth, a 401 invalidates the token and retries once.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, IidError> {
        let mut retried = false;
        loop {
            let mut request = self.client.request(method.clone(), url.clone());
            let mut used = None;
            match &self.auth {
                IidAuth::ApiKey(key) => {
                    let mut value = HeaderValue::from_str(&format!("key={key}"))
                        .map_err(|_| IidError::InvalidResponse("unusable API key".into()))?;
                    value.set_sensitive(true);
                    request = request.header(AUTHORIZATION, value);
                }
                IidAuth::OAuth(source) => {
                    let token = source.token().await?;
                    request = request
                        .header(AUTHORIZATION, token.authorization().clone())
                        .header(
                            HeaderName::from_static(ACCESS_TOKEN_AUTH_HEADER),
                            HeaderValue::from_static("true"),
                        );
                    used = Some(token);
                }
            }
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?.to_vec();
            if status == 200 {
                return Ok(bytes);
            }
            if let (401, Some(token), IidAuth::OAuth(source), false) =
                (status, &used, &self.auth, retried)
            {
                source.invalidate(token);
                retried = true;
                continue;
            }
            let error = error_text(&bytes);
            warn!(status, error = %error, "IID call refused");
            return Err(IidError::Server { status, error });
        }
    }

    fn join(&self, path: &str) -> Result<Url, IidError> {
        let base = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{path}")).map_err(|e| IidError::InvalidResponse(e.to_string()))
    }
}

/// The error text of a refused call: the IID `{"error": "<code>"}`, else the v1
/// `google.rpc.Status` (its `FcmError` code, else its status name), else the body.
fn error_text(bytes: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(bytes) {
        return e.error;
    }
    if let Ok(v1) = serde_json::from_slice::<V1ErrorBody>(bytes) {
        if let Some(code) = v1.fcm_error_code() {
            return code.to_string();
        }
        if !v1.error.status.is_empty() {
            return v1.error.status;
        }
    }
    String::from_utf8_lossy(bytes)
        .chars()
        .take(MAX_ERROR_BODY_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_proto::iid::BatchResult;

    fn response(errors_at: &[usize], len: usize) -> BatchResponse {
        BatchResponse {
            results: (0..len)
                .map(|i| BatchResult {
                    error: errors_at.contains(&i).then(|| "NOT_FOUND".to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn batches_merge_with_their_offsets() {
        // 2500 tokens: batches of 1000, 1000, 500; failures at global 7, 1003, 2499.
        let mut merged = TopicManagementResult::default();
        merged.absorb(0, &response(&[7], 1000));
        merged.absorb(1000, &response(&[3], 1000));
        merged.absorb(2000, &response(&[499], 500));
        assert_eq!(merged.success_count, 2497);
        assert_eq!(merged.failure_count, 3);
        let indices: Vec<usize> = merged.errors.iter().map(|e| e.index).collect();
        assert_eq!(indices, vec![7, 1003, 2499]);
        assert!(merged.errors.iter().all(|e| e.reason == "NOT_FOUND"));
    }

    #[test]
    fn error_texts_of_both_forms() {
        assert_eq!(error_text(br#"{"error":"InvalidToken"}"#), "InvalidToken");
        let v1 = br#"{"error":{"code":404,"message":"gone","status":"NOT_FOUND","details":[
            {"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(error_text(v1), "UNREGISTERED");
        let bare = br#"{"error":{"code":401,"message":"no","status":"UNAUTHENTICATED"}}"#;
        assert_eq!(error_text(bare), "UNAUTHENTICATED");
        assert_eq!(error_text(b"<html>"), "<html>");
    }

    #[test]
    fn v1_registration_urls() {
        let manager = TopicManager::new(IidAuth::ApiKey("k".into()), HttpConfig::new())
            .unwrap()
            .with_fcm_base_url("http://127.0.0.1:9")
            .unwrap();
        let add = manager
            .registration_url("p", "tok/1", "news", true)
            .unwrap();
        assert_eq!(
            add.as_str(),
            "http://127.0.0.1:9/v1/projects/p/registrations/tok%2F1/topicSubscriptions?topic_name=news"
        );
        let remove = manager.registration_url("p", "t", "news", false).unwrap();
        assert_eq!(
            remove.as_str(),
            "http://127.0.0.1:9/v1/projects/p/registrations/t/topicSubscriptions/news?allow_missing=true"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let auth = IidAuth::ApiKey("AIzaSecretKey".into());
        assert!(!format!("{auth:?}").contains("AIzaSecretKey"));
        let manager = TopicManager::new(auth, HttpConfig::new()).unwrap();
        assert!(!format!("{manager:?}").contains("AIzaSecretKey"));
    }
}
