use super::plan::plan;
use super::redact_values;
use crate::config::{ConfigFile, GatewaySpec};

fn spec(toml: &str) -> GatewaySpec {
    ConfigFile::from_toml(toml).unwrap().resolve().unwrap()
}

const BASE: &str = r#"
listen = "127.0.0.1:9000"
[apps.a]
default = true
api_keys = ["key-a-0123456789abcdef"]
[apps.a.channels.fcm]
kind = "legacy"
api_key = "cred-one"
endpoint = "http://127.0.0.1:1/gcm/send"
[apps.b]
api_keys = ["key-b-0123456789abcdef", "key-b2-0123456789abcdef"]
[apps.b.channels.fcm]
kind = "legacy"
api_key = "cred-two"
endpoint = "http://127.0.0.1:1/gcm/send"
"#;

#[test]
fn the_same_configuration_changes_nothing() {
    let p = plan(&spec(BASE), &spec(BASE));
    assert!(p.is_empty(), "{p:?}");
    assert!(p.needs_restart.is_empty(), "{p:?}");
    assert_eq!(p.keys_changed, 0);
}

const CHANGED: &str = r#"
listen = "127.0.0.1:9001"
[apps.a]
default = true
default_channel = "fcm"
api_keys = ["key-a-0123456789abcdef"]
[apps.a.channels.fcm]
kind = "legacy"
api_key = "cred-one"
endpoint = "http://127.0.0.1:1/gcm/send"
[apps.a.channels.extra]
kind = "legacy"
api_key = "e"
endpoint = "http://127.0.0.1:1/gcm/send"
[apps.b]
api_keys = ["key-b-0123456789abcdef"]
[apps.b.channels.fcm]
kind = "legacy"
api_key = "cred-three"
endpoint = "http://127.0.0.1:1/gcm/send"
[apps.c]
api_keys = ["key-c-0123456789abcdef"]
[apps.c.channels.x]
kind = "legacy"
api_key = "c"
endpoint = "http://127.0.0.1:1/gcm/send"
"#;

#[test]
fn added_removed_and_changed_apps_channels_and_keys_are_told_apart() {
    let p = plan(&spec(BASE), &spec(CHANGED));
    assert_eq!(p.apps_added, ["c"]);
    assert!(p.apps_removed.is_empty());
    assert_eq!(p.apps_changed, ["a", "b"]);
    assert_eq!(
        p.channels_added,
        [
            ("a".to_string(), "extra".to_string()),
            ("c".into(), "x".into())
        ]
    );
    // Only the credential differs: the channel is restarted.
    assert_eq!(p.channels_changed, [("b".to_string(), "fcm".to_string())]);
    // key-b2 removed, key-c added.
    assert_eq!(p.keys_changed, 2);
    assert_eq!(p.needs_restart, ["listen"]);

    let mut without_b = spec(BASE);
    without_b.apps.retain(|a| a.name != "b");
    let p = plan(&spec(BASE), &without_b);
    assert_eq!(p.apps_removed, ["b"]);
    assert_eq!(p.channels_removed, [("b".to_string(), "fcm".to_string())]);
    assert_eq!(p.keys_changed, 2);
}

#[test]
fn quoted_values_in_errors_are_redacted() {
    let m = r#"invalid type: found string "sk-live-secret", expected a sequence for key "apps.a.api_keys""#;
    let r = redact_values(m);
    assert!(!r.contains("sk-live-secret"), "{r}");
    assert!(r.contains("apps.a.api_keys"), "{r}");
    assert_eq!(redact_values("no quotes"), "no quotes");
}
