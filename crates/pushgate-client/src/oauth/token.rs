//! The access token handed to senders, and the rule for when to refresh it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;

use super::OAuthError;

/// Refresh at most this long before expiry (google-auth uses 3 min 45 s).
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An OAuth2 access token with its ready-made `Authorization: Bearer …` header.
///
/// Exists so that a sender pays for the header once per token, not once per request, and so
/// that the secret never leaks through `Debug`. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

struct Inner {
    secret: String,
    authorization: HeaderValue,
    obtained_at: Instant,
    expires_at: Instant,
}

impl AccessToken {
    /// A token valid for `lifetime` from now. Fails when the token cannot be an HTTP header
    /// value (the error does not repeat it).
    pub fn new(secret: impl Into<String>, lifetime: Duration) -> Result<Self, OAuthError> {
        let now = Instant::now();
        Self::with_times(secret.into(), now, now + lifetime)
    }

    pub(crate) fn with_times(
        secret: String,
        obtained_at: Instant,
        expires_at: Instant,
    ) -> Result<Self, OAuthError> {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| {
                OAuthError::InvalidResponse(
                    "the access token contains characters not allowed in an HTTP header".into(),
                )
            })?;
        authorization.set_sensitive(true);
        Ok(Self {
            inner: Arc::new(Inner {
                secret,
                authorization,
                obtained_at,
                expires_at,
            }),
        })
    }

    /// The raw token (for callers that need it elsewhere; never log it).
    pub fn secret(&self) -> &str {
        &self.inner.secret
    }

    /// `Bearer <token>`, marked sensitive so that HTTP-level logging hides it.
    pub fn authorization(&self) -> &HeaderValue {
        &self.inner.authorization
    }

    /// When the token stops working.
    pub fn expires_at(&self) -> Instant {
        self.inner.expires_at
    }

    /// When the token was obtained.
    pub fn obtained_at(&self) -> Instant {
        self.inner.obtained_at
    }

    /// True when both are the same token.
    pub fn same_as(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.secret == other.inner.secret
    }

    /// How fresh the token is at `now` (see [`Freshness`]).
    pub fn freshness(&self, now: Instant) -> Freshness {
        freshness(self.inner.obtained_at, self.inner.expires_at, now)
    }
}

impl fmt::Debug for AccessToken {
    /// Shows the expiry, never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field(
                "expires_in",
                &self.inner.expires_at.saturating_duration_since(now),
            )
            .finish()
    }
}

/// Where a token stands in its life: decides whether a send may use it and whether a
/// refresh should start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use it.
    Fresh,
    /// Still valid, but less than the refresh margin is left: refresh now, and let other
    /// senders use it meanwhile.
    RefreshAhead,
    /// Expired: nobody may use it.
    Expired,
}

/// The refresh margin for a token of this lifetime: `min(5 min, 10 % of the lifetime)`.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime / 10)
}

/// The freshness of a token obtained at `obtained_at`, expiring at `expires_at`, seen at `now`.
pub fn freshness(obtained_at: Instant, expires_at: Instant, now: Instant) -> Freshness {
    if now >= expires_at {
        return Freshness::Expired;
    }
    let lifetime = expires_at.saturating_duration_since(obtained_at);
    let left = expires_at.saturating_duration_since(now);
    if left <= refresh_margin(lifetime) {
        Freshness::RefreshAhead
    } else {
        Freshness::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn margin_is_ten_percent_capped_at_five_minutes() {
        assert_eq!(refresh_margin(3600 * S), 300 * S);
        assert_eq!(refresh_margin(3599 * S), 300 * S);
        assert_eq!(refresh_margin(1000 * S), 100 * S);
        assert_eq!(refresh_margin(2 * S), Duration::from_millis(200));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn an_hour_token_over_its_life() {
        // A fake clock: instants are computed, nothing sleeps.
        let t0 = Instant::now();
        let exp = t0 + 3600 * S;
        assert_eq!(freshness(t0, exp, t0), Freshness::Fresh);
        assert_eq!(freshness(t0, exp, t0 + 3299 * S), Freshness::Fresh);
        assert_eq!(freshness(t0, exp, t0 + 3300 * S), Freshness::RefreshAhead);
        assert_eq!(freshness(t0, exp, t0 + 3599 * S), Freshness::RefreshAhead);
        assert_eq!(freshness(t0, exp, t0 + 3600 * S), Freshness::Expired);
        assert_eq!(freshness(t0, exp, t0 + 9999 * S), Freshness::Expired);
    }

    #[test]
    fn a_short_token_refreshes_in_its_last_tenth() {
        let t0 = Instant::now();
        let exp = t0 + 10 * S;
        assert_eq!(freshness(t0, exp, t0 + 8 * S), Freshness::Fresh);
        assert_eq!(
            freshness(t0, exp, t0 + Duration::from_millis(9001)),
            Freshness::RefreshAhead
        );
        let zero = AccessToken::with_times("z".into(), t0, t0).unwrap();
        assert_eq!(zero.freshness(t0), Freshness::Expired);
    }

    #[test]
    fn debug_hides_the_token_and_header_is_sensitive() {
        let t = AccessToken::new("ya29.SECRET", 60 * S).unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
        assert!(t.authorization().is_sensitive());
        assert_eq!(t.authorization().to_str().unwrap(), "Bearer ya29.SECRET");
        assert!(t.same_as(&t.clone()));
        assert!(!t.same_as(&AccessToken::new("other", S).unwrap()));
        let err = AccessToken::new("bad\ntoken", S).unwrap_err();
        assert!(!err.to_string().contains("bad"));
    }
}
