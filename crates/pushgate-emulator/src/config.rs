//! How an emulator instance is set up.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ccs::CcsSettings;

/// Settings of one emulator instance; every field has a default so callers can write
/// `EmulatorConfig { http, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Plain HTTP listener (HTTP/1.1 and h2c on the same port): legacy endpoints and the
    /// control API. Tests bind `127.0.0.1:0`.
    pub http: SocketAddr,
    /// Messages kept per virtual device; the oldest is dropped (and counted) beyond it.
    pub inbox_limit: usize,
    /// Protocol requests kept in the activity log (`GET /emulator/activity`).
    pub activity_limit: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// HTTPS listener (TLS with ALPN `h2` and `http/1.1`) serving the same routes as `http`,
    /// for clients that insist on `https://` URLs (the Admin SDKs, `token_uri`). `None`: off.
    pub https: Option<SocketAddr>,
    /// CCS (XMPP over direct TLS) listener; `None`: off. It shares the instance certificate
    /// with `https`.
    pub xmpp: Option<SocketAddr>,
    /// CCS tunables: pending limit, ack delay, drain grace (see [`CcsSettings`]).
    pub ccs: CcsSettings,
    /// Lifetime of the OAuth access tokens `POST /token` issues (`expires_in`); short values
    /// let tests watch a client refresh. Changeable at run time with `PUT /emulator/oauth`.
    pub access_token_lifetime: Duration,
    /// FCM v1 messages each project may send per minute before `429 QUOTA_EXCEEDED`
    /// (docs/protocols.md, "FCM v1: quotas and limits": 600,000); changeable per project with
    /// `PUT /emulator/projects/{id}/quota`.
    pub v1_quota_per_minute: u32,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8085)),
            inbox_limit: 1000,
            activity_limit: 1000,
            max_body_bytes: 8 * 1024 * 1024,
            https: None,
            xmpp: None,
            ccs: CcsSettings::default(),
            access_token_lifetime: Duration::from_secs(3600),
            v1_quota_per_minute: 600_000,
        }
    }
}
