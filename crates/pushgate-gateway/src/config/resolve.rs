//! From the configuration as written ([`ConfigFile`]) to what runs ([`GatewaySpec`]): read
//! the secrets, fill in defaults, and refuse anything inconsistent with an error that names
//! the key (`apps.shop.channels.fcm.service_account: ...`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::c2dm_flow;
use crate::http_server::ServerSettings;
use crate::http_server::tls::TlsFiles;

use super::file::{AppFile, ChannelKind, ConfigError, ConfigFile, TlsFile, WebhookFile};
use super::resolve_channel::resolve_channel;
use super::secret::Secret;
use super::spec::{
    ApiLimits, AppSpec, C2dmFlowSpec, ChannelSpec, DeliverySettings, GatewaySpec, KeyRate,
    MetricsAccess, ServiceSettings, StorageSettings, WebhookSpec,
};

/// Default address of the HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database file.
pub const DEFAULT_DATABASE: &str = "pushgate.db";
/// Events per webhook POST unless configured.
pub(super) const WEBHOOK_BATCH: usize = 100;
/// Timeout of one webhook POST unless configured.
pub(super) const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that `text` is an absolute http(s) URL.
fn reqwest_url(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or("must be an http:// or https:// URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("must name a host".into());
    }
    Ok(text.to_string())
}

/// A configuration error naming the key at `path`.
pub(super) fn err(path: &str, problem: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{path}: {problem}"))
}

/// True for names usable in URLs and metric labels: 1..=64 of `[a-z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl ConfigFile {
    /// Checks the service settings (everything but the apps).
    pub fn resolve_service(&self) -> Result<ServiceSettings, ConfigError> {
        let listen: SocketAddr = match self.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| err("listen", format!("{e}")))?,
        };
        Ok(ServiceSettings {
            listen,
            database: self
                .database
                .clone()
                .unwrap_or_else(|| DEFAULT_DATABASE.to_string()),
            storage: storage(self)?,
            delivery: delivery(self)?,
            limits: limits(self)?,
            retention: super::retention::retention(self)?,
            server: server(self)?,
            tls: self.tls.as_ref().map(tls).transpose()?,
            metrics: metrics_access(self)?,
            admin_keys: admin_keys(self)?,
            instance_id: instance_id(self.instance_id.as_deref())?,
        })
    }

    /// Checks the configuration and reads its secrets.
    pub fn resolve(&self) -> Result<GatewaySpec, ConfigError> {
        let service = self.resolve_service()?;
        if self.apps.is_empty() {
            return Err(ConfigError(
                "apps: no application configured (add an [apps.NAME] table)".into(),
            ));
        }
        let defaults: Vec<&String> = self
            .apps
            .iter()
            .filter(|(_, a)| a.default)
            .map(|(n, _)| n)
            .collect();
        let default_app = match (defaults.as_slice(), self.apps.len()) {
            ([one], _) => (*one).clone(),
            ([], 1) => self.apps.keys().next().cloned().unwrap_or_default(),
            ([], _) => {
                return Err(ConfigError(
                    "apps: several applications and none has default = true".into(),
                ));
            }
            (many, _) => {
                let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(ConfigError(format!(
                    "apps: only one application may be the default, not {}",
                    names.join(", ")
                )));
            }
        };
        let mut apps = Vec::new();
        let mut key_owner: HashMap<String, String> = HashMap::new();
        for (name, app) in &self.apps {
            let spec = resolve_app(name, app, *name == default_app, service.limits.key_rate)?;
            for key in &spec.api_keys {
                if let Some(admin) = service
                    .admin_keys
                    .iter()
                    .find(|a| a.expose() == key.expose())
                {
                    return Err(err(
                        &format!("apps.{name}.api_keys"),
                        format!(
                            "{} is also an admin key ({})",
                            key.reference(),
                            admin.reference()
                        ),
                    ));
                }
                if let Some(other) = key_owner.insert(key.expose().to_string(), name.clone()) {
                    return Err(err(
                        &format!("apps.{name}.api_keys"),
                        format!("{} is also a key of app {other}", key.reference()),
                    ));
                }
            }
            apps.push(spec);
        }
        Ok(GatewaySpec::new(service, apps))
    }
}

fn storage(f: &ConfigFile) -> Result<StorageSettings, ConfigError> {
    let d = StorageSettings::default();
    let x = &f.storage;
    let out = StorageSettings {
        busy_timeout: x.busy_timeout.unwrap_or(d.busy_timeout),
        durable_commits: x.durable_commits.unwrap_or(d.durable_commits),
        pool_max_connections: x.pool_max_connections.unwrap_or(d.pool_max_connections),
        pool_acquire_timeout: x.pool_acquire_timeout.unwrap_or(d.pool_acquire_timeout),
        fanout_chunk: x.fanout_chunk.unwrap_or(d.fanout_chunk),
    };
    if out.fanout_chunk == 0 {
        return Err(err("storage.fanout_chunk", "must be at least 1"));
    }
    if out.pool_max_connections == 0 {
        return Err(err("storage.pool_max_connections", "must be at least 1"));
    }
    if out.pool_acquire_timeout.is_zero() {
        return Err(err("storage.pool_acquire_timeout", "must be more than 0s"));
    }
    Ok(out)
}

fn delivery(f: &ConfigFile) -> Result<DeliverySettings, ConfigError> {
    let d = DeliverySettings::default();
    let x = &f.delivery;
    let out = DeliverySettings {
        lease: x.lease.unwrap_or(d.lease),
        claim_batch: x.claim_batch.unwrap_or(d.claim_batch),
        idle_poll: x.idle_poll.unwrap_or(d.idle_poll),
        retry_initial: x.retry_initial.unwrap_or(d.retry_initial),
        retry_max: x.retry_max.unwrap_or(d.retry_max),
        default_ttl: x.default_ttl.unwrap_or(d.default_ttl),
        shutdown_grace: x.shutdown_grace.unwrap_or(d.shutdown_grace),
        retry_auth_failures: x.retry_auth_failures.unwrap_or(d.retry_auth_failures),
    };
    if out.lease < Duration::from_secs(1) {
        return Err(err("delivery.lease", "must be at least 1s"));
    }
    if !(1..=10_000).contains(&out.claim_batch) {
        return Err(err("delivery.claim_batch", "must be between 1 and 10000"));
    }
    if out.default_ttl > Duration::from_secs(pushgate_proto::legacy::limits::MAX_TTL_SECONDS.into())
    {
        return Err(err(
            "delivery.default_ttl",
            "must not exceed 28 days (2419200 s), the providers' maximum",
        ));
    }
    if out.retry_initial.is_zero() || out.retry_max < out.retry_initial {
        return Err(err(
            "delivery.retry_initial",
            "must be positive and not above delivery.retry_max",
        ));
    }
    Ok(out)
}

fn limits(f: &ConfigFile) -> Result<ApiLimits, ConfigError> {
    let d = ApiLimits::default();
    let out = ApiLimits {
        max_body_bytes: f.limits.max_body_bytes.unwrap_or(d.max_body_bytes),
        max_target_list: f.limits.max_target_list.unwrap_or(d.max_target_list),
        max_device_batch: f.limits.max_device_batch.unwrap_or(d.max_device_batch),
        body_read_timeout: f.limits.body_read_timeout.unwrap_or(d.body_read_timeout),
        key_rate: key_rate(
            "limits",
            f.limits.requests_per_second,
            f.limits.request_burst,
        )?,
    };
    if out.max_body_bytes < 4096 {
        return Err(err("limits.max_body_bytes", "must be at least 4096"));
    }
    if out.body_read_timeout < Duration::from_millis(100) {
        return Err(err("limits.body_read_timeout", "must be at least 100ms"));
    }
    Ok(out)
}

/// A key rate from `requests_per_second` and `request_burst` under `path`: both at least
/// 1, the burst one second's worth when not given; `None` when no rate is set.
fn key_rate(
    path: &str,
    per_second: Option<u32>,
    burst: Option<u32>,
) -> Result<Option<KeyRate>, ConfigError> {
    match (per_second, burst) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(err(
            &format!("{path}.request_burst"),
            "needs requests_per_second",
        )),
        (Some(0), _) => Err(err(
            &format!("{path}.requests_per_second"),
            "must be at least 1 (leave it out for no limit)",
        )),
        (Some(_), Some(0)) => Err(err(&format!("{path}.request_burst"), "must be at least 1")),
        (Some(per_second), burst) => Ok(Some(KeyRate {
            per_second,
            burst: burst.unwrap_or(per_second),
        })),
    }
}

/// The listener's deadlines and connection cap.
fn server(f: &ConfigFile) -> Result<ServerSettings, ConfigError> {
    let d = ServerSettings::default();
    let out = ServerSettings {
        header_read_timeout: f
            .limits
            .header_read_timeout
            .unwrap_or(d.header_read_timeout),
        max_connections: f.limits.max_connections.unwrap_or(d.max_connections),
    };
    if out.header_read_timeout < Duration::from_millis(100) {
        return Err(err("limits.header_read_timeout", "must be at least 100ms"));
    }
    if out.max_connections == 0 {
        return Err(err("limits.max_connections", "must be at least 1"));
    }
    Ok(out)
}

/// The admin console's keys: each read from its reference, at least 16 characters.
fn admin_keys(f: &ConfigFile) -> Result<Vec<Secret>, ConfigError> {
    let mut keys = Vec::new();
    for (i, r) in f.admin_keys.iter().enumerate() {
        let path = format!("admin_keys[{i}]");
        let key = r.load(false).map_err(|e| err(&path, e))?;
        if key.expose().len() < 16 {
            return Err(err(
                &path,
                format!("{} is shorter than 16 characters", key.reference()),
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Who may read `/metrics`: a token of at least 16 characters, a listener of its own.
fn metrics_access(f: &ConfigFile) -> Result<MetricsAccess, ConfigError> {
    let token = match &f.metrics_token {
        None => None,
        Some(r) => {
            let token = r.load(false).map_err(|e| err("metrics_token", e))?;
            if token.expose().len() < 16 {
                return Err(err(
                    "metrics_token",
                    format!("{} is shorter than 16 characters", token.reference()),
                ));
            }
            Some(token)
        }
    };
    if f.metrics_listen.is_some() && f.metrics_listen == f.listen {
        return Err(err("metrics_listen", "must differ from listen"));
    }
    Ok(MetricsAccess {
        listen: f.metrics_listen,
        token,
    })
}

/// The TLS files, loaded once now so that a bad pair stops the start with its reason.
fn tls(t: &TlsFile) -> Result<TlsFiles, ConfigError> {
    let files = TlsFiles {
        cert: t.cert.clone(),
        key: t.key.clone(),
    };
    files.load().map_err(|e| err("tls", e))?;
    Ok(files)
}

fn resolve_app(
    name: &str,
    app: &AppFile,
    is_default: bool,
    default_rate: Option<KeyRate>,
) -> Result<AppSpec, ConfigError> {
    let path = format!("apps.{name}");
    if !is_valid_name(name) {
        return Err(err(&path, "app names are 1 to 64 of a-z, 0-9, _ and -"));
    }
    let api_keys = app_keys(&path, app)?;
    if app.channels.is_empty() {
        return Err(err(
            &format!("{path}.channels"),
            "at least one channel is required",
        ));
    }
    let channels = app
        .channels
        .iter()
        .map(|(ch, c)| resolve_channel(&format!("{path}.channels.{ch}"), ch, c))
        .collect::<Result<Vec<_>, _>>()?;
    let default_channel = default_channel(&path, app, &channels)?;
    let c2dm_flow = flow_spec(&path, app, &channels, &default_channel)?;
    let webhook = match &app.webhook {
        None => None,
        Some(w) => Some(webhook_spec(&format!("{path}.webhook"), w)?),
    };
    Ok(AppSpec {
        name: name.to_string(),
        is_default,
        api_keys,
        default_channel,
        channels,
        webhook,
        c2dm_flow,
        key_rate: key_rate(&path, app.requests_per_second, app.request_burst)?.or(default_rate),
    })
}

/// The app's API keys, each read and at least 16 characters long.
fn app_keys(path: &str, app: &AppFile) -> Result<Vec<Secret>, ConfigError> {
    if app.api_keys.is_empty() {
        return Err(err(
            &format!("{path}.api_keys"),
            "at least one key is required (e.g. \"env:PUSHGATE_SHOP_KEY\")",
        ));
    }
    app.api_keys
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = r
                .load(false)
                .map_err(|e| err(&format!("{path}.api_keys[{i}]"), e))?;
            if key.expose().len() < 16 {
                return Err(err(
                    &format!("{path}.api_keys[{i}]"),
                    format!("{} is shorter than 16 characters", key.reference()),
                ));
            }
            Ok(key)
        })
        .collect()
}

/// The channel a message uses when it names none: the configured one, or the only one.
fn default_channel(
    path: &str,
    app: &AppFile,
    channels: &[ChannelSpec],
) -> Result<String, ConfigError> {
    match &app.default_channel {
        Some(ch) if app.channels.contains_key(ch) => Ok(ch.clone()),
        Some(ch) => Err(err(
            &format!("{path}.default_channel"),
            format!("no channel named {ch:?}"),
        )),
        None if channels.len() == 1 => Ok(channels[0].name.clone()),
        None => Err(err(
            &format!("{path}.default_channel"),
            "required when the app has more than one channel",
        )),
    }
}

/// The C2DM-era registration flow's channel (the configured one, else the app's C2DM
/// channel, else its default) and length limits.
fn flow_spec(
    path: &str,
    app: &AppFile,
    channels: &[ChannelSpec],
    default_channel: &str,
) -> Result<C2dmFlowSpec, ConfigError> {
    let channel = match &app.c2dm_flow.channel {
        Some(ch) if app.channels.contains_key(ch) => ch.clone(),
        Some(ch) => {
            return Err(err(
                &format!("{path}.c2dm_flow.channel"),
                format!("no channel named {ch:?}"),
            ));
        }
        None => channels
            .iter()
            .find(|c| c.kind() == ChannelKind::C2dm)
            .map_or_else(|| default_channel.to_string(), |c| c.name.clone()),
    };
    let max_reg = app
        .c2dm_flow
        .max_registration_id_len
        .unwrap_or(c2dm_flow::REGISTRATION_ID_MAX);
    if max_reg < c2dm_flow::MIN_LEN {
        return Err(err(
            &format!("{path}.c2dm_flow.max_registration_id_len"),
            format!("must be at least {}", c2dm_flow::MIN_LEN),
        ));
    }
    Ok(C2dmFlowSpec {
        channel,
        device_id_len: c2dm_flow::device_id_len(),
        registration_id_len: c2dm_flow::registration_id_len(max_reg),
    })
}

/// The app's webhook: an http(s) URL, a secret of at least 16 characters, a sane batch.
fn webhook_spec(path: &str, w: &WebhookFile) -> Result<WebhookSpec, ConfigError> {
    let url = reqwest_url(&w.url).map_err(|e| err(&format!("{path}.url"), e))?;
    let secret = w
        .secret
        .load(false)
        .map_err(|e| err(&format!("{path}.secret"), e))?;
    if secret.expose().len() < 16 {
        return Err(err(
            &format!("{path}.secret"),
            "must be at least 16 characters",
        ));
    }
    let batch = w.batch.unwrap_or(WEBHOOK_BATCH);
    if !(1..=1000).contains(&batch) {
        return Err(err(&format!("{path}.batch"), "must be between 1 and 1000"));
    }
    Ok(WebhookSpec {
        url,
        secret,
        batch,
        timeout: w.timeout.unwrap_or(WEBHOOK_TIMEOUT),
        replay_existing: w.replay_existing.unwrap_or(false),
    })
}

/// The configured instance id: printable, without spaces, at most 64 characters.
fn instance_id(id: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(id) = id else { return Ok(None) };
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if !ok {
        return Err(err(
            "instance_id",
            "must be 1 to 64 letters, digits or - _ . :",
        ));
    }
    Ok(Some(id.to_string()))
}
