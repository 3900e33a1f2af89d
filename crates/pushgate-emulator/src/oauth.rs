//! The OAuth2 token endpoint `POST /token` (JWT-bearer grant, docs/protocols.md,
//! "FCM v1: OAuth service-account flow") and the
//! access tokens it issues, which `messages:send` then requires as `Bearer`.
//!
//! Assertions are verified like Google does: RS256 signature against the public key of the
//! project whose `client_email` is `iss`, `kid`, `aud`, `exp - iat ≤ 3600`, scope. Access
//! tokens live in a sharded map; nothing here is logged that could authenticate anyone.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderMap, StatusCode, Uri, header};
use jsonwebtoken::{Algorithm, Validation};
use pushgate_proto::v1::oauth::{AssertionClaims, JWT_BEARER_GRANT, TokenError};
use pushgate_proto::v1::{CLOUD_PLATFORM_SCOPE, FCM_SCOPE, GOOGLE_TOKEN_URI};
use serde_json::json;

use crate::activity::ActivityEntry;
use crate::projects::Project;
use crate::respond;
use crate::state::EmulatorState;
use crate::time::now_ms;

/// Token endpoint URLs Google has used; an assertion for any of them is accepted, as is
/// any `http(s)://<host>/token` (this emulator under whatever name the client used).
const GOOGLE_AUDIENCES: [&str; 3] = [
    GOOGLE_TOKEN_URI,
    "https://accounts.google.com/o/oauth2/token",
    "https://www.googleapis.com/oauth2/v4/token",
];
/// How far in the future `iat` may be (clock skew).
const MAX_IAT_SKEW_SECS: u64 = 300;
/// Longest assertion lifetime Google accepts.
const MAX_ASSERTION_SECS: u64 = 3600;
/// The observed description for bad `iat`/`exp`.
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
/// Issued tokens kept before expired ones are dropped.
const PRUNE_ABOVE: usize = 100_000;
/// Path of the token endpoint (activity log).
pub(crate) const TOKEN_PATH: &str = "/token";

/// Which listener a request came in on; the HTTPS listener marks its requests with it so
/// answers that name the emulator's own URL (`token_uri`) use the right scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Https;

/// The base URL (`scheme://host[:port]`) a request reached the emulator at.
pub(crate) fn base_url(uri: &Uri, headers: &HeaderMap, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    format!("{scheme}://{host}")
}

/// One issued access token.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The project (id) it was issued for.
    pub project_id: Arc<str>,
    /// When it stops working.
    pub expires_at: Instant,
}

/// What a bearer token is worth.
#[derive(Debug, Clone)]
pub(crate) enum BearerCheck {
    /// Valid, for this project id.
    Valid(Arc<str>),
    /// Issued here but past its lifetime.
    Expired,
    /// Never issued (or forgotten by a reset).
    Unknown,
}

/// Issued access tokens and their lifetime.
#[derive(Debug)]
pub(crate) struct OAuth {
    tokens: DashMap<Box<str>, Grant>,
    lifetime_secs: AtomicU64,
    default_lifetime: Duration,
}

impl OAuth {
    /// No token yet; new ones live `lifetime`.
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            tokens: DashMap::new(),
            lifetime_secs: AtomicU64::new(lifetime.as_secs().max(1)),
            default_lifetime: lifetime,
        }
    }

    /// The lifetime of tokens issued from now on.
    pub(crate) fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs.load(Ordering::Relaxed)
    }

    /// Changes the lifetime of tokens issued from now on.
    pub(crate) fn set_lifetime_secs(&self, secs: u64) {
        self.lifetime_secs.store(secs.max(1), Ordering::Relaxed);
    }

    /// Issues a token for `project_id`.
    fn issue(&self, project_id: Arc<str>) -> (String, u64) {
        let lifetime = self.lifetime_secs();
        if self.tokens.len() >= PRUNE_ABOVE {
            // Expired tokens are kept to answer ACCESS_TOKEN_EXPIRED, but not forever.
            let cutoff = Instant::now();
            self.tokens.retain(|_, grant| grant.expires_at > cutoff);
        }
        let token = format!(
            "ya29.emu-{:032x}{:016x}",
            rand::random::<u128>(),
            rand::random::<u64>()
        );
        self.tokens.insert(
            Box::from(token.as_str()),
            Grant {
                project_id,
                expires_at: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }

    /// Looks a bearer token up.
    pub(crate) fn check(&self, token: &str) -> BearerCheck {
        match self.tokens.get(token) {
            None => BearerCheck::Unknown,
            Some(grant) if Instant::now() >= grant.expires_at => BearerCheck::Expired,
            Some(grant) => BearerCheck::Valid(grant.project_id.clone()),
        }
    }

    /// Forgets every token and restores the configured lifetime.
    pub(crate) fn reset(&self) {
        self.tokens.clear();
        self.lifetime_secs
            .store(self.default_lifetime.as_secs().max(1), Ordering::Relaxed);
    }
}

/// A refused token request: status, OAuth error code, description.
struct Refusal(StatusCode, &'static str, String);

impl Refusal {
    fn grant(description: impl Into<String>) -> Self {
        Refusal(StatusCode::BAD_REQUEST, "invalid_grant", description.into())
    }
}

/// `POST /token`.
pub(crate) async fn token(
    State(state): State<EmulatorState>,
    https: Option<Extension<Https>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = state.get();
    inner.stats.token_request();
    let own_base = base_url(&uri, &headers, https.is_some());
    let result = exchange(&state, &body, &own_base).await;
    let (response, status, note) = match result {
        Ok((token, expires_in)) => (
            respond::json(
                StatusCode::OK,
                &json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}),
            ),
            200,
            None,
        ),
        Err(Refusal(status, error, description)) => {
            tracing::debug!(error, %description, "token request refused");
            let body = TokenError {
                error: error.to_string(),
                error_description: Some(description.clone()),
            };
            (
                respond::json(status, &body),
                status.as_u16(),
                Some(format!("{error}: {description}")),
            )
        }
    };
    inner.activity.record(ActivityEntry {
        at_ms: now_ms(),
        path: TOKEN_PATH,
        status,
        recipients: 0,
        kind: "oauth-token",
        note,
    });
    response
}

async fn exchange(
    state: &EmulatorState,
    body: &[u8],
    own_base: &str,
) -> Result<(String, u64), Refusal> {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Malformed form body".into(),
        )
    })?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("grant_type") {
        Some(JWT_BEARER_GRANT) => {}
        Some(other) => {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            ));
        }
        None => {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant_type: ".into(),
            ));
        }
    }
    let Some(assertion) = field("assertion") else {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion".into(),
        ));
    };
    let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| Refusal::grant("Invalid JWT: could not decode the assertion."))?;
    let project = state
        .get()
        .projects
        .by_email(&unverified.iss)
        .ok_or_else(|| Refusal::grant("Invalid grant: account not found"))?;
    let claims = verify(&project, assertion).await?;
    check_claims(&claims, own_base)?;
    Ok(state.get().oauth.issue(project.id.clone()))
}

/// Checks the signature and `kid` against `project`'s key.
async fn verify(project: &Arc<Project>, assertion: &str) -> Result<AssertionClaims, Refusal> {
    let key = if project.key_pending() {
        let project = project.clone();
        tokio::task::spawn_blocking(move || project.key())
            .await
            .map_err(|e| internal(e.to_string()))?
    } else {
        project.key()
    }
    .map_err(|e| internal(e.to_string()))?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| Refusal::grant("Invalid JWT: could not decode the header."))?;
    if header.kid.as_deref().is_some_and(|kid| kid != key.key_id) {
        return Err(Refusal::grant("Invalid JWT Signature."));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    jsonwebtoken::decode::<AssertionClaims>(assertion, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                Refusal::grant("Invalid JWT Signature.")
            }
            _ => Refusal::grant("Invalid JWT: could not decode the assertion."),
        })
}

fn internal(description: String) -> Refusal {
    tracing::error!(%description, "cannot load a project key");
    Refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_failure",
        "Internal error".into(),
    )
}

/// `aud`, times and scope.
fn check_claims(claims: &AssertionClaims, own_base: &str) -> Result<(), Refusal> {
    if !audience_ok(&claims.aud, own_base) {
        return Err(Refusal::grant(format!(
            "Invalid JWT: Failed audience check. The right audience is {own_base}/token"
        )));
    }
    let now = now_ms() / 1000;
    if claims.exp <= claims.iat
        || claims.exp - claims.iat > MAX_ASSERTION_SECS
        || claims.exp <= now
        || claims.iat > now + MAX_IAT_SKEW_SECS
    {
        return Err(Refusal::grant(SHORT_LIVED));
    }
    let granted = claims
        .scope
        .split_whitespace()
        .any(|s| s == FCM_SCOPE || s == CLOUD_PLATFORM_SCOPE);
    if !granted {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.".into(),
        ));
    }
    Ok(())
}

/// Google's token URLs, or `http(s)://<any host>/token`.
fn audience_ok(aud: &str, own_base: &str) -> bool {
    if GOOGLE_AUDIENCES.contains(&aud) || aud == format!("{own_base}/token") {
        return true;
    }
    let rest = aud
        .strip_prefix("http://")
        .or_else(|| aud.strip_prefix("https://"));
    rest.and_then(|r| r.split_once('/'))
        .is_some_and(|(host, path)| !host.is_empty() && path == "token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences() {
        let base = "http://127.0.0.1:1234";
        assert!(audience_ok("http://127.0.0.1:1234/token", base));
        assert!(audience_ok("https://localhost:9/token", base));
        assert!(audience_ok(GOOGLE_TOKEN_URI, base));
        assert!(audience_ok(
            "https://accounts.google.com/o/oauth2/token",
            base
        ));
        assert!(!audience_ok("https://example.com/other", base));
        assert!(!audience_ok("token", base));
    }

    #[test]
    fn tokens_expire_and_reset_forgets_them() {
        let oauth = OAuth::new(Duration::from_secs(3600));
        let (token, lifetime) = oauth.issue(Arc::from("p"));
        assert_eq!(lifetime, 3600);
        assert!(token.starts_with("ya29.emu-"));
        assert!(matches!(oauth.check(&token), BearerCheck::Valid(p) if &*p == "p"));
        assert!(matches!(oauth.check("nope"), BearerCheck::Unknown));
        oauth.tokens.get_mut(token.as_str()).unwrap().expires_at = Instant::now();
        assert!(matches!(oauth.check(&token), BearerCheck::Expired));
        oauth.reset();
        assert!(matches!(oauth.check(&token), BearerCheck::Unknown));
    }
}
