//! The configuration resolved for running: secrets read, defaults filled in, every rule
//! checked, so that nothing after start can fail on configuration.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use pushgate_client::HttpConfig;

use crate::http_server::ServerSettings;
use crate::http_server::tls::TlsFiles;

use super::file::{ChannelKind, LegacyFormat};
use super::retention::RetentionSettings;
use super::secret::Secret;

/// The settings of the service itself, apart from its apps: what the sandbox shares with a
/// configured gateway.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// SQLite path or URL.
    pub database: String,
    /// Database settings.
    pub storage: StorageSettings,
    /// Delivery settings.
    pub delivery: DeliverySettings,
    /// HTTP API limits.
    pub limits: ApiLimits,
    /// How long history is kept.
    pub retention: RetentionSettings,
    /// The listener's deadlines and connection cap.
    pub server: ServerSettings,
    /// TLS on the listener, when configured.
    pub tls: Option<TlsFiles>,
    /// Who may read `/metrics`, and where.
    pub metrics: MetricsAccess,
    /// Keys that open the admin console for every app.
    pub admin_keys: Vec<Secret>,
    /// This instance's name among those sharing the database (default: generated).
    pub instance_id: Option<String>,
}

/// Everything `pushgate serve` runs with.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// SQLite path or URL.
    pub database: String,
    /// Database settings.
    pub storage: StorageSettings,
    /// Delivery settings.
    pub delivery: DeliverySettings,
    /// HTTP API limits.
    pub limits: ApiLimits,
    /// How long history is kept.
    pub retention: RetentionSettings,
    /// The listener's deadlines and connection cap.
    pub server: ServerSettings,
    /// TLS on the listener, when configured.
    pub tls: Option<TlsFiles>,
    /// Who may read `/metrics`, and where.
    pub metrics: MetricsAccess,
    /// Keys that open the admin console for every app.
    pub admin_keys: Vec<Secret>,
    /// This instance's name among those sharing the database (default: generated).
    pub instance_id: Option<String>,
    /// The applications (exactly one is the default).
    pub apps: Vec<AppSpec>,
}

impl GatewaySpec {
    /// The service settings with these apps.
    pub fn new(service: ServiceSettings, apps: Vec<AppSpec>) -> Self {
        Self {
            listen: service.listen,
            database: service.database,
            storage: service.storage,
            delivery: service.delivery,
            limits: service.limits,
            retention: service.retention,
            server: service.server,
            tls: service.tls,
            metrics: service.metrics,
            admin_keys: service.admin_keys,
            instance_id: service.instance_id,
            apps,
        }
    }
}

impl Default for ServiceSettings {
    /// 127.0.0.1:8080, `pushgate.db`, every other default.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: "pushgate.db".into(),
            storage: StorageSettings::default(),
            delivery: DeliverySettings::default(),
            limits: ApiLimits::default(),
            retention: RetentionSettings::default(),
            server: ServerSettings::default(),
            tls: None,
            metrics: MetricsAccess::default(),
            admin_keys: Vec::new(),
            instance_id: None,
        }
    }
}

/// How the database is used.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// Wait for the write lock before failing.
    pub busy_timeout: Duration,
    /// Flush every commit (synchronous=FULL).
    pub durable_commits: bool,
    /// PostgreSQL: most connections of this instance's pool.
    pub pool_max_connections: u32,
    /// PostgreSQL: wait for a free connection before failing.
    pub pool_acquire_timeout: Duration,
    /// Most deliveries of one fan-out stored per transaction.
    pub fanout_chunk: u32,
}

impl Default for StorageSettings {
    fn default() -> Self {
        let store = pushgate_store::StoreSettings::default();
        Self {
            busy_timeout: store.busy_timeout,
            durable_commits: store.durable_commits,
            pool_max_connections: store.pool_max_connections,
            pool_acquire_timeout: store.pool_acquire_timeout,
            fanout_chunk: store.fanout_chunk,
        }
    }
}

impl StorageSettings {
    /// The store's settings these make.
    pub fn store_settings(&self) -> pushgate_store::StoreSettings {
        pushgate_store::StoreSettings {
            busy_timeout: self.busy_timeout,
            durable_commits: self.durable_commits,
            pool_max_connections: self.pool_max_connections,
            pool_acquire_timeout: self.pool_acquire_timeout,
            fanout_chunk: self.fanout_chunk,
            ..pushgate_store::StoreSettings::default()
        }
    }
}

/// How deliveries are claimed, retried and expired.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Claim lifetime; must exceed the longest provider request.
    pub lease: Duration,
    /// Most deliveries per claim.
    pub claim_batch: u32,
    /// How often an idle channel looks for due work.
    pub idle_poll: Duration,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// TTL of messages that give none.
    pub default_ttl: Duration,
    /// How long in-flight sends may finish at shutdown.
    pub shutdown_grace: Duration,
    /// Refused credentials pause the channel instead of failing the work.
    pub retry_auth_failures: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            claim_batch: 1000,
            idle_poll: Duration::from_secs(1),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            default_ttl: Duration::from_secs(28 * 24 * 3600),
            shutdown_grace: Duration::from_secs(10),
            retry_auth_failures: true,
        }
    }
}

/// Limits of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most entries in one target list.
    pub max_target_list: usize,
    /// Most devices per import call.
    pub max_device_batch: usize,
    /// Time a client has to send a request's body.
    pub body_read_timeout: Duration,
    /// Each API key's request rate, unless its app sets its own.
    pub key_rate: Option<KeyRate>,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_target_list: 10_000,
            max_device_batch: 1000,
            body_read_timeout: Duration::from_secs(30),
            key_rate: None,
        }
    }
}

/// Who may read `/metrics` (every app's names and counts): by default anyone who reaches the
/// API's listener; with a token, only who sends it; with a listener of its own, only who
/// reaches that address (the API's listener then answers 404).
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// A separate plain-HTTP listener for `/metrics` (and `/healthz`).
    pub listen: Option<SocketAddr>,
    /// The bearer token `/metrics` requires on the API's listener.
    pub token: Option<Secret>,
}

/// How many requests one API key may make: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRate {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

/// One application.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// Its name (URL segment).
    pub name: String,
    /// Serves the root C2DM-era endpoints.
    pub is_default: bool,
    /// Its API keys.
    pub api_keys: Vec<Secret>,
    /// Channel of devices naming none.
    pub default_channel: String,
    /// Its channels.
    pub channels: Vec<ChannelSpec>,
    /// Its C2DM-era registration flow.
    pub c2dm_flow: C2dmFlowSpec,
    /// Where its events are POSTed.
    pub webhook: Option<WebhookSpec>,
    /// Its keys' request rate (`None`: no limit).
    pub key_rate: Option<KeyRate>,
}

/// An app's webhook.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    /// The receiver's URL.
    pub url: String,
    /// The signing secret.
    pub secret: Secret,
    /// Most events per POST.
    pub batch: usize,
    /// Timeout of one POST.
    pub timeout: Duration,
    /// Start from the first stored event instead of the current end.
    pub replay_existing: bool,
}

impl AppSpec {
    /// The channel named `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelSpec> {
        self.channels.iter().find(|c| c.name == name)
    }
}

/// The C2DM-era registration flow of an app.
#[derive(Debug, Clone)]
pub struct C2dmFlowSpec {
    /// Channel of its devices and their confirmation messages.
    pub channel: String,
    /// Accepted `device_id` lengths in characters.
    pub device_id_len: RangeInclusive<usize>,
    /// Accepted `registration_id` lengths in characters.
    pub registration_id_len: RangeInclusive<usize>,
}

/// One provider channel, ready to build a sender from.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// Its name within the app.
    pub name: String,
    /// Where it sends, for operators (URL or host:port).
    pub endpoint: String,
    /// The credential, for its reference and fingerprint.
    pub credential: Secret,
    /// Requests (or XMPP messages) in flight at once.
    pub max_in_flight: usize,
    /// Protocol settings.
    pub settings: ChannelSettings,
}

impl ChannelSpec {
    /// The protocol.
    pub fn kind(&self) -> ChannelKind {
        match self.settings {
            ChannelSettings::FcmV1 { .. } => ChannelKind::FcmV1,
            ChannelSettings::Legacy { .. } => ChannelKind::Legacy,
            ChannelSettings::Ccs { .. } => ChannelKind::Ccs,
            ChannelSettings::C2dm { .. } => ChannelKind::C2dm,
        }
    }
}

/// The protocol-specific part of a channel.
#[derive(Debug, Clone)]
pub enum ChannelSettings {
    /// FCM HTTP v1.
    FcmV1 {
        /// Project to send for, if not the key file's (`credential` holds the key JSON).
        project_id: Option<String>,
        /// Connection settings; `endpoint` is the base URL.
        http: HttpConfig,
        /// HTTP/2 connections.
        connections: usize,
        /// Pacing, messages per minute.
        rate_per_minute: Option<u32>,
    },
    /// Legacy HTTP.
    Legacy {
        /// Connection settings; `endpoint` is the send URL.
        http: HttpConfig,
        /// JSON or plain text.
        format: LegacyFormat,
    },
    /// CCS.
    Ccs {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// Sender id.
        sender_id: String,
        /// Extra CA (PEM) to trust.
        ca_pem: Option<String>,
        /// XMPP connections.
        connections: usize,
        /// Unacknowledged messages per connection.
        window: usize,
        /// Answer upstream messages with their own data.
        echo: bool,
        /// Ask for delivery receipts.
        receipts: bool,
    },
    /// C2DM.
    C2dm {
        /// Connection settings; `endpoint` is the send URL.
        http: HttpConfig,
        /// `Some((email, login URL))` to log in with the credential as password; `None`
        /// when the credential is a ClientLogin token.
        login: Option<(String, Option<String>)>,
    },
}
