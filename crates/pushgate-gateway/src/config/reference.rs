//! The configuration reference (`docs/configuration.md`), generated from the configuration
//! types themselves: every key from the structs `pushgate.toml` is read into, its meaning from
//! their doc comments, its default from the values the resolver fills in, and its environment
//! variable from the rule [`ConfigFile::load`] applies. A test compares the committed file with
//! this output, so the reference cannot drift from the code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use utoipa::{PartialSchema, ToSchema};

use super::file::LegacyFormat;
use super::file::{ConfigFile, ENV_KEYS};
use super::resolve::{DEFAULT_DATABASE, DEFAULT_LISTEN, WEBHOOK_BATCH, WEBHOOK_TIMEOUT};
use super::resolve_channel::{CCS_CONNECTIONS, CCS_HOST, CCS_WINDOW};
use super::retention::RetentionSettings;
use super::spec::{ApiLimits, DeliverySettings, StorageSettings};
use crate::http_server::ServerSettings;

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// Dotted path, with `<app>` and `<channel>` for names chosen by the operator.
    pub key: String,
    /// What it holds: `string`, `integer`, `duration`, one of some words, a list.
    pub kind: String,
    /// The default the resolver fills in, when it is a fixed value.
    pub default: Option<String>,
    /// The variable that overrides it, when the environment may.
    pub env: Option<String>,
    /// The doc comment of its field.
    pub description: String,
}

/// The defaults of the keys whose default is one fixed value, read off the same `Default`
/// implementations the resolver falls back to.
fn defaults() -> BTreeMap<&'static str, String> {
    let storage = StorageSettings::default();
    let delivery = DeliverySettings::default();
    let limits = ApiLimits::default();
    let server = ServerSettings::default();
    let retention = RetentionSettings::default();
    let d = |v: std::time::Duration| humantime::format_duration(v).to_string();
    let keep = super::retention::limit_words;
    BTreeMap::from([
        ("listen", DEFAULT_LISTEN.to_string()),
        ("database", DEFAULT_DATABASE.to_string()),
        ("storage.busy_timeout", d(storage.busy_timeout)),
        (
            "storage.durable_commits",
            storage.durable_commits.to_string(),
        ),
        (
            "storage.pool_max_connections",
            storage.pool_max_connections.to_string(),
        ),
        (
            "storage.pool_acquire_timeout",
            d(storage.pool_acquire_timeout),
        ),
        ("storage.fanout_chunk", storage.fanout_chunk.to_string()),
        ("delivery.lease", d(delivery.lease)),
        ("delivery.claim_batch", delivery.claim_batch.to_string()),
        ("delivery.idle_poll", d(delivery.idle_poll)),
        ("delivery.retry_initial", d(delivery.retry_initial)),
        ("delivery.retry_max", d(delivery.retry_max)),
        ("delivery.default_ttl", d(delivery.default_ttl)),
        ("delivery.shutdown_grace", d(delivery.shutdown_grace)),
        (
            "delivery.retry_auth_failures",
            delivery.retry_auth_failures.to_string(),
        ),
        ("limits.max_body_bytes", limits.max_body_bytes.to_string()),
        ("limits.max_target_list", limits.max_target_list.to_string()),
        (
            "limits.max_device_batch",
            limits.max_device_batch.to_string(),
        ),
        ("limits.body_read_timeout", d(limits.body_read_timeout)),
        ("limits.header_read_timeout", d(server.header_read_timeout)),
        ("retention.messages", keep(retention.default.messages)),
        ("retention.events", keep(retention.default.events)),
        (
            "retention.invalid_devices",
            keep(retention.default.invalid_devices),
        ),
        ("retention.batch", retention.batch.to_string()),
        ("retention.interval", d(retention.interval)),
        ("apps.<app>.default", "false".into()),
        ("apps.<app>.webhook.batch", WEBHOOK_BATCH.to_string()),
        ("apps.<app>.webhook.timeout", d(WEBHOOK_TIMEOUT)),
        ("apps.<app>.webhook.replay_existing", "false".into()),
        (
            "apps.<app>.channels.<channel>.base_url",
            pushgate_client::v1::DEFAULT_BASE_URL.into(),
        ),
        (
            "apps.<app>.channels.<channel>.endpoint",
            format!(
                "legacy: {}; c2dm: {}",
                pushgate_client::legacy::DEFAULT_ENDPOINT,
                pushgate_client::c2dm::DEFAULT_ENDPOINT
            ),
        ),
        (
            "apps.<app>.channels.<channel>.format",
            match LegacyFormat::default() {
                LegacyFormat::Json => "json".into(),
                LegacyFormat::PlainText => "plain_text".into(),
            },
        ),
        ("apps.<app>.channels.<channel>.host", CCS_HOST.into()),
        (
            "apps.<app>.channels.<channel>.window",
            CCS_WINDOW.to_string(),
        ),
        (
            "apps.<app>.channels.<channel>.connections",
            format!(
                "fcm_v1: {}; ccs: {CCS_CONNECTIONS}",
                pushgate_client::v1::DEFAULT_CONNECTIONS
            ),
        ),
        (
            "apps.<app>.channels.<channel>.http2_prior_knowledge",
            "false".into(),
        ),
        ("apps.<app>.channels.<channel>.echo", "false".into()),
        ("apps.<app>.channels.<channel>.receipts", "false".into()),
    ])
}

/// Every key of `pushgate.toml`, in file order of the types.
pub fn keys() -> Vec<KeyDoc> {
    let mut named = Vec::new();
    ConfigFile::schemas(&mut named);
    let mut schemas: BTreeMap<String, Value> = named
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    schemas.insert(
        ConfigFile::name().into_owned(),
        serde_json::to_value(ConfigFile::schema()).unwrap_or(Value::Null),
    );
    let defaults = defaults();
    let mut out = Vec::new();
    let root = ConfigFile::name();
    walk(&schemas, &schemas[root.as_ref()], &[], &defaults, &mut out);
    out
}

/// The name a `$ref` points at, looking through `Option`'s `oneOf [null, $ref]`.
fn reference(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next();
    }
    ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .find_map(reference)
}

/// A field's doc comment, looking through `Option`'s `oneOf`.
fn description(schema: &Value) -> Option<&str> {
    if let Some(text) = schema.get("description").and_then(Value::as_str) {
        return Some(text);
    }
    ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .find_map(description)
}

/// The map's value schema, when `schema` is a table of names (`apps`, `channels`).
fn map_values(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

/// What a leaf holds, in words.
fn kind(schemas: &BTreeMap<String, Value>, schema: &Value) -> String {
    if let Some(target) = reference(schema).and_then(|name| schemas.get(name)) {
        return kind(schemas, target);
    }
    if let Some(words) = schema.get("enum").and_then(Value::as_array) {
        let words: Vec<String> = words
            .iter()
            .filter_map(Value::as_str)
            .map(|w| format!("`{w}`"))
            .collect();
        return words.join(" \\| ");
    }
    match schema.get("format").and_then(Value::as_str) {
        Some("duration") => return "duration (`10s`, `5m`, `28days`)".into(),
        Some("duration_or_off") => return "duration (`12h`, `7d`) or `off`".into(),
        _ => {}
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.iter().find(|t| **t != "null") {
        Some(&"array") => format!(
            "list of {}",
            schema
                .get("items")
                .map_or_else(|| "values".to_string(), |items| kind(schemas, items))
        ),
        Some(t) => (*t).to_string(),
        None => "value".into(),
    }
}

/// Adds the keys under `schema` (an object) at `path`.
fn walk(
    schemas: &BTreeMap<String, Value>,
    schema: &Value,
    path: &[String],
    defaults: &BTreeMap<&'static str, String>,
    out: &mut Vec<KeyDoc>,
) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, field) in properties {
        let mut here = path.to_vec();
        here.push(name.clone());
        let description = description(field)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let key = here.join(".");
        let table = reference(field).and_then(|n| schemas.get(n));
        if let Some(values) = map_values(field) {
            let placeholder = match name.as_str() {
                "apps" => "<app>",
                "channels" => "<channel>",
                _ => "<name>",
            };
            let mut inner = here.clone();
            inner.push(placeholder.into());
            let target = reference(values)
                .and_then(|n| schemas.get(n))
                .unwrap_or(values);
            walk(schemas, target, &inner, defaults, out);
        } else if let Some(target) = table.filter(|t| t.get("properties").is_some()) {
            walk(schemas, target, &here, defaults, out);
        } else {
            let top = here[0].as_str();
            let env = ENV_KEYS.contains(&top).then(|| {
                let parts: Vec<String> = here.iter().map(|p| p.to_ascii_uppercase()).collect();
                format!("PUSHGATE_{}", parts.join("__"))
            });
            out.push(KeyDoc {
                default: defaults.get(key.as_str()).cloned(),
                kind: kind(schemas, field),
                key,
                env,
                description,
            });
        }
    }
}

/// `docs/configuration.md`.
pub fn markdown() -> String {
    let mut text = String::from(
        "# Configuration reference\n\n\
         Generated from the configuration types by `pushgate config reference`; \
         do not edit by hand (a test fails when this file and the code disagree).\n\n\
         `pushgate serve --config pushgate.toml` reads this file; every key can also be set by \
         the environment variable shown, which wins over the file (`<APP>` and `<CHANNEL>` \
         are the names you chose, in capitals). Secrets (`admin_keys`, `api_keys`, `api_key`, `secret`, \
         `password`, `auth_token`, `metrics_token`) are references: `env:NAME`, `file:PATH`, \
         or the value inline. Durations are written like `10s`, `5m`, `2h`, `28days`. \
         An unknown key is an error at start.\n\n",
    );
    let mut sections: BTreeMap<(bool, String), Vec<KeyDoc>> = BTreeMap::new();
    for key in keys() {
        let head = section_of(&key.key);
        sections
            .entry((head.is_some(), head.unwrap_or_default()))
            .or_default()
            .push(key);
    }
    for ((_, head), keys) in sections {
        let title = if head.is_empty() {
            "Top level".to_string()
        } else {
            format!("`[{head}]`")
        };
        let _ = write!(
            text,
            "\n## {title}\n\n| key | type | default | environment | meaning |\n|---|---|---|---|---|\n"
        );
        for key in keys {
            let _ = writeln!(
                text,
                "| `{}` | {} | {} | {} | {} |",
                key.key,
                key.kind,
                key.default
                    .as_deref()
                    .map_or_else(|| "—".to_string(), |d| format!("`{d}`")),
                key.env
                    .as_deref()
                    .map_or_else(|| "—".to_string(), |e| format!("`{e}`")),
                key.description.replace('|', "\\|"),
            );
        }
    }
    text
}

/// The table a key is listed under (`None`: the top level).
fn section_of(key: &str) -> Option<String> {
    key.rsplit_once('.').map(|(table, _)| table.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_reaches_every_top_level_key_and_names_no_other() {
        let keys = keys();
        let tops: std::collections::BTreeSet<&str> = keys
            .iter()
            .map(|k| k.key.split('.').next().unwrap_or_default())
            .collect();
        for top in &tops {
            assert!(
                ENV_KEYS.contains(top),
                "`{top}` cannot be set from the environment: add it to ENV_KEYS"
            );
        }
        for name in ENV_KEYS {
            assert!(
                tops.contains(name),
                "ENV_KEYS names `{name}`, which is no key"
            );
        }
        assert!(keys.iter().all(|k| k.env.is_some()));
    }

    #[test]
    fn every_listed_default_belongs_to_a_key() {
        let keys = keys();
        for name in defaults().keys() {
            assert!(
                keys.iter().any(|k| k.key == *name),
                "a default is listed for `{name}`, which is no key"
            );
        }
    }

    #[test]
    fn every_key_is_described() {
        for key in keys() {
            assert!(
                !key.description.is_empty(),
                "`{}` has no doc comment to show",
                key.key
            );
        }
    }
}
