//! From the configuration as written ([`ConfigFile`]) to what runs ([`GatewaySpec`]): read
//! the secrets, fill in defaults, and refuse anything inconsistent with an error that names
//! the key (`apps.shop.channels.fcm.service_account: ...`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use pushgate_client::HttpConfig;

use crate::c2dm_flow;

use super::file::{AppFile, ChannelFile, ChannelKind, ConfigError, ConfigFile};
use super::secret::{Secret, SecretRef};
use super::spec::{
    ApiLimits, AppSpec, C2dmFlowSpec, ChannelSettings, ChannelSpec, DeliverySettings, GatewaySpec,
    ServiceSettings, StorageSettings, WebhookSpec,
};

/// Default address of the HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database file.
pub const DEFAULT_DATABASE: &str = "pushgate.db";

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

fn err(path: &str, problem: impl std::fmt::Display) -> ConfigError {
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
            storage: storage(self),
            delivery: delivery(self)?,
            limits: limits(self)?,
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
            let spec = resolve_app(name, app, *name == default_app)?;
            for key in &spec.api_keys {
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

fn storage(f: &ConfigFile) -> StorageSettings {
    let d = StorageSettings::default();
    StorageSettings {
        busy_timeout: f.storage.busy_timeout.unwrap_or(d.busy_timeout),
        durable_commits: f.storage.durable_commits.unwrap_or(d.durable_commits),
    }
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
    };
    if out.max_body_bytes < 4096 {
        return Err(err("limits.max_body_bytes", "must be at least 4096"));
    }
    Ok(out)
}

fn resolve_app(name: &str, app: &AppFile, is_default: bool) -> Result<AppSpec, ConfigError> {
    let path = format!("apps.{name}");
    if !is_valid_name(name) {
        return Err(err(&path, "app names are 1 to 64 of a-z, 0-9, _ and -"));
    }
    if app.api_keys.is_empty() {
        return Err(err(
            &format!("{path}.api_keys"),
            "at least one key is required (e.g. \"env:PUSHGATE_SHOP_KEY\")",
        ));
    }
    let api_keys = app
        .api_keys
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
        .collect::<Result<Vec<_>, _>>()?;
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
    let default_channel = match &app.default_channel {
        Some(ch) if app.channels.contains_key(ch) => ch.clone(),
        Some(ch) => {
            return Err(err(
                &format!("{path}.default_channel"),
                format!("no channel named {ch:?}"),
            ));
        }
        None if channels.len() == 1 => channels[0].name.clone(),
        None => {
            return Err(err(
                &format!("{path}.default_channel"),
                "required when the app has more than one channel",
            ));
        }
    };
    let flow_channel = match &app.c2dm_flow.channel {
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
            .map(|c| c.name.clone())
            .unwrap_or_else(|| default_channel.clone()),
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
    let webhook = match &app.webhook {
        None => None,
        Some(w) => {
            let wpath = format!("{path}.webhook");
            let url = reqwest_url(&w.url).map_err(|e| err(&format!("{wpath}.url"), e))?;
            let secret = w
                .secret
                .load(false)
                .map_err(|e| err(&format!("{wpath}.secret"), e))?;
            if secret.expose().len() < 16 {
                return Err(err(
                    &format!("{wpath}.secret"),
                    "must be at least 16 characters",
                ));
            }
            let batch = w.batch.unwrap_or(100);
            if !(1..=1000).contains(&batch) {
                return Err(err(&format!("{wpath}.batch"), "must be between 1 and 1000"));
            }
            Some(WebhookSpec {
                url,
                secret,
                batch,
                timeout: w.timeout.unwrap_or(Duration::from_secs(10)),
                replay_existing: w.replay_existing.unwrap_or(false),
            })
        }
    };
    Ok(AppSpec {
        name: name.to_string(),
        is_default,
        api_keys,
        default_channel,
        channels,
        webhook,
        c2dm_flow: C2dmFlowSpec {
            channel: flow_channel,
            device_id_len: c2dm_flow::device_id_len(),
            registration_id_len: c2dm_flow::registration_id_len(max_reg),
        },
    })
}

/// The keys a channel table sets, by name.
fn present_keys(c: &ChannelFile) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut note = |set: bool, key: &'static str| {
        if set {
            keys.push(key);
        }
    };
    note(c.service_account.is_some(), "service_account");
    note(c.project_id.is_some(), "project_id");
    note(c.base_url.is_some(), "base_url");
    note(c.api_key.is_some(), "api_key");
    note(c.endpoint.is_some(), "endpoint");
    note(c.format.is_some(), "format");
    note(c.sender_id.is_some(), "sender_id");
    note(c.host.is_some(), "host");
    note(c.window.is_some(), "window");
    note(c.connections.is_some(), "connections");
    note(c.email.is_some(), "email");
    note(c.password.is_some(), "password");
    note(c.auth_token.is_some(), "auth_token");
    note(c.login_url.is_some(), "login_url");
    note(c.ca.is_some(), "ca");
    note(c.http2_prior_knowledge.is_some(), "http2_prior_knowledge");
    note(c.max_in_flight.is_some(), "max_in_flight");
    note(c.rate_per_minute.is_some(), "rate_per_minute");
    note(c.timeout.is_some(), "timeout");
    note(c.echo.is_some(), "echo");
    note(c.receipts.is_some(), "receipts");
    keys
}

/// The keys each kind accepts besides `kind` (a key is only accepted where it is used:
/// client-side pacing exists on FCM v1 only, the request timeout on the HTTP protocols only).
fn allowed_keys(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::FcmV1 => &[
            "service_account",
            "project_id",
            "base_url",
            "connections",
            "http2_prior_knowledge",
            "ca",
            "max_in_flight",
            "rate_per_minute",
            "timeout",
        ],
        ChannelKind::Legacy => &[
            "api_key",
            "endpoint",
            "format",
            "http2_prior_knowledge",
            "ca",
            "max_in_flight",
            "timeout",
        ],
        ChannelKind::Ccs => &[
            "api_key",
            "sender_id",
            "host",
            "window",
            "connections",
            "echo",
            "receipts",
            "ca",
        ],
        ChannelKind::C2dm => &[
            "email",
            "password",
            "auth_token",
            "login_url",
            "endpoint",
            "ca",
            "max_in_flight",
            "timeout",
        ],
    }
}

fn required<'a, T>(value: &'a Option<T>, path: &str, key: &str) -> Result<&'a T, ConfigError> {
    value.as_ref().ok_or_else(|| {
        err(
            &format!("{path}.{key}"),
            "required for this kind of channel",
        )
    })
}

fn http_for(
    path: &str,
    c: &ChannelFile,
    endpoint: Option<String>,
) -> Result<HttpConfig, ConfigError> {
    let mut http = HttpConfig {
        endpoint,
        ..HttpConfig::default()
    };
    if let Some(timeout) = c.timeout {
        http.timeout = timeout;
    }
    if let Some(ca) = &c.ca {
        let pem = std::fs::read(ca).map_err(|e| {
            err(
                &format!("{path}.ca"),
                format!("cannot read {}: {e}", ca.display()),
            )
        })?;
        http.extra_ca_pem = Some(pem);
    }
    http.http2_prior_knowledge = c.http2_prior_knowledge.unwrap_or(false);
    Ok(http)
}

fn resolve_channel(path: &str, name: &str, c: &ChannelFile) -> Result<ChannelSpec, ConfigError> {
    if !is_valid_name(name) {
        return Err(err(path, "channel names are 1 to 64 of a-z, 0-9, _ and -"));
    }
    let allowed = allowed_keys(c.kind);
    if let Some(extra) = present_keys(c).into_iter().find(|k| !allowed.contains(k)) {
        return Err(err(
            &format!("{path}.{extra}"),
            format!("does not apply to a {} channel", c.kind.as_str()),
        ));
    }
    if c.max_in_flight == Some(0) || c.connections == Some(0) || c.window == Some(0) {
        return Err(err(
            path,
            "max_in_flight, connections and window must be at least 1",
        ));
    }
    let load = |r: &SecretRef, key: &str, raw: bool| -> Result<Secret, ConfigError> {
        r.load(raw).map_err(|e| err(&format!("{path}.{key}"), e))
    };
    let (credential, endpoint, settings, default_in_flight) = match c.kind {
        ChannelKind::FcmV1 => {
            let raw = required(&c.service_account, path, "service_account")?;
            let reference = match SecretRef::try_from(raw.clone()) {
                Ok(SecretRef::Inline(p)) => SecretRef::file(p),
                Ok(other) => other,
                Err(e) => return Err(err(&format!("{path}.service_account"), e)),
            };
            let key = load(&reference, "service_account", true)?;
            pushgate_client::oauth::key_from_json(key.expose()).map_err(|e| {
                err(
                    &format!("{path}.service_account"),
                    format!("{} is not a service-account key: {e}", key.reference()),
                )
            })?;
            let base = c
                .base_url
                .clone()
                .unwrap_or_else(|| pushgate_client::v1::DEFAULT_BASE_URL.to_string());
            let http = http_for(path, c, Some(base.clone()))?;
            let settings = ChannelSettings::FcmV1 {
                project_id: c.project_id.clone(),
                http,
                connections: c
                    .connections
                    .unwrap_or(pushgate_client::v1::DEFAULT_CONNECTIONS),
                rate_per_minute: c.rate_per_minute,
            };
            (
                key,
                base,
                settings,
                pushgate_client::v1::DEFAULT_MAX_IN_FLIGHT,
            )
        }
        ChannelKind::Legacy => {
            let key = load(required(&c.api_key, path, "api_key")?, "api_key", false)?;
            let endpoint = c
                .endpoint
                .clone()
                .unwrap_or_else(|| pushgate_client::legacy::DEFAULT_ENDPOINT.to_string());
            let http = http_for(path, c, Some(endpoint.clone()))?;
            let settings = ChannelSettings::Legacy {
                http,
                format: c.format.unwrap_or_default(),
            };
            // Requests at once: 32 multicasts of 1000, or 32 single-token requests.
            (key, endpoint, settings, 32)
        }
        ChannelKind::Ccs => {
            let key = load(required(&c.api_key, path, "api_key")?, "api_key", false)?;
            let sender_id = required(&c.sender_id, path, "sender_id")?.clone();
            let host_port = c
                .host
                .clone()
                .unwrap_or_else(|| "fcm-xmpp.googleapis.com:5235".to_string());
            let (host, port) = host_port
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| err(&format!("{path}.host"), "must be host:port"))?;
            let ca_pem = match &c.ca {
                Some(ca) => Some(std::fs::read_to_string(ca).map_err(|e| {
                    err(
                        &format!("{path}.ca"),
                        format!("cannot read {}: {e}", ca.display()),
                    )
                })?),
                None => None,
            };
            let connections = c.connections.unwrap_or(1);
            let window = c.window.unwrap_or(100);
            let settings = ChannelSettings::Ccs {
                host,
                port,
                sender_id,
                ca_pem,
                connections,
                window,
                echo: c.echo.unwrap_or(false),
                receipts: c.receipts.unwrap_or(false),
            };
            (key, host_port, settings, connections * window)
        }
        ChannelKind::C2dm => {
            let endpoint = c
                .endpoint
                .clone()
                .unwrap_or_else(|| pushgate_client::c2dm::DEFAULT_ENDPOINT.to_string());
            let http = http_for(path, c, Some(endpoint.clone()))?;
            let (key, login) = match (&c.email, &c.password, &c.auth_token) {
                (Some(email), Some(password), None) => (
                    load(password, "password", false)?,
                    Some((email.clone(), c.login_url.clone())),
                ),
                (None, None, Some(token)) => (load(token, "auth_token", false)?, None),
                _ => {
                    return Err(err(
                        path,
                        "a c2dm channel needs either email and password, or auth_token",
                    ));
                }
            };
            (key, endpoint, ChannelSettings::C2dm { http, login }, 4)
        }
    };
    Ok(ChannelSpec {
        name: name.to_string(),
        endpoint,
        credential,
        max_in_flight: c.max_in_flight.unwrap_or(default_in_flight),
        settings,
    })
}
