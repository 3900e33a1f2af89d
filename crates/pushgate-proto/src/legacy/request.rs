//! The JSON request body of `/gcm/send` and `/fcm/send`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::{
    MAX_DATA_BYTES, MAX_REGISTRATION_IDS, MAX_TOPIC_DATA_BYTES, MAX_TTL_SECONDS, TOPIC_PREFIX,
    data_payload_bytes, is_reserved_data_key, is_valid_topic_name,
};
use crate::ValidationError;

/// Message priority (`normal` or `high`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Default for data messages.
    Normal,
    /// Wakes a sleeping device.
    High,
}

/// Options shared by the JSON and plain-text forms (docs/protocols.md,
/// "Legacy HTTP: request fields").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageOptions {
    /// Only the newest pending message with this key is delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
    /// `normal` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// iOS: set `content-available`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_available: Option<bool>,
    /// iOS 10+: set `mutable-content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutable_content: Option<bool>,
    /// Hold the message until the device is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_while_idle: Option<bool>,
    /// Seconds the message may wait for the device, 0..=2419200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u32>,
    /// Deliver only to tokens of this Android package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_package_name: Option<String>,
    /// Validate without delivering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

impl MessageOptions {
    /// Checks the option limits (TTL range).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(ttl) = self.time_to_live
            && ttl > MAX_TTL_SECONDS
        {
            return Err(ValidationError::new(
                "time_to_live",
                format!("{ttl} is out of range: must be between 0 and {MAX_TTL_SECONDS} seconds"),
            ));
        }
        Ok(())
    }
}

/// The display notification of a legacy message (docs/protocols.md,
/// "Legacy HTTP: notification object").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Android O notification channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android_channel_id: Option<String>,
    /// Drawable name (Android) or URL (web).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Sound file name or `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// iOS badge count (a string, as gcm-server sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<String>,
    /// Replaces an earlier notification with the same tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Intent action, APNs category or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_action: Option<String>,
    /// iOS subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// Localised body key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_loc_key: Option<String>,
    /// Arguments of the localised body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_loc_args: Option<Vec<String>>,
    /// Localised title key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_loc_key: Option<String>,
    /// Arguments of the localised title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_loc_args: Option<Vec<String>>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Keys this type does not name, passed through untouched.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Where a JSON request goes, as the service resolves its target fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// `to` with one registration token or a device-group notification key (the wire cannot
    /// tell them apart; the server can).
    To(&'a str),
    /// `registration_ids`: 1..=1000 tokens, results in the same order.
    RegistrationIds(&'a [String]),
    /// `to: "/topics/<name>"`; holds the bare name.
    Topic(&'a str),
    /// `condition`: a boolean expression over topics.
    Condition(&'a str),
    /// `notification_key` (the GCM 2014 device-group field).
    NotificationKey(&'a str),
}

/// The JSON body of a legacy send (docs/protocols.md, "Legacy HTTP: request fields").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonRequest {
    /// One token, a notification key, or `/topics/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// 1..=1000 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_ids: Option<Vec<String>>,
    /// Condition over topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Device-group key (2014 form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_key: Option<String>,
    /// Delivery options.
    #[serde(flatten)]
    pub options: MessageOptions,
    /// Custom key/value payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Display notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

impl JsonRequest {
    /// Resolves the target fields; exactly one must be present.
    pub fn target(&self) -> Result<Target<'_>, ValidationError> {
        let given: Vec<&str> = [
            ("to", self.to.is_some()),
            ("registration_ids", self.registration_ids.is_some()),
            ("condition", self.condition.is_some()),
            ("notification_key", self.notification_key.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| name)
        .collect();
        match given.as_slice() {
            [] => Err(ValidationError::new(
                "to",
                "no recipient: give one of to, registration_ids, condition or notification_key",
            )),
            [_] => Ok(self.single_target()),
            many => Err(ValidationError::new(
                many[1],
                format!(
                    "must use exactly one target field, not {}",
                    many.join(" and ")
                ),
            )),
        }
    }

    fn single_target(&self) -> Target<'_> {
        if let Some(to) = &self.to {
            match to.strip_prefix(TOPIC_PREFIX) {
                Some(topic) => Target::Topic(topic),
                None => Target::To(to),
            }
        } else if let Some(ids) = &self.registration_ids {
            Target::RegistrationIds(ids)
        } else if let Some(condition) = &self.condition {
            Target::Condition(condition)
        } else {
            Target::NotificationKey(self.notification_key.as_deref().unwrap_or_default())
        }
    }

    /// Checks every rule the service checks, naming the field and the limit: one target,
    /// 1..=1000 ids, non-empty tokens, topic name charset, TTL range, reserved data keys,
    /// and the data size (4096 bytes, 2048 for topics and conditions).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let target = self.target()?;
        let data_limit = match target {
            Target::RegistrationIds(ids) => {
                if ids.is_empty() {
                    return Err(ValidationError::new(
                        "registration_ids",
                        "must hold at least 1 token",
                    ));
                }
                if ids.len() > MAX_REGISTRATION_IDS {
                    return Err(ValidationError::new(
                        "registration_ids",
                        format!(
                            "{} tokens exceed the maximum of {MAX_REGISTRATION_IDS} per request",
                            ids.len()
                        ),
                    ));
                }
                if let Some(i) = ids.iter().position(|t| t.is_empty()) {
                    return Err(ValidationError::new(
                        format!("registration_ids[{i}]"),
                        "must not be empty",
                    ));
                }
                MAX_DATA_BYTES
            }
            Target::To(token) | Target::NotificationKey(token) => {
                if token.is_empty() {
                    return Err(ValidationError::new("to", "must not be empty"));
                }
                MAX_DATA_BYTES
            }
            Target::Topic(name) => {
                if !is_valid_topic_name(name) {
                    return Err(ValidationError::new(
                        "to",
                        format!("topic name {name:?} must match [a-zA-Z0-9-_.~%]+"),
                    ));
                }
                MAX_TOPIC_DATA_BYTES
            }
            Target::Condition(condition) => {
                crate::condition::Condition::parse(condition)?;
                MAX_TOPIC_DATA_BYTES
            }
        };
        self.options.validate()?;
        if let Some(data) = &self.data {
            validate_data(data, data_limit)?;
        }
        Ok(())
    }
}

/// Checks a `data` object: no reserved key, at most `limit` bytes as the service counts them.
pub(crate) fn validate_data(
    data: &Map<String, Value>,
    limit: usize,
) -> Result<(), ValidationError> {
    if let Some(key) = data.keys().find(|k| is_reserved_data_key(k)) {
        return Err(ValidationError::new(
            format!("data.{key}"),
            "is a reserved key (from, message_type, google*, gcm*)",
        ));
    }
    let size = data_payload_bytes(data);
    if size > limit {
        return Err(ValidationError::new(
            "data",
            format!("payload is {size} bytes, over the limit of {limit} bytes (keys plus values)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> JsonRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reads_the_documented_example() {
        let r = request(json!({
            "registration_ids": ["a", "b"],
            "collapse_key": "score_update", "time_to_live": 108, "delay_while_idle": true,
            "data": {"score": "4x8", "time": "15:16.2342"}
        }));
        assert_eq!(r.options.time_to_live, Some(108));
        assert_eq!(r.options.collapse_key.as_deref(), Some("score_update"));
        assert_eq!(
            r.target().unwrap(),
            Target::RegistrationIds(&["a".into(), "b".into()])
        );
        r.validate().unwrap();
    }

    #[test]
    fn exactly_one_target() {
        let none = request(json!({"data": {}}));
        assert_eq!(none.validate().unwrap_err().field, "to");
        let both = request(json!({"to": "a", "registration_ids": ["b"]}));
        let err = both.validate().unwrap_err();
        assert_eq!(err.field, "registration_ids");
        assert!(err.problem.contains("to and registration_ids"), "{err}");
        assert_eq!(
            request(json!({"to": "/topics/news"})).target().unwrap(),
            Target::Topic("news")
        );
    }

    #[test]
    fn thousand_ids_pass_and_one_more_fails() {
        let ids: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        let ok = request(json!({"registration_ids": &ids[..1000]}));
        ok.validate().unwrap();
        let err = request(json!({"registration_ids": ids}))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "registration_ids");
        assert!(
            err.problem.contains("1001") && err.problem.contains("1000"),
            "{err}"
        );
    }

    #[test]
    fn ttl_limit_named() {
        let err = request(json!({"to": "a", "time_to_live": 2_419_201}))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "time_to_live");
        assert!(err.problem.contains("2419200"));
        request(json!({"to": "a", "time_to_live": 2_419_200}))
            .validate()
            .unwrap();
    }

    #[test]
    fn payload_limit_at_exactly_4096_and_2048() {
        let fits = "x".repeat(4096 - 1);
        request(json!({"to": "a", "data": {"k": fits}}))
            .validate()
            .unwrap();
        let over = "x".repeat(4096);
        let err = request(json!({"to": "a", "data": {"k": over}}))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "data");
        assert!(
            err.problem.contains("4097") && err.problem.contains("4096"),
            "{err}"
        );
        let topic_over = "x".repeat(2048);
        let err = request(json!({"to": "/topics/a", "data": {"k": topic_over}}))
            .validate()
            .unwrap_err();
        assert!(err.problem.contains("2048"), "{err}");
    }

    #[test]
    fn reserved_key_named() {
        let err = request(json!({"to": "a", "data": {"google.sent": "x"}}))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "data.google.sent");
    }

    #[test]
    fn unknown_notification_keys_pass_through() {
        let r = request(json!({"to": "a", "notification": {"title": "t", "x_custom": 1}}));
        let n = r.notification.clone().unwrap();
        assert_eq!(n.title.as_deref(), Some("t"));
        assert_eq!(n.other.get("x_custom"), Some(&json!(1)));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["notification"]["x_custom"], json!(1));
    }
}
