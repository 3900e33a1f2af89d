//! The legacy HTTP sender: one request per chunk of ≤1000 tokens, answers mapped to
//! [`LegacyResult`], and a retry loop over [`RetryPolicy`].

use std::fmt;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use pushgate_proto::legacy::limits::MAX_REGISTRATION_IDS;
use pushgate_proto::legacy::{
    JsonRequest, JsonResponse, MulticastResponse, PlainTextResponse, RecipientResult, ResponseError,
};
use pushgate_proto::token::short_token;
use pushgate_proto::{Outcome, RetryAfter, ValidationError};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Url};
use tracing::{Instrument, debug, debug_span, field, warn};

use super::LegacyError;
use super::fast_answer;
use super::message::sealed::Sealed;
use super::message::{JsonMessage, JsonTarget, LegacyMessage, PlainTextMessage};
use super::result::{Answer, LegacyResult};
use crate::RetryPolicy;
use crate::http::{BuildError, HttpConfig};

/// The real FCM legacy endpoint (node-gcm's and gcm-server's default since 2017).
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com/fcm/send";

/// How many chunks of one large multicast are in flight at once, by default.
pub const DEFAULT_MAX_CONCURRENT_CHUNKS: usize = 8;

const JSON_CONTENT_TYPE: &str = "application/json";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded;charset=UTF-8";
/// Most characters of an error body kept in an error value.
const MAX_ERROR_BODY_CHARS: usize = 4096;

/// Sends GCM / FCM legacy HTTP messages with an API key (python-gcm's `GCM`, gcm-client's
/// `GCM`, gcm-server's `Sender`).
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct LegacySender {
    client: Client,
    endpoint: Url,
    authorization: HeaderValue,
    policy: RetryPolicy,
    max_concurrent_chunks: usize,
}

impl fmt::Debug for LegacySender {
    /// Never shows the API key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacySender")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &"<redacted>")
            .field("policy", &self.policy)
            .field("max_concurrent_chunks", &self.max_concurrent_chunks)
            .finish()
    }
}

/// A 200 answer before it is decoded.
struct Reply {
    body: reqwest::Result<bytes::Bytes>,
    retry_after: Option<RetryAfter>,
}

impl LegacySender {
    /// A sender with this API key (server key). `config.endpoint` is the full send URL;
    /// `None` means [`DEFAULT_ENDPOINT`].
    pub fn new(api_key: impl Into<String>, config: HttpConfig) -> Result<Self, BuildError> {
        let endpoint = config.endpoint_or(DEFAULT_ENDPOINT)?;
        let mut authorization = HeaderValue::from_str(&format!("key={}", api_key.into()))
            .map_err(|_| BuildError::Credential)?;
        authorization.set_sensitive(true);
        Ok(Self {
            client: config.build_client()?,
            endpoint,
            authorization,
            policy: RetryPolicy::default(),
            max_concurrent_chunks: DEFAULT_MAX_CONCURRENT_CHUNKS,
        })
    }

    /// Sets the policy whose backoff [`LegacyResult::delay`] uses.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how many chunks of one large multicast may be in flight at once (at least 1).
    pub fn with_max_concurrent_chunks(mut self, chunks: usize) -> Self {
        self.max_concurrent_chunks = chunks.max(1);
        self
    }

    /// The send URL.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Sends a JSON message once. More than 1000 tokens are sent as several requests,
    /// concurrently, and their outcomes put back in request order.
    ///
    /// `Err` only when no request got an answer (or the message is invalid); when some
    /// chunks failed and others did not, the failed chunks' tokens carry the failure as an
    /// outcome (a retriable one for 5xx and transport errors).
    pub async fn send(&self, message: &JsonMessage) -> Result<LegacyResult, LegacyError> {
        match (message.target(), message.checked_token_template()) {
            (JsonTarget::Tokens(ids), Some(template)) => {
                // Checked once for all chunks; everything but the tokens serialized once.
                let mut template = template?;
                template.registration_ids = None;
                let rest = encode(&template)?;
                self.send_token_chunks(message, ids, &rest).await
            }
            _ => {
                message.checked_requests()?;
                self.send_single_target(message).await
            }
        }
    }

    /// Sends a plain-text message once.
    pub async fn send_plain(
        &self,
        message: &PlainTextMessage,
    ) -> Result<LegacyResult<PlainTextMessage>, LegacyError> {
        message.validate()?;
        let token = message.registration_id();
        let span = request_span("plain", 1, token);
        let reply = self
            .post(message.request().to_form().into_bytes(), FORM_CONTENT_TYPE)
            .instrument(span.clone())
            .await?;
        let body = reply.body?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| ResponseError("the plain-text answer is not UTF-8".into()))?;
        let outcome = match PlainTextResponse::parse(text)? {
            PlainTextResponse::Error(code) => code.outcome(delay_now(reply.retry_after)),
            other => other.outcome(),
        };
        span.in_scope(|| log_outcome(token, &outcome));
        Ok(LegacyResult::new(
            message.clone(),
            Answer::Tokens(vec![outcome]),
            Vec::new(),
            reply.retry_after,
            self.policy.clone(),
        ))
    }

    /// Sends a JSON message and retries what can be retried, sleeping between rounds.
    ///
    /// Each round resends only the tokens whose outcome is retriable (their new outcomes go
    /// back to their original positions; canonical ids and dead tokens of every round are
    /// kept), or the whole remaining request after a 5xx or transport error. Rounds are
    /// `policy.delay(n)` apart, never less than the server's `Retry-After`. When the first
    /// round never got an answer and attempts run out, the last error is returned;
    /// otherwise the merged result, where tokens still failing keep their last retriable
    /// outcome. Errors that retrying cannot fix (400, 401, invalid message) end the loop at
    /// once: returned as `Err` in the first round, logged after it.
    pub async fn send_with_retries(
        &self,
        message: &JsonMessage,
        policy: &RetryPolicy,
    ) -> Result<LegacyResult, LegacyError> {
        self.retry_loop(message, policy).await
    }

    /// [`send_with_retries`](Self::send_with_retries) for a plain-text message.
    pub async fn send_plain_with_retries(
        &self,
        message: &PlainTextMessage,
        policy: &RetryPolicy,
    ) -> Result<LegacyResult<PlainTextMessage>, LegacyError> {
        self.retry_loop(message, policy).await
    }

    async fn retry_loop<M: SendOnce>(
        &self,
        message: &M,
        policy: &RetryPolicy,
    ) -> Result<LegacyResult<M>, LegacyError> {
        let tokens = message.tokens();
        let span = debug_span!(
            "legacy_send_with_retries",
            recipients = tokens.len(),
            first = %tokens.first().map(|t| short_token(t)).unwrap_or_default(),
            max_attempts = policy.max_attempts,
            attempts = field::Empty,
        );
        async {
            let mut merged: Option<LegacyResult<M>> = None;
            let mut last_error: Option<LegacyError> = None;
            let mut attempt: u32 = 1;
            loop {
                let pending = match &merged {
                    None => message.clone(),
                    Some(result) => match result.retry() {
                        Some(next) => next,
                        None => break,
                    },
                };
                let server_delay = match pending.send_once(self).await {
                    Ok(round) => {
                        let server_delay = round.server_delay();
                        match merged.as_mut() {
                            None => merged = Some(round),
                            Some(acc) => {
                                if let Err(e) = acc.merge(round) {
                                    warn!(error = %e, "retry answer does not fit; stopping");
                                    break;
                                }
                            }
                        }
                        last_error = None;
                        server_delay
                    }
                    Err(e) if e.is_retriable() => {
                        warn!(attempt, error = %e, "request failed; will retry if attempts remain");
                        let server_delay = e.retry_after_delay();
                        last_error = Some(e);
                        server_delay
                    }
                    Err(e) => {
                        if merged.is_none() {
                            return Err(e);
                        }
                        warn!(attempt, error = %e, "retry failed for good; keeping earlier outcomes");
                        break;
                    }
                };
                let more = merged.as_ref().is_none_or(LegacyResult::needs_retry);
                if !more || !policy.allows_attempt(attempt + 1) {
                    break;
                }
                let delay = policy.delay(attempt - 1, server_delay);
                debug!(attempt, ?delay, ?server_delay, "waiting before retry");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            tracing::Span::current().record("attempts", attempt);
            match (merged, last_error) {
                (Some(mut result), _) => {
                    result.set_policy(policy.clone());
                    Ok(result)
                }
                (None, Some(e)) => Err(e),
                (None, None) => Err(LegacyError::InvalidResponse(ResponseError(
                    "no answer and no error".into(),
                ))),
            }
        }
        .instrument(span)
        .await
    }

    /// Token targets: chunks of ≤1000, concurrently, merged back in order. `rest` is the
    /// request's JSON without `registration_ids` (see [`token_body`]).
    async fn send_token_chunks(
        &self,
        message: &JsonMessage,
        ids: &[String],
        rest: &[u8],
    ) -> Result<LegacyResult, LegacyError> {
        let chunks: Vec<&[String]> = ids.chunks(MAX_REGISTRATION_IDS).collect();
        // Futures are built before they enter the stream: a closure inside the stream would
        // make the future's `Send` proof higher-ranked over the chunk lifetime.
        let requests: Vec<_> = chunks
            .iter()
            .map(|chunk| self.send_chunk(rest, chunk))
            .collect();
        let answers: Vec<Result<ChunkAnswer, LegacyError>> = stream::iter(requests)
            .buffered(self.max_concurrent_chunks)
            .collect()
            .await;

        let mut outcomes = Vec::with_capacity(ids.len());
        let mut multicast_ids = Vec::new();
        let mut retry_after = None;
        let mut first_error = None;
        let mut answered = false;
        for (chunk, answer) in chunks.iter().zip(answers) {
            match answer {
                Ok(a) => {
                    answered = true;
                    outcomes.extend(a.outcomes);
                    multicast_ids.push(a.multicast_id);
                    retry_after = longer(retry_after, a.retry_after);
                }
                Err(e) => {
                    outcomes.extend(std::iter::repeat_n(e.outcome(), chunk.len()));
                    retry_after = longer(retry_after, e.retry_after());
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !answered => Err(e),
            _ => Ok(LegacyResult::new(
                message.clone(),
                Answer::Tokens(outcomes),
                multicast_ids,
                retry_after,
                self.policy.clone(),
            )),
        }
    }

    /// One `registration_ids` request for the tokens of `chunk` (`rest`: see
    /// [`token_body`]).
    async fn send_chunk(&self, rest: &[u8], chunk: &[String]) -> Result<ChunkAnswer, LegacyError> {
        let span = request_span(
            "json",
            chunk.len(),
            chunk.first().map_or("", String::as_str),
        );
        async {
            let body = token_body(rest, chunk);
            let reply = self.post(body, JSON_CONTENT_TYPE).await?;
            let body = reply.body?;
            match parse_token_answer(&body)? {
                JsonResponse::Multicast(m) => {
                    let outcomes = token_outcomes(chunk, m.results, reply.retry_after)?;
                    Ok(ChunkAnswer {
                        outcomes,
                        multicast_id: m.multicast_id,
                        retry_after: reply.retry_after,
                    })
                }
                other => Err(ResponseError(format!(
                    "expected a multicast answer for registration_ids, got {other:?}"
                ))
                .into()),
            }
        }
        .instrument(span)
        .await
    }

    /// Topic, condition, device group or raw `to`: one request, answer shape decides.
    async fn send_single_target(&self, message: &JsonMessage) -> Result<LegacyResult, LegacyError> {
        let tokens = message.tokens();
        let target = tokens.first().map_or("", String::as_str);
        let span = request_span("json", 1, target);
        async {
            let body = json_body(message, None)?;
            let reply = self.post(body, JSON_CONTENT_TYPE).await?;
            let body = reply.body?;
            let (answer, multicast_ids) = match JsonResponse::parse(&body)? {
                JsonResponse::Multicast(m) => (
                    Answer::Tokens(token_outcomes(tokens, m.results, reply.retry_after)?),
                    vec![m.multicast_id],
                ),
                JsonResponse::Topic(t) => {
                    debug!(message_id = ?t.message_id, error = ?t.error, "topic answer");
                    (Answer::Topic(t), Vec::new())
                }
                JsonResponse::Group(g) => {
                    debug!(
                        success = g.success,
                        failure = g.failure,
                        "device-group answer"
                    );
                    (Answer::Group(g), Vec::new())
                }
            };
            Ok(LegacyResult::new(
                message.clone(),
                answer,
                multicast_ids,
                reply.retry_after,
                self.policy.clone(),
            ))
        }
        .instrument(span)
        .await
    }

    /// POSTs one body and sorts the answer by status.
    async fn post(&self, body: Vec<u8>, content_type: &'static str) -> Result<Reply, LegacyError> {
        let response = self
            .client
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        match status {
            200 => Ok(Reply {
                body: response.bytes().await,
                retry_after,
            }),
            401 => Err(LegacyError::Authentication),
            400 => Err(LegacyError::MalformedRequest {
                body: error_body(response).await,
            }),
            500..=599 => Err(LegacyError::Unavailable {
                status,
                retry_after,
            }),
            _ => Err(LegacyError::UnexpectedStatus {
                status,
                body: error_body(response).await,
            }),
        }
    }
}

/// One chunk's answer, decoded.
struct ChunkAnswer {
    outcomes: Vec<Outcome>,
    multicast_id: i64,
    retry_after: Option<RetryAfter>,
}

/// Sends one message the way its kind is sent; lets one retry loop serve both kinds.
trait SendOnce: LegacyMessage {
    fn send_once<'a>(
        &'a self,
        sender: &'a LegacySender,
    ) -> BoxFuture<'a, Result<LegacyResult<Self>, LegacyError>>;
}

impl SendOnce for JsonMessage {
    fn send_once<'a>(
        &'a self,
        sender: &'a LegacySender,
    ) -> BoxFuture<'a, Result<LegacyResult<Self>, LegacyError>> {
        Box::pin(sender.send(self))
    }
}

impl SendOnce for PlainTextMessage {
    fn send_once<'a>(
        &'a self,
        sender: &'a LegacySender,
    ) -> BoxFuture<'a, Result<LegacyResult<Self>, LegacyError>> {
        Box::pin(sender.send_plain(self))
    }
}

/// The span of one HTTP request: format, number of recipients, first token shortened. At
/// debug level: a span per request at info would cost more CPU than the request's own work.
fn request_span(format: &'static str, recipients: usize, first: &str) -> tracing::Span {
    debug_span!(
        "legacy_request",
        format,
        recipients,
        first = %short_token(first),
        status = field::Empty,
    )
}

fn json_body(message: &JsonMessage, tokens: Option<&[String]>) -> Result<Vec<u8>, LegacyError> {
    encode(&message.request_for(tokens))
}

/// A request's JSON body.
fn encode(request: &JsonRequest) -> Result<Vec<u8>, LegacyError> {
    serde_json::to_vec(request)
        .map_err(|e| ValidationError::new("body", format!("cannot encode as JSON: {e}")).into())
}

/// The JSON body of a `registration_ids` request, byte for byte what serializing its
/// [`JsonRequest`] gives, without cloning the tokens into one: `registration_ids` is the
/// first field serialized for a token request (`to` is absent), so it is written here in
/// front of `rest`, the serialized request without it (`{}` or `{"data":…}`).
///
/// Tokens are checked for characters JSON must escape a whole word at a time and copied
/// as they are; one that needs escaping goes through `serde_json` (serde_json's per-byte
/// escaping was a quarter of a multicast's CPU: 1,400 instructions per token).
fn token_body(rest: &[u8], chunk: &[String]) -> Vec<u8> {
    let tokens: usize = chunk.iter().map(|t| t.len() + 3).sum();
    let mut body = Vec::with_capacity(rest.len() + tokens + 24);
    body.extend_from_slice(b"{\"registration_ids\":[");
    for (i, token) in chunk.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        if needs_escaping(token.as_bytes()) {
            // Writing a `&str` into a `Vec` cannot fail.
            let _ = serde_json::to_writer(&mut body, token);
        } else {
            body.push(b'"');
            body.extend_from_slice(token.as_bytes());
            body.push(b'"');
        }
    }
    body.push(b']');
    match rest {
        [b'{', b'}'] | [] => body.push(b'}'),
        _ => {
            body.push(b',');
            body.extend_from_slice(&rest[1..]);
        }
    }
    body
}

/// True when JSON needs an escape for some byte of `s` (a control character, `"` or `\`;
/// serde_json escapes nothing else). No early exit, so the compiler checks many bytes at
/// once.
fn needs_escaping(s: &[u8]) -> bool {
    s.iter().fold(false, |bad, &b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// The answer to a `registration_ids` request: FCM's usual layout read by hand (see
/// [`fast_answer`]), else read straight into the multicast shape it should have (one pass
/// over up to 1000 results), else through [`JsonResponse::parse`], which tells the other
/// shapes apart and words the errors.
fn parse_token_answer(body: &[u8]) -> Result<JsonResponse, ResponseError> {
    if let Some(m) = fast_answer::read(body) {
        return Ok(JsonResponse::Multicast(m));
    }
    match serde_json::from_slice::<MulticastResponse>(body) {
        Ok(m) => Ok(JsonResponse::Multicast(m)),
        Err(_) => JsonResponse::parse(body),
    }
}

/// The outcome of each token, `results[i]` for the i-th token; the counts must match
/// (gcm-client checks too).
fn token_outcomes(
    tokens: &[String],
    results: Vec<RecipientResult>,
    retry_after: Option<RetryAfter>,
) -> Result<Vec<Outcome>, ResponseError> {
    if results.len() != tokens.len() {
        return Err(ResponseError(format!(
            "{} results for {} registration ids",
            results.len(),
            tokens.len()
        )));
    }
    let after = delay_now(retry_after);
    let outcomes = results
        .into_iter()
        .map(|r| into_outcome(r, after))
        .collect::<Result<Vec<_>, ResponseError>>()?;
    for (token, outcome) in tokens.iter().zip(&outcomes) {
        log_outcome(token, outcome);
    }
    Ok(outcomes)
}

/// [`RecipientResult::outcome`], moving the message id of a plain delivery (the common
/// case) instead of copying it.
fn into_outcome(
    result: RecipientResult,
    after: Option<Duration>,
) -> Result<Outcome, ResponseError> {
    match result {
        RecipientResult {
            message_id: Some(message_id),
            registration_id: None,
            error: None,
        } => Ok(Outcome::Delivered { message_id }),
        other => other.outcome(after),
    }
}

fn log_outcome(token: &str, outcome: &Outcome) {
    if !outcome.is_success() || matches!(outcome, Outcome::Rotated { .. }) {
        debug!(
            token = %short_token(token),
            outcome = outcome.kind().as_str(),
            reason = outcome.reason().unwrap_or(""),
            "recipient outcome"
        );
    }
}

/// A `Retry-After` as a wait counted from now.
fn delay_now(retry_after: Option<RetryAfter>) -> Option<Duration> {
    retry_after.map(|r| r.delay_from(SystemTime::now()))
}

/// The one of two `Retry-After`s that asks for the longer wait.
fn longer(a: Option<RetryAfter>, b: Option<RetryAfter>) -> Option<RetryAfter> {
    match (a, b) {
        (Some(x), Some(y)) => {
            let now = SystemTime::now();
            Some(if y.delay_from(now) > x.delay_from(now) {
                y
            } else {
                x
            })
        }
        (x, y) => x.or(y),
    }
}

/// The start of an error response's body, trailing newline removed.
async fn error_body(response: reqwest::Response) -> String {
    match response.text().await {
        Ok(text) => {
            let trimmed = text.trim_end();
            trimmed.chars().take(MAX_ERROR_BODY_CHARS).collect()
        }
        Err(e) => format!("<unreadable body: {e}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let sender = LegacySender::new("AIzaSecretKey123", HttpConfig::new()).unwrap();
        let shown = format!("{sender:?}");
        assert!(!shown.contains("AIzaSecretKey123"), "{shown}");
        assert!(shown.contains("fcm.googleapis.com/fcm/send"), "{shown}");
    }

    #[test]
    fn a_key_with_control_characters_is_refused_without_echoing_it() {
        let err = LegacySender::new("bad\nkey", HttpConfig::new()).unwrap_err();
        assert!(matches!(err, BuildError::Credential));
        assert!(!err.to_string().contains("bad"));
    }

    #[test]
    fn longer_retry_after_wins() {
        let soon = Some(RetryAfter::Seconds(1));
        let later = Some(RetryAfter::Date(
            SystemTime::now() + Duration::from_secs(30),
        ));
        assert_eq!(longer(soon, later), later);
        assert_eq!(longer(later, soon), later);
        assert_eq!(longer(None, soon), soon);
        assert_eq!(longer(None, None), None);
    }

    /// The one-pass read of a token answer gives what the general parser gives, for the
    /// multicast shape and for bodies that are not one.
    #[test]
    fn token_answers_parse_like_the_general_parser() {
        let bodies: [&[u8]; 6] = [
            br#"{"multicast_id":9007199254740993,"success":1,"failure":1,"canonical_ids":1,"results":[{"message_id":"0:1","registration_id":"new"},{"error":"NotRegistered"}]}"#,
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0}"#,
            br#"{"multicast_id":1,"multicast_id":2,"success":0,"failure":0,"canonical_ids":0}"#,
            br#"{"message_id":123}"#,
            br#"{"success":1,"failure":0}"#,
            b"not json",
        ];
        for body in bodies {
            let fast = parse_token_answer(body).map_err(|e| e.to_string());
            let general = JsonResponse::parse(body).map_err(|e| e.to_string());
            assert_eq!(fast, general, "{}", String::from_utf8_lossy(body));
        }
    }

    /// The hand-built token bodies are byte for byte the serialized requests, for messages
    /// with and without other fields and tokens with and without characters to escape.
    #[test]
    fn token_bodies_are_the_serialized_requests() {
        use pushgate_proto::legacy::Notification;
        let tokens: Vec<String> = vec![
            "APA91b-plain_token:123".into(),
            "quote\"back\\slash".into(),
            "tab\there\u{1}ctl".into(),
            "ünïcode-✓\u{7f}".into(),
            "x".repeat(300),
        ];
        let messages = [
            JsonMessage::new(tokens.clone()),
            JsonMessage::new(tokens.clone())
                .data("seq", "1")
                .data("quote", "say \"hi\"")
                .collapse_key("k")
                .time_to_live(60)
                .dry_run(true),
            JsonMessage::new(tokens.clone()).notification(Notification {
                title: Some("t".into()),
                body: Some("b".into()),
                ..Default::default()
            }),
        ];
        for message in &messages {
            let mut template = message.checked_token_template().unwrap().unwrap();
            template.registration_ids = None;
            let rest = encode(&template).unwrap();
            for chunk in [&tokens[..1], &tokens[..]] {
                let expected = serde_json::to_vec(&message.request_for(Some(chunk))).unwrap();
                let built = token_body(&rest, chunk);
                assert_eq!(
                    String::from_utf8_lossy(&built),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
        assert!(!needs_escaping("APA91b:abc-_".as_bytes()));
        assert!(needs_escaping(b"a\"b"));
        assert!(needs_escaping(b"a\\b"));
        assert!(needs_escaping(b"a\nb"));
    }

    /// Moving the message id gives what `RecipientResult::outcome` gives, for every shape.
    #[test]
    fn into_outcome_is_outcome() {
        let after = Some(Duration::from_secs(3));
        let results = [
            RecipientResult::delivered("0:1", None),
            RecipientResult::delivered("0:2", Some("new".into())),
            RecipientResult::failed(&pushgate_proto::legacy::ErrorCode::Unavailable),
            RecipientResult::failed(&pushgate_proto::legacy::ErrorCode::NotRegistered),
            RecipientResult::default(),
            RecipientResult {
                message_id: Some("0:3".into()),
                registration_id: None,
                error: Some("NotRegistered".into()),
            },
        ];
        for result in results {
            let expected = result.outcome(after).map_err(|e| e.to_string());
            let moved = into_outcome(result, after).map_err(|e| e.to_string());
            assert_eq!(moved, expected);
        }
    }

    #[test]
    fn results_must_match_the_tokens() {
        let tokens = vec!["a".to_string(), "b".to_string()];
        let one = vec![RecipientResult::delivered("1", None)];
        assert!(token_outcomes(&tokens, one, None).is_err());
        let two = vec![
            RecipientResult::delivered("1", Some("A2".into())),
            RecipientResult::failed(&pushgate_proto::legacy::ErrorCode::Unavailable),
        ];
        let outcomes = token_outcomes(&tokens, two, Some(RetryAfter::Seconds(4))).unwrap();
        assert_eq!(outcomes.len(), 2);
        assert_eq!(
            outcomes[0],
            Outcome::Rotated {
                message_id: "1".into(),
                new_token: "A2".into()
            }
        );
        assert_eq!(outcomes[1].retry_after(), Some(Duration::from_secs(4)));
    }
}
