//! How a CCS client connects and behaves.

use std::fmt;
use std::time::Duration;

use pushgate_proto::ccs::MAX_PENDING;
use pushgate_xmpp::CCS_DOMAIN;

use crate::RetryPolicy;

/// Everything [`CcsClient::connect`](super::CcsClient::connect) needs. `Debug` never shows
/// the API key.
#[derive(Clone)]
pub struct CcsConfig {
    /// Host to connect to (`fcm-xmpp.googleapis.com`, or `127.0.0.1` for the emulator).
    pub host: String,
    /// Port (5235 production, 5236 pre-production).
    pub port: u16,
    /// The sender id (project number).
    pub sender_id: String,
    /// The server (API) key. Secret.
    pub api_key: String,
    /// PEM bundle of the CAs to trust (the emulator's certificate in tests). Required: this
    /// crate ships no public roots.
    pub ca_pem: Option<String>,
    /// TLS server name to verify; `None` means `host`.
    pub server_name: Option<String>,
    /// XMPP domain (stream `to`, SASL host); `gcm.googleapis.com` also for FCM.
    pub domain: String,
    /// Connections kept open at once (pool size).
    pub connections: usize,
    /// Most unanswered downstream messages per connection (CCS allows 100).
    pub window: usize,
    /// Interval of keep-alive pings on each connection.
    pub ping_interval: Duration,
    /// Backoff between failed reconnection attempts (attempt counts are not limited: the
    /// client keeps trying while it is open).
    pub reconnect: RetryPolicy,
    /// Backoff and attempts for `SERVICE_UNAVAILABLE` nacks.
    pub retry: RetryPolicy,
    /// Longest TCP connect + TLS + XMPP login.
    pub connect_timeout: Duration,
    /// Upstream message ids remembered to suppress redeliveries.
    pub dedup_window: usize,
}

impl fmt::Debug for CcsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CcsConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("sender_id", &self.sender_id)
            .field("api_key", &"<redacted>")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("server_name", &self.server_name)
            .field("domain", &self.domain)
            .field("connections", &self.connections)
            .field("window", &self.window)
            .field("ping_interval", &self.ping_interval)
            .field("reconnect", &self.reconnect)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("dedup_window", &self.dedup_window)
            .finish()
    }
}

impl CcsConfig {
    /// Defaults: one connection, a window of 100, pings every 30 s, reconnect backoff from
    /// 250 ms up to 30 s, `SERVICE_UNAVAILABLE` retried 5 times from 1 s, 10 s to log in,
    /// 10,000 remembered upstream ids.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        sender_id: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        CcsConfig {
            host: host.into(),
            port,
            sender_id: sender_id.into(),
            api_key: api_key.into(),
            ca_pem: None,
            server_name: None,
            domain: CCS_DOMAIN.into(),
            connections: 1,
            window: MAX_PENDING,
            ping_interval: Duration::from_secs(30),
            reconnect: RetryPolicy::default()
                .with_initial_backoff(Duration::from_millis(250))
                .with_max_backoff(Duration::from_secs(30)),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            dedup_window: 10_000,
        }
    }

    /// Sets the trusted CA bundle (PEM).
    pub fn with_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Sets the TLS name to verify (e.g. `gcm.googleapis.com` when connecting by IP).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Sets the pool size.
    pub fn with_connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Sets the per-connection window.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// Sets the ping interval.
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets the reconnect backoff.
    pub fn with_reconnect(mut self, policy: RetryPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Sets the `SERVICE_UNAVAILABLE` retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    pub(crate) fn check(&self) -> Result<(), super::CcsError> {
        let bad = |m: &str| Err(super::CcsError::Config(m.to_string()));
        if self.connections == 0 {
            return bad("connections must be at least 1");
        }
        if self.window == 0 {
            return bad("window must be at least 1");
        }
        if self.ca_pem.is_none() {
            return bad("ca_pem is required (no public roots are bundled)");
        }
        if self.sender_id.is_empty() {
            return bad("sender_id must not be empty");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let c = CcsConfig::new("h", 1, "s", "very-secret-key");
        assert!(!format!("{c:?}").contains("very-secret-key"));
        assert!(c.check().is_err(), "no CA");
        assert!(c.with_ca_pem("x").check().is_ok());
    }
}
