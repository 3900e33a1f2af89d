//! The C2DM sender: ClientLogin, `/c2dm/send`, token rotation and retries.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use pushgate_proto::c2dm::{ClientLoginRequest, ClientLoginResponse, SERVICE, UPDATE_CLIENT_AUTH};
use pushgate_proto::legacy::PlainTextResponse;
use pushgate_proto::token::short_token;
use pushgate_proto::{FailureScope, Outcome, RetryAfter};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Url};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::auth::{AuthToken, C2dmAuth, DEFAULT_LOGIN_URL};
use super::error::C2dmError;
use super::message::C2dmMessage;
use crate::RetryPolicy;
use crate::http::{BuildError, HttpConfig};

/// The documented C2DM send endpoint (docs/protocols.md, "C2DM: send").
pub const DEFAULT_ENDPOINT: &str = "https://android.apis.google.com/c2dm/send";

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded;charset=UTF-8";
/// Most characters of an unexpected body kept in an error.
const MAX_ERROR_BODY_CHARS: usize = 1024;
/// Most times one send renews its token after a 401 (a rotation seen, then one login).
const MAX_RENEWALS: u32 = 3;
/// How long a 401 that cannot log in waits for a rotation still in flight.
const ROTATION_GRACE: Duration = Duration::from_secs(1);

/// The token in use and how many times it changed, so that a 401 for an old token does not
/// throw away a newer one.
#[derive(Default)]
struct TokenState {
    token: Option<AuthToken>,
    generation: u64,
}

struct Shared {
    state: Mutex<TokenState>,
    updates: watch::Sender<Option<AuthToken>>,
    /// Serialises logins so that many concurrent 401s cause one ClientLogin.
    login_lock: tokio::sync::Mutex<()>,
}

/// Sends C2DM messages with a ClientLogin token (c2dm4j's / java-c2dm's `C2dmManager`).
///
/// Exists to keep the sender's token right across concurrent sends: a login when needed, one
/// re-login on 401, and every `Update-Client-Auth` rotation applied atomically and published
/// on [`C2dmSender::auth_updates`]. Cheap to clone: clones share the pool and the token.
#[derive(Clone)]
pub struct C2dmSender {
    client: Client,
    endpoint: Url,
    login_url: Option<Url>,
    auth: Arc<C2dmAuth>,
    shared: Arc<Shared>,
}

impl fmt::Debug for C2dmSender {
    /// Never shows the password or the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let generation = self.shared.state.lock().generation;
        f.debug_struct("C2dmSender")
            .field("endpoint", &self.endpoint.as_str())
            .field("auth", &self.auth)
            .field("token_generation", &generation)
            .finish()
    }
}

/// One send's raw answer.
struct Reply {
    status: u16,
    retry_after: Option<RetryAfter>,
    body: String,
}

impl C2dmSender {
    /// A sender with these credentials. `config.endpoint` is the full send URL (e.g.
    /// `http://127.0.0.1:port/c2dm/send`); `None` means [`DEFAULT_ENDPOINT`].
    pub fn new(auth: C2dmAuth, config: HttpConfig) -> Result<Self, BuildError> {
        let endpoint = config.endpoint_or(DEFAULT_ENDPOINT)?;
        let (login_url, initial) = match &auth {
            C2dmAuth::ClientLogin { login_url, .. } => {
                let login = HttpConfig {
                    endpoint: login_url.clone(),
                    ..HttpConfig::default()
                };
                (Some(login.endpoint_or(DEFAULT_LOGIN_URL)?), None)
            }
            C2dmAuth::Token(token) => {
                header_value(token)?;
                (None, Some(AuthToken::new(token.clone())))
            }
        };
        let (updates, _) = watch::channel(initial.clone());
        Ok(Self {
            client: config.build_client()?,
            endpoint,
            login_url,
            auth: Arc::new(auth),
            shared: Arc::new(Shared {
                state: Mutex::new(TokenState {
                    token: initial,
                    generation: 0,
                }),
                updates,
                login_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The send URL.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The token the next request will use (`None` before the first login).
    pub fn current_token(&self) -> Option<AuthToken> {
        self.shared.state.lock().token.clone()
    }

    /// Every token change (login, `Update-Client-Auth` rotation), so a service can persist
    /// the newest token; the current value is the token in use.
    pub fn auth_updates(&self) -> watch::Receiver<Option<AuthToken>> {
        self.shared.updates.subscribe()
    }

    /// Logs in with ClientLogin now and keeps the `Auth` token.
    ///
    /// Errors with [`C2dmError::Login`] carrying the service's code (`BadAuthentication`,
    /// `CaptchaRequired`, …), or [`C2dmError::AuthFailed`] for token-only credentials.
    pub async fn login(&self) -> Result<AuthToken, C2dmError> {
        let _guard = self.shared.login_lock.lock().await;
        self.login_locked().await
    }

    async fn login_locked(&self) -> Result<AuthToken, C2dmError> {
        let (
            C2dmAuth::ClientLogin {
                email,
                password,
                account_type,
                source,
                ..
            },
            Some(url),
        ) = (self.auth.as_ref(), self.login_url.as_ref())
        else {
            return Err(C2dmError::AuthFailed { status: 401 });
        };
        let span = info_span!("c2dm_login", email = %email);
        async {
            let form = ClientLoginRequest {
                email: email.clone(),
                passwd: password.clone(),
                account_type: *account_type,
                service: SERVICE.to_string(),
                source: source.clone(),
            }
            .to_form();
            let response = self
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
                .body(form)
                .send()
                .await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            match (status, ClientLoginResponse::parse(&body)) {
                (200, Some(ClientLoginResponse::Tokens { auth, .. })) => {
                    header_value(&auth)?;
                    let token = AuthToken::new(auth);
                    self.set_token(token.clone());
                    info!("logged in");
                    Ok(token)
                }
                (
                    _,
                    Some(ClientLoginResponse::Error {
                        code, captcha_url, ..
                    }),
                ) => {
                    warn!(status, code = %code, "ClientLogin refused");
                    Err(C2dmError::Login { code, captcha_url })
                }
                _ => Err(C2dmError::UnexpectedResponse {
                    status,
                    body: truncate(&body),
                }),
            }
        }
        .instrument(span)
        .await
    }

    /// Sends one message once.
    ///
    /// The message is validated first (collapse key, 1024-byte payload: [`C2dmError::Invalid`],
    /// nothing sent). Logs in first if no token is held. A 200 body maps through the shared
    /// table (`QuotaExceeded` → `RetryLater`, `DeviceQuotaExceeded` → `Throttled`, …); 5xx →
    /// `RetryLater` with the server's `Retry-After`; 401 → one re-login (ClientLogin
    /// credentials only) and resend, else [`C2dmError::AuthFailed`]. An `Update-Client-Auth`
    /// header on any answer becomes the token of later requests.
    pub async fn send(&self, message: &C2dmMessage) -> Result<Outcome, C2dmError> {
        message.validate()?;
        let span = info_span!(
            "c2dm_send",
            token = %short_token(message.registration_id()),
        );
        async {
            let form = message.request().to_form();
            let (mut token, mut generation) = self.token_or_login().await?;
            let mut logged_in = false;
            let mut renewals = 0;
            loop {
                let reply = self.post(&form, &token).await?;
                match reply.status {
                    200 => return parse_send_body(&reply),
                    401 | 403 if renewals < MAX_RENEWALS => {
                        renewals += 1;
                        debug!(status = reply.status, "token refused; renewing");
                        (token, generation) =
                            self.renew(generation, reply.status, &mut logged_in).await?;
                    }
                    401 | 403 => {
                        return Err(C2dmError::AuthFailed {
                            status: reply.status,
                        });
                    }
                    500..=599 => {
                        // The server answered, for this one registration id.
                        return Ok(Outcome::RetryLater {
                            reason: format!("HTTP {}", reply.status),
                            after: delay_now(reply.retry_after),
                            scope: FailureScope::Token,
                        });
                    }
                    status => {
                        return Err(C2dmError::UnexpectedResponse {
                            status,
                            body: truncate(&reply.body),
                        });
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Sends and retries retriable outcomes (`RetryLater`, `Throttled`) and transport errors,
    /// sleeping `policy.delay(n)` between attempts, never less than the server's
    /// `Retry-After`. Returns the last outcome (maybe still retriable when attempts ran out).
    pub async fn send_with_retries(
        &self,
        message: &C2dmMessage,
        policy: &RetryPolicy,
    ) -> Result<Outcome, C2dmError> {
        let mut attempt: u32 = 1;
        loop {
            let result = self.send(message).await;
            let server_delay = match &result {
                Ok(outcome) if outcome.is_retriable() => outcome.retry_after(),
                Err(e) if e.is_retriable() => None,
                _ => return result,
            };
            if !policy.allows_attempt(attempt + 1) {
                return result;
            }
            let delay = policy.delay(attempt - 1, server_delay);
            debug!(attempt, ?delay, ?server_delay, "waiting before C2DM retry");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The token and its generation, logging in first when none is held.
    async fn token_or_login(&self) -> Result<(AuthToken, u64), C2dmError> {
        if let Some(held) = self.snapshot() {
            return Ok(held);
        }
        let _guard = self.shared.login_lock.lock().await;
        if let Some(held) = self.snapshot() {
            return Ok(held);
        }
        self.login_locked().await?;
        self.snapshot().ok_or(C2dmError::AuthFailed { status: 401 })
    }

    /// After a 401 with the token of `generation`: the newer token if one arrived meanwhile
    /// (an `Update-Client-Auth` rotation or another task's login); else, with ClientLogin
    /// credentials, one fresh login per send; else a short wait for a rotation whose answer
    /// is still on its way (the 401 may overtake it), then [`C2dmError::AuthFailed`].
    async fn renew(
        &self,
        generation: u64,
        status: u16,
        logged_in: &mut bool,
    ) -> Result<(AuthToken, u64), C2dmError> {
        let mut changes = self.shared.updates.subscribe();
        let _guard = self.shared.login_lock.lock().await;
        if let Some((token, now)) = self.snapshot()
            && now != generation
        {
            return Ok((token, now));
        }
        if self.auth.can_login() && !*logged_in {
            *logged_in = true;
            self.login_locked().await?;
        } else {
            drop(_guard);
            let waited = tokio::time::timeout(ROTATION_GRACE, changes.changed()).await;
            if !matches!(waited, Ok(Ok(()))) {
                return Err(C2dmError::AuthFailed { status });
            }
        }
        match self.snapshot() {
            Some((token, now)) if now != generation => Ok((token, now)),
            _ => Err(C2dmError::AuthFailed { status }),
        }
    }

    fn snapshot(&self) -> Option<(AuthToken, u64)> {
        let state = self.shared.state.lock();
        state.token.clone().map(|t| (t, state.generation))
    }

    /// Makes `token` current and publishes it; the lock orders concurrent updates.
    fn set_token(&self, token: AuthToken) {
        let mut state = self.shared.state.lock();
        if state.token.as_ref() == Some(&token) {
            return;
        }
        state.token = Some(token.clone());
        state.generation += 1;
        self.shared.updates.send_replace(Some(token));
    }

    /// Applies an `Update-Client-Auth` header, if any.
    fn absorb_update(&self, headers: &HeaderMap) {
        let Some(value) = headers.get(UPDATE_CLIENT_AUTH) else {
            return;
        };
        match value.to_str() {
            Ok(new) if !new.trim().is_empty() => {
                info!("server rotated the C2DM auth token (Update-Client-Auth)");
                self.set_token(AuthToken::new(new.trim()));
            }
            _ => warn!("ignoring an unreadable Update-Client-Auth header"),
        }
    }

    async fn post(&self, form: &str, token: &AuthToken) -> Result<Reply, C2dmError> {
        let response = self
            .client
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, header_value(token.secret())?)
            .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
            .body(form.to_string())
            .send()
            .await?;
        self.absorb_update(response.headers());
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        let body = response.text().await?;
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

/// `GoogleLogin auth=<token>`, marked sensitive.
fn header_value(token: &str) -> Result<HeaderValue, BuildError> {
    let mut value = HeaderValue::from_str(&format!("GoogleLogin auth={token}"))
        .map_err(|_| BuildError::Credential)?;
    value.set_sensitive(true);
    Ok(value)
}

fn delay_now(retry_after: Option<RetryAfter>) -> Option<Duration> {
    retry_after.map(|r| r.delay_from(SystemTime::now()))
}

/// A 200 answer: `id=` or `Error=` through the shared plain-text table.
fn parse_send_body(reply: &Reply) -> Result<Outcome, C2dmError> {
    match PlainTextResponse::parse(&reply.body) {
        Ok(PlainTextResponse::Error(code)) => Ok(code.outcome(delay_now(reply.retry_after))),
        Ok(answer) => Ok(answer.outcome()),
        Err(_) => Err(C2dmError::UnexpectedResponse {
            status: reply.status,
            body: truncate(&reply.body),
        }),
    }
}

fn truncate(body: &str) -> String {
    body.chars().take(MAX_ERROR_BODY_CHARS).collect()
}
