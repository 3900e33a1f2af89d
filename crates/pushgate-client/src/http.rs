//! HTTP settings shared by every HTTP-based sender, and the one pooled client built from them.

use std::fmt;
use std::time::Duration;

use reqwest::{Certificate, Client, Proxy, Url};

/// Why a sender could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The endpoint is not an absolute http(s) URL.
    #[error("invalid endpoint {url:?}: {reason}")]
    Endpoint {
        /// The endpoint as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The proxy URL was refused.
    #[error("invalid proxy URL: {0}")]
    Proxy(#[source] reqwest::Error),
    /// The extra CA bundle holds no usable PEM certificate.
    #[error("invalid extra CA certificate (PEM): {0}")]
    CaCertificate(String),
    /// The credential cannot be put in an HTTP header (control characters). The value itself
    /// is never part of the message.
    #[error("the API key contains characters not allowed in an HTTP header")]
    Credential,
    /// reqwest refused the combination of settings.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The hyper-based transport (the FCM v1 sender's) refused the settings: an unusable
    /// proxy URL (shown without its password) or no platform root certificates.
    #[error("cannot build the HTTP transport: {0}")]
    Transport(String),
}

/// Connection settings shared by the protocol senders.
///
/// Most senders build one `reqwest::Client` from it ([`HttpConfig::build_client`]), whose
/// keep-alive pool is reused for every request of the sender that owns it. The FCM v1
/// sender, whose per-request CPU matters most, builds its own transport on hyper and h2 from
/// the same settings (every field is honoured the same way).
#[derive(Clone)]
pub struct HttpConfig {
    /// Where to send. Each sender reads it in its protocol's way (legacy: the full send URL,
    /// e.g. `http://127.0.0.1:8080/gcm/send`); `None` means the protocol's real endpoint.
    pub endpoint: Option<String>,
    /// Limit for a whole request, connect to last body byte.
    pub timeout: Duration,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Proxy for every request (`http://`, `https://` or `socks5://`). `None` connects
    /// directly: proxy environment variables are deliberately ignored. The v1 sender also
    /// takes `socks5h://` (names resolved by the proxy) and tunnels plain-HTTP requests
    /// through `CONNECT` too.
    pub proxy: Option<String>,
    /// Extra trusted root certificates (PEM, one or several), e.g. an emulator's CA.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Trust only [`HttpConfig::extra_ca_pem`], not the system roots.
    pub extra_ca_only: bool,
    /// Speak HTTP/2 without negotiation (h2c on plain `http://`).
    pub http2_prior_knowledge: bool,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    /// Real endpoint, 60 s request timeout, 10 s connect timeout, direct connection.
    fn default() -> Self {
        Self {
            endpoint: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            proxy: None,
            extra_ca_pem: None,
            extra_ca_only: false,
            http2_prior_knowledge: false,
            user_agent: concat!("pushgate/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl HttpConfig {
    /// The defaults (see [`HttpConfig::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the endpoint (see [`HttpConfig::endpoint`]).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sends every request through this proxy.
    pub fn with_proxy(mut self, proxy_url: impl Into<String>) -> Self {
        self.proxy = Some(proxy_url.into());
        self
    }

    /// Trusts these PEM certificates in addition to the system roots.
    pub fn with_extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_ca_pem = Some(pem.into());
        self
    }

    /// Trusts only the extra CA certificates.
    pub fn with_extra_ca_only(mut self, only: bool) -> Self {
        self.extra_ca_only = only;
        self
    }

    /// Uses HTTP/2 without negotiation.
    pub fn with_http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Sets the `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The endpoint to use: the configured one, else `default`, checked to be http(s).
    pub fn endpoint_or(&self, default: &str) -> Result<Url, BuildError> {
        let given = self.endpoint.as_deref().unwrap_or(default);
        let url = Url::parse(given).map_err(|e| BuildError::Endpoint {
            url: given.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BuildError::Endpoint {
                url: given.to_string(),
                reason: "scheme must be http or https".into(),
            });
        }
        Ok(url)
    }

    /// Builds the pooled client these settings describe.
    pub fn build_client(&self) -> Result<Client, BuildError> {
        let mut builder = Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .tcp_nodelay(true)
            .user_agent(self.user_agent.clone());
        builder = match &self.proxy {
            Some(url) => builder.proxy(Proxy::all(url.as_str()).map_err(BuildError::Proxy)?),
            None => builder.no_proxy(),
        };
        if let Some(pem) = &self.extra_ca_pem {
            let certs = Certificate::from_pem_bundle(pem)
                .map_err(|e| BuildError::CaCertificate(e.to_string()))?;
            if certs.is_empty() {
                return Err(BuildError::CaCertificate(
                    "no certificate in the PEM data".into(),
                ));
            }
            builder = if self.extra_ca_only {
                builder.tls_certs_only(certs)
            } else {
                builder.tls_certs_merge(certs)
            };
        }
        if self.http2_prior_knowledge {
            builder = builder.http2_prior_knowledge();
        }
        builder.build().map_err(BuildError::Client)
    }
}

impl fmt::Debug for HttpConfig {
    /// Like a derived `Debug`, but a proxy URL's user and password are hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("proxy", &self.proxy.as_deref().map(redact_userinfo))
            .field(
                "extra_ca_pem",
                &self
                    .extra_ca_pem
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len())),
            )
            .field("extra_ca_only", &self.extra_ca_only)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// A URL with any `user:password@` replaced, for logs and `Debug`.
pub(crate) fn redact_userinfo(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            // Both setters only fail for URLs that cannot have credentials at all.
            let _ = parsed.set_username("redacted");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable proxy URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_defaults_and_checks() {
        let cfg = HttpConfig::new();
        assert_eq!(
            cfg.endpoint_or("https://fcm.googleapis.com/fcm/send")
                .unwrap()
                .as_str(),
            "https://fcm.googleapis.com/fcm/send"
        );
        let cfg = HttpConfig::new().with_endpoint("ftp://x/y");
        assert!(matches!(
            cfg.endpoint_or("https://a/b"),
            Err(BuildError::Endpoint { .. })
        ));
        assert!(
            HttpConfig::new()
                .with_endpoint("not a url")
                .endpoint_or("")
                .is_err()
        );
    }

    #[test]
    fn builds_plain_and_h2c_clients() {
        HttpConfig::new().build_client().unwrap();
        HttpConfig::new()
            .with_http2_prior_knowledge(true)
            .build_client()
            .unwrap();
        HttpConfig::new()
            .with_proxy("http://127.0.0.1:3128")
            .build_client()
            .unwrap();
    }

    #[test]
    fn bad_ca_pem_is_refused() {
        let err = HttpConfig::new()
            .with_extra_ca_pem(b"not a certificate".to_vec())
            .build_client()
            .unwrap_err();
        assert!(matches!(err, BuildError::CaCertificate(_)), "{err}");
    }

    #[test]
    fn debug_hides_proxy_credentials() {
        let cfg = HttpConfig::new().with_proxy("http://alice:s3cret@proxy.local:3128");
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("proxy.local"), "{shown}");
    }
}
