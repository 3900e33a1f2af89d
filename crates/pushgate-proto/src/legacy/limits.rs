//! The limits the legacy service enforced, in one place for client, emulator and gateway.

use serde_json::{Map, Value};

/// Most registration ids one multicast request may carry.
pub const MAX_REGISTRATION_IDS: usize = 1000;
/// Most bytes of `data` (keys plus values) for a message to tokens.
pub const MAX_DATA_BYTES: usize = 4096;
/// Most bytes of `data` for a message to a topic or a condition.
pub const MAX_TOPIC_DATA_BYTES: usize = 2048;
/// Largest `time_to_live`, in seconds (four weeks); also the default.
pub const MAX_TTL_SECONDS: u32 = 2_419_200;
/// Prefix that marks a `to` value as a topic.
pub const TOPIC_PREFIX: &str = "/topics/";

/// True when `key` may not be used in `data` (the service answers `InvalidDataKey`).
///
/// Reserved: `from`, `message_type`, and anything starting with `google` or `gcm`.
pub fn is_reserved_data_key(key: &str) -> bool {
    key == "from" || key == "message_type" || key.starts_with("google") || key.starts_with("gcm")
}

/// A `data` value as the device receives it: strings as they are, anything else as JSON text
/// (GCM converted non-string values to strings on the server).
pub fn data_value_as_delivered(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The size of a `data` object as the service counts it: UTF-8 bytes of every key plus every
/// value as delivered.
pub fn data_payload_bytes(data: &Map<String, Value>) -> usize {
    data.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    Value::String(s) => s.len(),
                    other => other.to_string().len(),
                }
        })
        .sum()
}

/// True when `name` (without the `/topics/` prefix) is a valid topic name:
/// `[a-zA-Z0-9-_.~%]+`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_keys_and_values_in_utf8_bytes() {
        let data = json!({"k": "v", "é": "ü", "n": 12})
            .as_object()
            .unwrap()
            .clone();
        // k+v = 2, é+ü = 4, n + "12" = 3
        assert_eq!(data_payload_bytes(&data), 9);
    }

    #[test]
    fn reserved_keys() {
        for k in [
            "from",
            "message_type",
            "google.x",
            "google",
            "gcm.notification.x",
            "gcm",
        ] {
            assert!(is_reserved_data_key(k), "{k}");
        }
        for k in ["fromage", "collapse_key", "x.google", "message"] {
            assert!(!is_reserved_data_key(k), "{k}");
        }
    }

    #[test]
    fn topic_names() {
        assert!(is_valid_topic_name("news-2024_a.b~c%20"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name("a b"));
        assert!(!is_valid_topic_name("a/b"));
    }
}
