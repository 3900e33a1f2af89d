//! The checks the v1 service runs on a message before it accepts it.

use std::collections::BTreeMap;

use super::Message;
use crate::ValidationError;
use crate::legacy::limits::{
    MAX_DATA_BYTES, MAX_TOPIC_DATA_BYTES, MAX_TTL_SECONDS, TOPIC_PREFIX, is_reserved_data_key,
    is_valid_topic_name,
};

const NOTIFICATION_PRIORITIES: [&str; 6] = [
    "PRIORITY_UNSPECIFIED",
    "PRIORITY_MIN",
    "PRIORITY_LOW",
    "PRIORITY_DEFAULT",
    "PRIORITY_HIGH",
    "PRIORITY_MAX",
];
const VISIBILITIES: [&str; 4] = ["VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"];
const PROXIES: [&str; 4] = ["PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"];

/// `^[a-zA-Z0-9-_.~%]{1,50}$`, as the Admin SDKs enforce for analytics labels.
fn is_valid_analytics_label(label: &str) -> bool {
    (1..=50).contains(&label.len()) && is_valid_topic_name(label)
}

fn is_hex_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_data(
    field: &str,
    data: &BTreeMap<String, String>,
    limit: usize,
) -> Result<(), ValidationError> {
    if let Some(key) = data.keys().find(|k| is_reserved_data_key(k)) {
        return Err(ValidationError::new(
            format!("{field}.{key}"),
            "is a reserved key (from, message_type, google*, gcm*)",
        ));
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > limit {
        return Err(ValidationError::new(
            field,
            format!("payload is {size} bytes, over the limit of {limit} bytes (keys plus values)"),
        ));
    }
    Ok(())
}

fn check_label(field: &str, label: &Option<String>) -> Result<(), ValidationError> {
    match label {
        Some(l) if !is_valid_analytics_label(l) => Err(ValidationError::new(
            field,
            format!("{l:?} must match ^[a-zA-Z0-9-_.~%]{{1,50}}$"),
        )),
        _ => Ok(()),
    }
}

fn check_enum(
    field: &str,
    value: &Option<String>,
    allowed: &[&str],
) -> Result<(), ValidationError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ValidationError::new(
            field,
            format!("{v:?} is not one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

impl Message {
    /// Checks every rule the service checks, naming the field (`message.android.ttl`) and the
    /// limit: exactly one target, topic charset, reserved data keys, data size (4096 bytes,
    /// 2048 for topics and conditions), TTL ≤ 4 weeks, colours, enums, analytics labels,
    /// HTTPS links.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let targets = [
            self.token.is_some(),
            self.topic.is_some(),
            self.condition.is_some(),
        ]
        .iter()
        .filter(|t| **t)
        .count();
        if targets == 0 {
            return Err(ValidationError::new(
                "message",
                "Recipient of the message is not set: give one of token, topic or condition",
            ));
        }
        if targets > 1 {
            return Err(ValidationError::new(
                "message",
                "give exactly one of token, topic or condition",
            ));
        }
        let mut data_limit = MAX_DATA_BYTES;
        if let Some(token) = &self.token
            && token.is_empty()
        {
            return Err(ValidationError::new("message.token", "must not be empty"));
        }
        if let Some(topic) = &self.topic {
            if topic.starts_with(TOPIC_PREFIX) || !is_valid_topic_name(topic) {
                return Err(ValidationError::new(
                    "message.topic",
                    format!("{topic:?} must be a bare topic name matching [a-zA-Z0-9-_.~%]+"),
                ));
            }
            data_limit = MAX_TOPIC_DATA_BYTES;
        }
        if let Some(condition) = &self.condition {
            crate::condition::Condition::parse(condition).map_err(|e| ValidationError {
                field: "message.condition".into(),
                problem: e.problem,
            })?;
            data_limit = MAX_TOPIC_DATA_BYTES;
        }
        if let Some(data) = &self.data {
            check_data("message.data", data, data_limit)?;
        }
        if let Some(options) = &self.fcm_options {
            check_label(
                "message.fcm_options.analytics_label",
                &options.analytics_label,
            )?;
        }
        if let Some(android) = &self.android {
            if let Some(ttl) = android.ttl
                && ttl.whole_seconds() > u64::from(MAX_TTL_SECONDS)
            {
                return Err(ValidationError::new(
                    "message.android.ttl",
                    format!("{ttl} is over the maximum of {MAX_TTL_SECONDS}s (4 weeks)"),
                ));
            }
            if let Some(data) = &android.data {
                check_data("message.android.data", data, data_limit)?;
            }
            if let Some(options) = &android.fcm_options {
                check_label(
                    "message.android.fcm_options.analytics_label",
                    &options.analytics_label,
                )?;
            }
            if let Some(n) = &android.notification {
                if let Some(color) = &n.color
                    && !is_hex_color(color)
                {
                    return Err(ValidationError::new(
                        "message.android.notification.color",
                        format!("{color:?} must be in the form #RRGGBB"),
                    ));
                }
                check_enum(
                    "message.android.notification.notification_priority",
                    &n.notification_priority,
                    &NOTIFICATION_PRIORITIES,
                )?;
                check_enum(
                    "message.android.notification.visibility",
                    &n.visibility,
                    &VISIBILITIES,
                )?;
                check_enum("message.android.notification.proxy", &n.proxy, &PROXIES)?;
                if let Some(light) = &n.light_settings {
                    let c = &light.color;
                    let channels = [Some(c.red), Some(c.green), Some(c.blue), c.alpha];
                    if channels.iter().flatten().any(|v| !(0.0..=1.0).contains(v)) {
                        return Err(ValidationError::new(
                            "message.android.notification.light_settings.color",
                            "colour channels must be between 0 and 1",
                        ));
                    }
                }
            }
        }
        if let Some(apns) = &self.apns
            && let Some(options) = &apns.fcm_options
        {
            check_label(
                "message.apns.fcm_options.analytics_label",
                &options.analytics_label,
            )?;
        }
        if let Some(webpush) = &self.webpush {
            if let Some(data) = &webpush.data {
                check_data("message.webpush.data", data, data_limit)?;
            }
            if let Some(options) = &webpush.fcm_options {
                check_label(
                    "message.webpush.fcm_options.analytics_label",
                    &options.analytics_label,
                )?;
                if let Some(link) = &options.link
                    && !link.starts_with("https://")
                {
                    return Err(ValidationError::new(
                        "message.webpush.fcm_options.link",
                        format!("{link:?} must be an HTTPS URL"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(value: serde_json::Value) -> Message {
        serde_json::from_value(value).unwrap()
    }

    fn field_of(value: serde_json::Value) -> String {
        message(value).validate().unwrap_err().field
    }

    #[test]
    fn exactly_one_target() {
        assert_eq!(field_of(json!({"data": {"a": "b"}})), "message");
        assert_eq!(field_of(json!({"token": "a", "topic": "b"})), "message");
        message(json!({"condition": "'a' in topics"}))
            .validate()
            .unwrap();
        assert_eq!(
            field_of(json!({"condition": "'a' in"})),
            "message.condition"
        );
    }

    #[test]
    fn topic_must_be_bare() {
        assert_eq!(field_of(json!({"topic": "/topics/news"})), "message.topic");
        assert_eq!(field_of(json!({"topic": "a b"})), "message.topic");
        message(json!({"topic": "news"})).validate().unwrap();
    }

    #[test]
    fn limits_name_their_field() {
        assert_eq!(
            field_of(json!({"token": "a", "data": {"from": "x"}})),
            "message.data.from"
        );
        assert_eq!(
            field_of(json!({"token": "a", "data": {"k": "x".repeat(4096)}})),
            "message.data"
        );
        message(json!({"token": "a", "data": {"k": "x".repeat(4095)}}))
            .validate()
            .unwrap();
        assert_eq!(
            field_of(json!({"topic": "t", "data": {"k": "x".repeat(2048)}})),
            "message.data"
        );
        assert_eq!(
            field_of(json!({"token": "a", "android": {"ttl": "2419201s"}})),
            "message.android.ttl"
        );
        message(json!({"token": "a", "android": {"ttl": "2419200s"}}))
            .validate()
            .unwrap();
        assert_eq!(
            field_of(json!({"token": "a", "android": {"notification": {"color": "red"}}})),
            "message.android.notification.color"
        );
        assert_eq!(
            field_of(json!({"token": "a", "android": {"notification": {"visibility": "LOUD"}}})),
            "message.android.notification.visibility"
        );
        assert_eq!(
            field_of(json!({"token": "a", "fcm_options": {"analytics_label": "no spaces"}})),
            "message.fcm_options.analytics_label"
        );
        assert_eq!(
            field_of(json!({"token": "a", "webpush": {"fcm_options": {"link": "http://x"}}})),
            "message.webpush.fcm_options.link"
        );
    }
}
