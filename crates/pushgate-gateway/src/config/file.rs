//! The configuration as written: `pushgate.toml`, overridable by `PUSHGATE_*` variables
//! (`PUSHGATE_LISTEN`, `PUSHGATE_APPS__SHOP__CHANNELS__FCM__BASE_URL`, ...). Every table
//! rejects unknown keys, so a typo is an error at start instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use utoipa::ToSchema;

use super::retention::{AppRetentionFile, RetentionFile};
use super::secret::SecretRef;

/// Top-level keys the environment may override (other `PUSHGATE_*` variables are not config).
pub(super) const ENV_KEYS: &[&str] = &[
    "listen",
    "database",
    "tls",
    "metrics_listen",
    "metrics_token",
    "admin_keys",
    "instance_id",
    "storage",
    "delivery",
    "limits",
    "retention",
    "apps",
];

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address of the HTTP API (default 127.0.0.1:8080).
    #[schema(value_type = Option<String>)]
    pub listen: Option<SocketAddr>,
    /// SQLite file path or `sqlite:` URL (default `pushgate.db`), or a `postgres://` URL.
    pub database: Option<String>,
    /// Serve the API over TLS with this certificate and key (default: plain HTTP).
    pub tls: Option<TlsFile>,
    /// Serve `/metrics` on this address only (plain HTTP, no key), not on `listen`.
    #[schema(value_type = Option<String>)]
    pub metrics_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` for `/metrics` on `listen`.
    #[schema(value_type = Option<String>)]
    pub metrics_token: Option<SecretRef>,
    /// Keys that sign in to the admin console (`/admin`) with every app in sight, as secret
    /// references (`env:NAME`, `file:PATH`); an app's API key signs in to its app only.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub admin_keys: Vec<SecretRef>,
    /// This instance's name among the instances sharing the database, in its logs and
    /// metrics (default: `<host>-<pid>-<random>`).
    pub instance_id: Option<String>,
    /// How the database is used.
    #[serde(default)]
    pub storage: StorageFile,
    /// How deliveries are claimed, retried and expired.
    #[serde(default)]
    pub delivery: DeliveryFile,
    /// Limits of the HTTP API.
    #[serde(default)]
    pub limits: LimitsFile,
    /// How long history (finished messages, events, invalid devices) is kept.
    #[serde(default)]
    pub retention: RetentionFile,
    /// The applications, by name (the name appears in URLs: `/v1/apps/{name}`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppFile>,
}

/// `tls = { cert = "...", key = "..." }`: PEM files, read again on SIGHUP or when they change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Certificate chain, leaf first.
    #[schema(value_type = String)]
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    #[schema(value_type = String)]
    pub key: PathBuf,
}

/// `[storage]`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    /// How long a writer waits for the database lock (default 10 s).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub busy_timeout: Option<Duration>,
    /// Flush commits to disk (default true): accepted messages survive a power cut. Delivery
    /// bookkeeping (claims, provider answers) is flushed with the next flushed commit, within 200 ms.
    pub durable_commits: Option<bool>,
    /// PostgreSQL: most connections this instance opens (default 16).
    pub pool_max_connections: Option<u32>,
    /// PostgreSQL: how long an operation waits for a free connection (default 10 s).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub pool_acquire_timeout: Option<Duration>,
    /// Most deliveries of one fan-out stored per transaction (default 10000): a larger
    /// audience is answered once its first chunk is stored, and the rest follow in the
    /// background, so that no write waits for a whole fan-out.
    pub fanout_chunk: Option<u32>,
}

/// `[delivery]`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFile {
    /// How long a claim lasts before another worker may take the work (default 60 s).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub lease: Option<Duration>,
    /// Most deliveries one claim takes (default 1000).
    pub claim_batch: Option<u32>,
    /// How often an idle channel looks for due work (default 1 s; new messages wake it at once).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub idle_poll: Option<Duration>,
    /// First retry delay (default 1 s), doubled per attempt up to `retry_max` (default 10 min).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub retry_initial: Option<Duration>,
    /// Longest retry delay.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub retry_max: Option<Duration>,
    /// Time to live of a message that gives none (default 28 days, the providers' maximum).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub default_ttl: Option<Duration>,
    /// On shutdown, how long in-flight sends may finish before they are released.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub shutdown_grace: Option<Duration>,
    /// Treat refused credentials as temporary (default true): the channel pauses and the
    /// work waits, instead of failing every message while an operator fixes the key.
    pub retry_auth_failures: Option<bool>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest request body in bytes (default 1 MiB).
    pub max_body_bytes: Option<usize>,
    /// Most entries in one target list or device batch (default 10,000 / 1,000).
    pub max_target_list: Option<usize>,
    /// Most devices in one `devices:import` call.
    pub max_device_batch: Option<usize>,
    /// Time a client has to send a request's head; also how long a keep-alive connection
    /// may stay idle (default 10 s).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub header_read_timeout: Option<Duration>,
    /// Time a client has to send a request's body (default 30 s).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub body_read_timeout: Option<Duration>,
    /// Most connections open at once (default: the open-file limit less a quarter of it,
    /// at most 256 less).
    pub max_connections: Option<usize>,
    /// Requests per second one API key may make (default: no limit); over it, 429.
    pub requests_per_second: Option<u32>,
    /// Requests one key may make at once above the rate (default: one second's worth).
    pub request_burst: Option<u32>,
}

/// `[apps.NAME]`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppFile {
    /// The app that serves requests naming none (the C2DM-era endpoints at the root).
    #[serde(default)]
    pub default: bool,
    /// Bearer keys for this app's API (`env:NAME`, `file:PATH` or inline).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub api_keys: Vec<SecretRef>,
    /// The channel that reaches devices naming none; required with several channels.
    pub default_channel: Option<String>,
    /// The C2DM-era registration flow.
    #[serde(default)]
    pub c2dm_flow: C2dmFlowFile,
    /// Provider channels, by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelFile>,
    /// Where the app's events are POSTed.
    pub webhook: Option<WebhookFile>,
    /// This app's keys' request rate, instead of `limits.requests_per_second`.
    pub requests_per_second: Option<u32>,
    /// This app's keys' burst, instead of `limits.request_burst`.
    pub request_burst: Option<u32>,
    /// This app's history limits, instead of `[retention]`'s.
    pub retention: Option<AppRetentionFile>,
}

/// `[apps.NAME.webhook]`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    /// The receiver's URL.
    pub url: String,
    /// The HMAC-SHA256 signing secret (`env:NAME`, `file:PATH` or inline).
    #[schema(value_type = String)]
    pub secret: SecretRef,
    /// Most events per POST (default 100).
    pub batch: Option<usize>,
    /// Timeout of one POST (default 10 s).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub timeout: Option<Duration>,
    /// Deliver the events stored before the webhook was configured too (default false: the
    /// receiver gets what happens from now on).
    pub replay_existing: Option<bool>,
}

/// `[apps.NAME.c2dm_flow]`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct C2dmFlowFile {
    /// Channel of the confirmation message and the devices registered this way (default: the
    /// app's first `c2dm` channel, else its default channel).
    pub channel: Option<String>,
    /// Longest accepted `registration_id` in bytes (default 140, as C2DM; raise it for
    /// GCM/FCM tokens, which are longer).
    pub max_registration_id_len: Option<usize>,
}

/// The protocol of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// FCM HTTP v1 with a service account.
    FcmV1,
    /// GCM/FCM legacy HTTP with a server key.
    Legacy,
    /// The XMPP Cloud Connection Server.
    Ccs,
    /// C2DM with ClientLogin.
    C2dm,
}

impl ChannelKind {
    /// The name used in configuration, storage and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::FcmV1 => "fcm_v1",
            ChannelKind::Legacy => "legacy",
            ChannelKind::Ccs => "ccs",
            ChannelKind::C2dm => "c2dm",
        }
    }
}

/// Legacy HTTP body format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegacyFormat {
    /// `application/json`, multicasts of up to 1000 tokens.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`, one token per request.
    PlainText,
}

/// `[apps.NAME.channels.CHANNEL]`: one table for every kind; which keys apply depends on
/// `kind`, and a key that does not apply is an error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelFile {
    /// The protocol.
    pub kind: ChannelKind,
    /// fcm_v1: the service-account key file (a path, or `env:NAME` holding the JSON).
    pub service_account: Option<String>,
    /// fcm_v1: project to send for, if not the key file's.
    pub project_id: Option<String>,
    /// fcm_v1: base URL (default `https://fcm.googleapis.com`).
    pub base_url: Option<String>,
    /// legacy, ccs: the server key.
    #[schema(value_type = Option<String>)]
    pub api_key: Option<SecretRef>,
    /// legacy, c2dm: the send URL.
    pub endpoint: Option<String>,
    /// legacy: `json` (default) or `plain_text`.
    pub format: Option<LegacyFormat>,
    /// ccs: the sender id (project number).
    pub sender_id: Option<String>,
    /// ccs: `host:port` of the connection server (default `fcm-xmpp.googleapis.com:5235`).
    pub host: Option<String>,
    /// ccs: unacknowledged messages per connection (default 100).
    pub window: Option<usize>,
    /// fcm_v1, ccs: connections (HTTP/2 or XMPP) to open.
    pub connections: Option<usize>,
    /// c2dm: the ClientLogin account.
    pub email: Option<String>,
    /// c2dm: the account's password.
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretRef>,
    /// c2dm: a ClientLogin token to use instead of logging in.
    #[schema(value_type = Option<String>)]
    pub auth_token: Option<SecretRef>,
    /// c2dm: the ClientLogin URL.
    pub login_url: Option<String>,
    /// A PEM file of a CA to trust besides the system roots (an emulator's certificate).
    #[schema(value_type = Option<String>)]
    pub ca: Option<PathBuf>,
    /// Speak HTTP/2 without TLS (h2c), for plain-HTTP emulators.
    pub http2_prior_knowledge: Option<bool>,
    /// fcm_v1, legacy, c2dm: requests in flight at once (CCS: `connections` × `window`).
    pub max_in_flight: Option<usize>,
    /// fcm_v1: client-side pacing, messages per minute (below the project's quota).
    pub rate_per_minute: Option<u32>,
    /// fcm_v1, legacy, c2dm: timeout of one provider request.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub timeout: Option<Duration>,
    /// ccs: answer every upstream message with a message carrying the same data back to its
    /// device, as the classic echo app server did.
    pub echo: Option<bool>,
    /// ccs: ask CCS for a delivery receipt of every message.
    pub receipts: Option<bool>,
}

/// Why the configuration could not be read or used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigFile {
    /// Reads `path` (when given) and the `PUSHGATE_*` environment over it.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError(format!("{} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(
            Env::prefixed("PUSHGATE_")
                .filter(|key| {
                    let top = key.as_str().split("__").next().unwrap_or_default();
                    ENV_KEYS.iter().any(|k| top.eq_ignore_ascii_case(k))
                })
                .split("__"),
        );
        figment.extract().map_err(|e| ConfigError(e.to_string()))
    }

    /// Parses TOML text alone (for tests and `--check`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))
    }
}
