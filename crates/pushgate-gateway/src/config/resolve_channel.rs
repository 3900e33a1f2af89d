//! One channel table of the configuration (`[apps.NAME.channels.NAME]`) resolved into what
//! runs: the keys checked against the channel's kind, its credential read, its defaults
//! filled in. Errors name the key (`apps.shop.channels.fcm.service_account: ...`).

use pushgate_client::HttpConfig;

use super::file::{ChannelFile, ChannelKind, ConfigError};
use super::resolve::{err, is_valid_name};
use super::secret::{Secret, SecretRef};
use super::spec::{ChannelSettings, ChannelSpec};

/// CCS's production `host:port`.
pub(super) const CCS_HOST: &str = "fcm-xmpp.googleapis.com:5235";
/// XMPP connections per CCS channel unless configured.
pub(super) const CCS_CONNECTIONS: usize = 1;
/// Unacknowledged messages per CCS connection unless configured (CCS's own limit).
pub(super) const CCS_WINDOW: usize = 100;

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

pub(super) fn resolve_channel(
    path: &str,
    name: &str,
    c: &ChannelFile,
) -> Result<ChannelSpec, ConfigError> {
    check_keys(path, name, c)?;
    let resolved = match c.kind {
        ChannelKind::FcmV1 => fcm_v1(path, c)?,
        ChannelKind::Legacy => legacy(path, c)?,
        ChannelKind::Ccs => ccs(path, c)?,
        ChannelKind::C2dm => c2dm(path, c)?,
    };
    Ok(ChannelSpec {
        name: name.to_string(),
        endpoint: resolved.endpoint,
        credential: resolved.credential,
        max_in_flight: c.max_in_flight.unwrap_or(resolved.default_in_flight),
        settings: resolved.settings,
    })
}

/// What each kind of channel resolves to besides the settings every kind shares.
struct Resolved {
    credential: Secret,
    endpoint: String,
    settings: ChannelSettings,
    /// Requests at once when `max_in_flight` is not set, in the protocol's own unit.
    default_in_flight: usize,
}

/// The name is usable, every key set applies to this kind, and no count is zero.
fn check_keys(path: &str, name: &str, c: &ChannelFile) -> Result<(), ConfigError> {
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
    Ok(())
}

/// Reads the secret behind `r`, naming `path.key` when it cannot.
fn load(path: &str, r: &SecretRef, key: &str, raw: bool) -> Result<Secret, ConfigError> {
    r.load(raw).map_err(|e| err(&format!("{path}.{key}"), e))
}

/// FCM HTTP v1: a service-account key file (checked to parse), the API's base URL.
fn fcm_v1(path: &str, c: &ChannelFile) -> Result<Resolved, ConfigError> {
    let raw = required(&c.service_account, path, "service_account")?;
    let reference = match SecretRef::try_from(raw.clone()) {
        Ok(SecretRef::Inline(p)) => SecretRef::file(p),
        Ok(other) => other,
        Err(e) => return Err(err(&format!("{path}.service_account"), e)),
    };
    let key = load(path, &reference, "service_account", true)?;
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
    Ok(Resolved {
        credential: key,
        endpoint: base,
        settings,
        default_in_flight: pushgate_client::v1::DEFAULT_MAX_IN_FLIGHT,
    })
}

/// Legacy HTTP: a server key and the send endpoint, JSON or plain text.
fn legacy(path: &str, c: &ChannelFile) -> Result<Resolved, ConfigError> {
    let key = load(
        path,
        required(&c.api_key, path, "api_key")?,
        "api_key",
        false,
    )?;
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
    Ok(Resolved {
        credential: key,
        endpoint,
        settings,
        default_in_flight: 32,
    })
}

/// CCS (XMPP): a server key, the sender id, `host:port`, connections and their window.
fn ccs(path: &str, c: &ChannelFile) -> Result<Resolved, ConfigError> {
    let key = load(
        path,
        required(&c.api_key, path, "api_key")?,
        "api_key",
        false,
    )?;
    let sender_id = required(&c.sender_id, path, "sender_id")?.clone();
    let host_port = c.host.clone().unwrap_or_else(|| CCS_HOST.to_string());
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
    let connections = c.connections.unwrap_or(CCS_CONNECTIONS);
    let window = c.window.unwrap_or(CCS_WINDOW);
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
    Ok(Resolved {
        credential: key,
        endpoint: host_port,
        settings,
        default_in_flight: connections * window,
    })
}

/// C2DM: ClientLogin with email and password, or a ready auth token.
fn c2dm(path: &str, c: &ChannelFile) -> Result<Resolved, ConfigError> {
    let endpoint = c
        .endpoint
        .clone()
        .unwrap_or_else(|| pushgate_client::c2dm::DEFAULT_ENDPOINT.to_string());
    let http = http_for(path, c, Some(endpoint.clone()))?;
    let (key, login) = match (&c.email, &c.password, &c.auth_token) {
        (Some(email), Some(password), None) => (
            load(path, password, "password", false)?,
            Some((email.clone(), c.login_url.clone())),
        ),
        (None, None, Some(token)) => (load(path, token, "auth_token", false)?, None),
        _ => {
            return Err(err(
                path,
                "a c2dm channel needs either email and password, or auth_token",
            ));
        }
    };
    Ok(Resolved {
        credential: key,
        endpoint,
        settings: ChannelSettings::C2dm { http, login },
        default_in_flight: 4,
    })
}
