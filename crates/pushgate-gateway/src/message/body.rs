//! The send request as the application writes it, read strictly: unknown fields, wrong types
//! and broken rules get a [`ValidationError`] naming the field by its path in the body.

use std::collections::BTreeMap;

use pushgate_proto::ValidationError;
use pushgate_proto::condition::Condition;
use pushgate_proto::legacy::limits::{MAX_TTL_SECONDS, is_reserved_data_key, is_valid_topic_name};
use pushgate_store::Targets;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::payload::{Notification, Payload, Priority};

/// Longest entry of a target list (`device_ids`, `tokens`, `users`, `tags`), in characters.
pub const MAX_TARGET_CHARS: usize = 4096;
/// Longest `collapse_key`, in characters.
pub const MAX_COLLAPSE_KEY_CHARS: usize = 1024;

/// `targets` of a send request: any of these, united (a device reached twice gets one copy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetsBody {
    /// Registered devices by id.
    #[serde(default)]
    pub device_ids: Vec<String>,
    /// Raw provider tokens.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Every device of these users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Every device with any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Every device subscribed to this topic (in the gateway's registry).
    #[serde(default)]
    pub topic: Option<String>,
    /// Every device whose subscriptions satisfy this condition.
    #[serde(default)]
    pub condition: Option<String>,
    /// Every device of the app.
    #[serde(default)]
    pub all: bool,
}

/// The whole body of `POST /v1/apps/{app}/messages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// Who receives it.
    #[serde(deserialize_with = "object")]
    pub targets: TargetsBody,
    /// Key-value data; values may be strings, numbers or booleans (sent as strings).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: BTreeMap<String, Value>,
    /// Display notification.
    #[serde(default, deserialize_with = "optional_object")]
    pub notification: Option<Notification>,
    /// Collapse key.
    #[serde(default)]
    pub collapse_key: Option<String>,
    /// Time to live in seconds (0 to 2419200; default from the configuration).
    #[serde(default, deserialize_with = "integral")]
    pub ttl: Option<u64>,
    /// `high` or `normal`.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Hold while the device is idle (legacy, C2DM).
    #[serde(default)]
    pub delay_while_idle: bool,
    /// Have the provider validate without delivering.
    #[serde(default)]
    pub dry_run: bool,
    /// Send over this channel of the app, whatever the devices' own channels.
    #[serde(default)]
    pub channel: Option<String>,
}

/// Reads a nested struct from a JSON object only: serde's derived structs also take an array
/// of their fields in order (`[null, null]`), which no client means and the OpenAPI document
/// does not allow. Errors inside keep their path (`notification.titel`).
fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct Obj<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Obj<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(Obj(std::marker::PhantomData))
}

/// [`object`], or null.
fn optional_object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    struct Opt<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Opt<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object or null")
        }
        fn visit_none<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            object(d).map(Some)
        }
    }
    d.deserialize_option(Opt(std::marker::PhantomData))
}

/// A non-negative integer written either way JSON allows: `60` or `60.0` (JSON Schema, and
/// so the OpenAPI document, counts both as the integer 60).
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        // Every integral f64 below 2^64 converts exactly.
        Some(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => {
            Ok(Some(f as u64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "{n} is not a non-negative integer"
        ))),
    }
}

/// A send request read and checked: what to store.
#[derive(Debug, Clone)]
pub struct ParsedSend {
    /// The body as read (for the idempotency digest).
    pub body: SendBody,
    /// Who receives it.
    pub targets: Targets,
    /// What they receive.
    pub payload: Payload,
}

/// Reads and checks a send body. `max_list` bounds each target list; `default_ttl` applies
/// when the body gives none.
pub fn parse_send_body(
    bytes: &[u8],
    max_list: usize,
    default_ttl: u32,
) -> Result<ParsedSend, ValidationError> {
    let body: SendBody = crate::strict_json::from_slice(bytes)?;
    let targets = check_targets(&body.targets, max_list)?;
    let payload = check_payload(&body, default_ttl)?;
    Ok(ParsedSend {
        body,
        targets,
        payload,
    })
}

fn check_list(name: &str, list: &[String], max: usize) -> Result<(), ValidationError> {
    if list.len() > max {
        return Err(ValidationError::new(
            format!("targets.{name}"),
            format!("has {} entries, more than the limit of {max}", list.len()),
        ));
    }
    if let Some(i) = list
        .iter()
        .position(|s| s.is_empty() || s.chars().count() > MAX_TARGET_CHARS)
    {
        return Err(ValidationError::new(
            format!("targets.{name}[{i}]"),
            format!("must be a non-empty string of at most {MAX_TARGET_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_targets(t: &TargetsBody, max: usize) -> Result<Targets, ValidationError> {
    check_list("device_ids", &t.device_ids, max)?;
    check_list("tokens", &t.tokens, max)?;
    check_list("users", &t.users, max)?;
    check_list("tags", &t.tags, max)?;
    if let Some(topic) = &t.topic {
        let name = topic.strip_prefix("/topics/").unwrap_or(topic);
        if !is_valid_topic_name(name) {
            return Err(ValidationError::new(
                "targets.topic",
                format!("{topic:?} is not a topic name ([a-zA-Z0-9-_.~%]+)"),
            ));
        }
    }
    let condition = match &t.condition {
        None => None,
        Some(text) => Some(Condition::parse(text).map_err(|e| {
            ValidationError::new("targets.condition", format!("{}: {}", e.field, e.problem))
        })?),
    };
    let targets = Targets {
        device_ids: t.device_ids.clone(),
        tokens: t.tokens.clone(),
        users: t.users.clone(),
        tags: t.tags.clone(),
        topic: t
            .topic
            .as_ref()
            .map(|s| s.strip_prefix("/topics/").unwrap_or(s).to_string()),
        condition,
        all: t.all,
    };
    let any = targets.all
        || !targets.device_ids.is_empty()
        || !targets.tokens.is_empty()
        || !targets.users.is_empty()
        || !targets.tags.is_empty()
        || targets.topic.is_some()
        || targets.condition.is_some();
    if !any {
        return Err(ValidationError::new(
            "targets",
            "name at least one of device_ids, tokens, users, tags, topic, condition or all: true",
        ));
    }
    Ok(targets)
}

fn check_payload(body: &SendBody, default_ttl: u32) -> Result<Payload, ValidationError> {
    let mut data = BTreeMap::new();
    for (key, value) in &body.data {
        let field = format!("data.{key}");
        if key.is_empty() {
            return Err(ValidationError::new("data", "keys must not be empty"));
        }
        if is_reserved_data_key(key) {
            return Err(ValidationError::new(
                field,
                "is a reserved key (from, message_type, google*, gcm*)",
            ));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ValidationError::new(
                    field,
                    "must be a string, a number or a boolean",
                ));
            }
        };
        data.insert(key.clone(), text);
    }
    let ttl_secs = match body.ttl {
        None => default_ttl,
        Some(t) if t <= u64::from(MAX_TTL_SECONDS) => t as u32,
        Some(t) => {
            return Err(ValidationError::new(
                "ttl",
                format!("{t} is more than the maximum of {MAX_TTL_SECONDS} seconds (28 days)"),
            ));
        }
    };
    if let Some(key) = &body.collapse_key
        && (key.is_empty() || key.chars().count() > MAX_COLLAPSE_KEY_CHARS)
    {
        return Err(ValidationError::new(
            "collapse_key",
            format!("must be a non-empty string of at most {MAX_COLLAPSE_KEY_CHARS} characters"),
        ));
    }
    let notification = body.notification.clone().filter(|n| !n.is_empty());
    Ok(Payload {
        data,
        notification,
        collapse_key: body.collapse_key.clone(),
        priority: body.priority,
        ttl_secs,
        delay_while_idle: body.delay_while_idle,
        dry_run: body.dry_run,
    })
}

/// A digest of what a request asks for, to tell a retried request from a reused
/// `Idempotency-Key`.
pub fn request_digest(body: &SendBody) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ParsedSend, ValidationError> {
        parse_send_body(text.as_bytes(), 3, 600)
    }

    fn field_of(text: &str) -> String {
        parse(text).unwrap_err().field
    }

    #[test]
    fn nested_objects_are_objects_not_arrays() {
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"notification":[null,null]}"#),
            "notification"
        );
        assert_eq!(field_of(r#"{"targets":[["a"]]}"#), "targets");
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"notification":{"titel":"x"}}"#),
            "notification.titel"
        );
        let p = parse(r#"{"targets":{"all":true},"notification":null}"#).unwrap();
        assert!(p.payload.notification.is_none());
        let p = parse(r#"{"targets":{"all":true},"notification":{"title":"T"}}"#).unwrap();
        assert_eq!(p.payload.notification.unwrap().title.as_deref(), Some("T"));
    }

    #[test]
    fn ttl_is_an_integer_written_with_or_without_a_fraction_of_zero() {
        let ttl = |t: &str| {
            parse(&format!(r#"{{"targets":{{"all":true}},"ttl":{t}}}"#)).map(|p| p.payload.ttl_secs)
        };
        assert_eq!(ttl("60").unwrap(), 60);
        assert_eq!(ttl("60.0").unwrap(), 60);
        assert_eq!(ttl("6e1").unwrap(), 60);
        assert_eq!(ttl("null").unwrap(), 600);
        for bad in ["60.5", "-1", "-1.0", "\"60\"", "1e30"] {
            assert_eq!(ttl(bad).unwrap_err().field, "ttl", "{bad}");
        }
    }

    #[test]
    fn a_full_body_reads_into_targets_and_payload() {
        let p = parse(
            r#"{"targets":{"tags":["a"],"topic":"/topics/news","condition":"'x' in topics"},
                "data":{"n":4,"b":true,"s":"x"},"notification":{"title":"T"},
                "collapse_key":"c","ttl":60,"priority":"high","delay_while_idle":true}"#,
        )
        .unwrap();
        assert_eq!(p.targets.tags, ["a"]);
        assert_eq!(p.targets.topic.as_deref(), Some("news"));
        assert!(p.targets.condition.is_some());
        assert_eq!(p.payload.data["n"], "4");
        assert_eq!(p.payload.data["b"], "true");
        assert_eq!(p.payload.ttl_secs, 60);
        assert_eq!(p.payload.priority, Some(Priority::High));
        assert_eq!(
            p.payload.notification.as_ref().unwrap().title.as_deref(),
            Some("T")
        );
        let round = Payload::from_json(&p.payload.to_json()).unwrap();
        assert_eq!(round, p.payload);
        // No TTL: the default.
        assert_eq!(
            parse(r#"{"targets":{"all":true}}"#)
                .unwrap()
                .payload
                .ttl_secs,
            600
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"colapse_key":"x"}"#),
            "colapse_key"
        );
        assert_eq!(field_of(r#"{"targets":{"user":["u"]}}"#), "targets.user");
        assert_eq!(field_of(r#"{"targets":{"all":true},"ttl":"x"}"#), "ttl");
        assert_eq!(field_of(r#"{"targets":{"all":true},"ttl":2419201}"#), "ttl");
        assert_eq!(field_of(r#"{"targets":{}}"#), "targets");
        assert_eq!(
            field_of(r#"{"targets":{"tokens":["a","b","c","d"]}}"#),
            "targets.tokens"
        );
        assert_eq!(
            field_of(r#"{"targets":{"tokens":["a",""]}}"#),
            "targets.tokens[1]"
        );
        assert_eq!(
            field_of(r#"{"targets":{"topic":"bad name"}}"#),
            "targets.topic"
        );
        assert_eq!(
            field_of(r#"{"targets":{"condition":"'a' in topics &&"}}"#),
            "targets.condition"
        );
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"data":{"from":"x"}}"#),
            "data.from"
        );
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"data":{"k":{"n":1}}}"#),
            "data.k"
        );
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"priority":"urgent"}"#),
            "priority"
        );
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"notification":{"titel":"x"}}"#),
            "notification.titel"
        );
        assert_eq!(
            field_of(r#"{"targets":{"all":true},"collapse_key":""}"#),
            "collapse_key"
        );
        assert_eq!(field_of(r#"[1,2]"#), "body");
        assert_eq!(field_of(r#"{"targets":{"all":true}"#), "body");
        let unknown = parse(r#"{"targets":{"all":true},"colapse_key":"x"}"#).unwrap_err();
        assert!(
            unknown.problem.contains("colapse_key"),
            "{}",
            unknown.problem
        );
    }

    #[test]
    fn digests_tell_requests_apart() {
        let a = parse(r#"{"targets":{"all":true},"data":{"a":"1"}}"#).unwrap();
        let b = parse(r#"{"data":{"a":"1"},"targets":{"all":true}}"#).unwrap();
        let c = parse(r#"{"targets":{"all":true},"data":{"a":"2"}}"#).unwrap();
        assert_eq!(request_digest(&a.body), request_digest(&b.body));
        assert_ne!(request_digest(&a.body), request_digest(&c.body));
    }
}
