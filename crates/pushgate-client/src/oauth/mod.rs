//! OAuth2 access tokens for FCM v1 from a Google service account (docs/protocols.md,
//! "FCM v1: OAuth service-account flow").
//!
//! [`ServiceAccountTokenSource`] loads a key file, signs an RS256 JWT assertion
//! (`kid` = `private_key_id`, `iss` = `client_email`, `aud` = `token_uri`, one-hour `exp`),
//! exchanges it at the key file's `token_uri`, caches the access token and refreshes it when
//! less than `min(5 min, 10 % of its lifetime)` is left, once for all concurrent callers.
//! Senders take any [`TokenSource`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pushgate_client::oauth::{OAuthConfig, ServiceAccountTokenSource, TokenSource};
//!
//! let source = ServiceAccountTokenSource::from_file("service-account.json", OAuthConfig::new())?;
//! let token = source.token().await?; // cached until shortly before it expires
//! # let _ = token; Ok(()) }
//! ```

mod assertion;
mod error;
mod key;
mod source;
mod token;

pub use assertion::ASSERTION_LIFETIME_SECS;
pub use error::OAuthError;
pub use key::{SERVICE_ACCOUNT_TYPE, key_from_file, key_from_json};
pub use source::{OAuthConfig, ServiceAccountTokenSource, StaticTokenSource, TokenSource};
pub use token::{AccessToken, Freshness, MAX_REFRESH_MARGIN, freshness, refresh_margin};
