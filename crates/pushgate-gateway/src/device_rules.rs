//! What a device registration may hold: the one set of rules the device API enforces and the
//! `pushgate devices import` command checks a whole file against before sending any of it.

use pushgate_proto::ValidationError;
use pushgate_proto::legacy::limits::is_valid_topic_name;

/// Most tags or topics per device.
pub const MAX_LABELS: usize = 100;
/// Longest tag, topic, user or app version, in characters (as JSON Schema counts them).
pub const MAX_LABEL_CHARS: usize = 256;
/// Longest device id, in characters.
pub const MAX_DEVICE_ID_CHARS: usize = 256;
/// Longest token, in characters.
pub const MAX_TOKEN_CHARS: usize = 4096;
/// Every field of a device body, in the order exports write them.
pub const DEVICE_FIELDS: &[&str] = &[
    "device_id",
    "token",
    "channel",
    "user",
    "tags",
    "topics",
    "app_version",
    "state",
];

/// A text field: 1 to `max` characters (Unicode scalar values, the unit of the OpenAPI
/// document's `maxLength`), no control characters.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Tags or topics (`topics`: each must be a topic name).
pub fn check_labels(field: &str, labels: &[String], topics: bool) -> Result<(), ValidationError> {
    if labels.len() > MAX_LABELS {
        return Err(ValidationError::new(
            field,
            format!("has {} entries, more than {MAX_LABELS}", labels.len()),
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        let f = format!("{field}[{i}]");
        check_text(&f, label, MAX_LABEL_CHARS)?;
        if topics && !is_valid_topic_name(label) {
            return Err(ValidationError::new(
                f,
                "is not a topic name ([a-zA-Z0-9-_.~%]+)",
            ));
        }
    }
    Ok(())
}

/// The channel a device names, among the app's.
pub fn check_channel(
    field: &str,
    channel: &str,
    channels: &[String],
) -> Result<(), ValidationError> {
    if channels.iter().any(|c| c == channel) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!(
                "the app has no channel {channel:?} (it has {})",
                channels.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_the_field_and_the_limit() {
        assert!(check_text("token", "t", MAX_TOKEN_CHARS).is_ok());
        assert_eq!(check_text("token", "", 5).unwrap_err().field, "token");
        assert!(
            check_text("user", "a\u{7}b", 10)
                .unwrap_err()
                .problem
                .contains("control")
        );
        let many: Vec<String> = (0..=MAX_LABELS).map(|i| i.to_string()).collect();
        assert_eq!(
            check_labels("tags", &many, false).unwrap_err().field,
            "tags"
        );
        let bad = vec!["ok".to_string(), "not ok".to_string()];
        assert_eq!(
            check_labels("topics", &bad, true).unwrap_err().field,
            "topics[1]"
        );
        assert!(check_labels("tags", &bad, false).is_ok());
        let chans = vec!["fcm".to_string()];
        assert!(check_channel("channel", "fcm", &chans).is_ok());
        assert!(
            check_channel("channel", "x", &chans)
                .unwrap_err()
                .problem
                .contains("fcm")
        );
    }
}
