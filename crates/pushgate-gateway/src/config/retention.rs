//! `[retention]` and `[apps.NAME.retention]`: how long history is kept before the gateway's
//! retention task deletes it. Read as written ([`RetentionFile`], [`AppRetentionFile`]),
//! resolved into [`RetentionSettings`] (defaults filled in, every app's limits known).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use utoipa::ToSchema;

use super::file::{ConfigError, ConfigFile};
use super::resolve::err;

/// The word that switches one kind of retention off (keep forever).
pub const OFF: &str = "off";

/// A limit for people: whole days as `7d`, anything else as humantime writes it, `off` for
/// none (in the configuration reference and in API errors).
pub fn limit_words(limit: Option<Duration>) -> String {
    const DAY: u64 = 24 * 3600;
    match limit {
        None => OFF.into(),
        Some(d) if d.as_secs() >= DAY && d.as_secs() % DAY == 0 && d.subsec_nanos() == 0 => {
            format!("{}d", d.as_secs() / DAY)
        }
        Some(d) => humantime::format_duration(d).to_string(),
    }
}

/// One retention limit as written: a duration (`"7d"`) or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep(pub Option<Duration>);

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Words;
        impl Visitor<'_> for Words {
            type Value = Keep;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a duration such as \"7d\", or \"{OFF}\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Keep, E> {
                if v.trim().eq_ignore_ascii_case(OFF) {
                    return Ok(Keep(None));
                }
                let d = humantime::parse_duration(v.trim()).map_err(|e| {
                    E::custom(format!(
                        "{v:?} is neither a duration such as \"7d\" nor \"{OFF}\": {e}"
                    ))
                })?;
                if d.is_zero() {
                    return Err(E::custom(format!(
                        "must be more than 0s (\"{OFF}\" keeps history forever)"
                    )));
                }
                Ok(Keep(Some(d)))
            }
        }
        d.deserialize_str(Words)
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    /// Delete finished messages (every delivery sent, failed, expired or its token dead),
    /// with their deliveries, this long after they were accepted; `"off"` keeps them forever.
    #[schema(value_type = Option<String>, format = "duration_or_off")]
    pub messages: Option<Keep>,
    /// Delete events this long after they happened, but never one the app's webhook has not
    /// delivered yet; `"off"` keeps them forever.
    #[schema(value_type = Option<String>, format = "duration_or_off")]
    pub events: Option<Keep>,
    /// Delete devices (with their tags and topics) that have been `invalid` this long;
    /// `"off"` keeps them forever.
    #[schema(value_type = Option<String>, format = "duration_or_off")]
    pub invalid_devices: Option<Keep>,
    /// Most rows one cleanup transaction deletes from each table (1 to 10000).
    pub batch: Option<u32>,
    /// Time between cleanup passes; a pass deletes batch after batch until little is left.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, format = "duration")]
    pub interval: Option<Duration>,
}

/// `[apps.NAME.retention]`: this app's limits instead of `[retention]`'s.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppRetentionFile {
    /// This app's `retention.messages`.
    #[schema(value_type = Option<String>, format = "duration_or_off")]
    pub messages: Option<Keep>,
    /// This app's `retention.events`.
    #[schema(value_type = Option<String>, format = "duration_or_off")]
    pub events: Option<Keep>,
    /// This app's `retention.invalid_devices`.
    #[schema(value_type = Option<String>, format = "duration_or_off")]
    pub invalid_devices: Option<Keep>,
}

/// How long each kind of history is kept (`None`: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionLimits {
    /// Finished messages and their deliveries, from acceptance.
    pub messages: Option<Duration>,
    /// Events (once the webhook delivered them), from when they happened.
    pub events: Option<Duration>,
    /// Invalid devices, from when they became invalid.
    pub invalid_devices: Option<Duration>,
}

impl RetentionLimits {
    /// True when every kind is kept forever (nothing to purge).
    pub fn keeps_everything(&self) -> bool {
        self.messages.is_none() && self.events.is_none() && self.invalid_devices.is_none()
    }
}

/// Retention as resolved: the limits of every app, and how the cleanup runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// The limits of apps without their own.
    pub default: RetentionLimits,
    /// Apps with limits of their own (`[apps.NAME.retention]`), already merged with `default`.
    pub apps: BTreeMap<String, RetentionLimits>,
    /// Most rows one cleanup transaction deletes from each table.
    pub batch: u32,
    /// Time between cleanup passes.
    pub interval: Duration,
}

impl Default for RetentionSettings {
    /// Messages and events 7 days, invalid devices 90 days, 500 rows a batch, every minute.
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            default: RetentionLimits {
                messages: Some(Duration::from_secs(7 * DAY)),
                events: Some(Duration::from_secs(7 * DAY)),
                invalid_devices: Some(Duration::from_secs(90 * DAY)),
            },
            apps: BTreeMap::new(),
            batch: 500,
            interval: Duration::from_secs(60),
        }
    }
}

impl RetentionSettings {
    /// The limits of `app` (also of apps stored but no longer configured: the defaults).
    pub fn limits_for(&self, app: &str) -> RetentionLimits {
        self.apps.get(app).copied().unwrap_or(self.default)
    }
}

/// `[retention]` and every `[apps.NAME.retention]`, checked.
pub(super) fn retention(f: &ConfigFile) -> Result<RetentionSettings, ConfigError> {
    let d = RetentionSettings::default();
    let x = &f.retention;
    let pick = |v: Option<Keep>, default: Option<Duration>| v.map_or(default, |k| k.0);
    let default = RetentionLimits {
        messages: pick(x.messages, d.default.messages),
        events: pick(x.events, d.default.events),
        invalid_devices: pick(x.invalid_devices, d.default.invalid_devices),
    };
    let batch = x.batch.unwrap_or(d.batch);
    if !(1..=10_000).contains(&batch) {
        return Err(err("retention.batch", "must be between 1 and 10000"));
    }
    let interval = x.interval.unwrap_or(d.interval);
    if interval < Duration::from_secs(1) {
        return Err(err("retention.interval", "must be at least 1s"));
    }
    let apps = f
        .apps
        .iter()
        .filter_map(|(name, app)| app.retention.as_ref().map(|r| (name, r)))
        .map(|(name, r)| {
            let limits = RetentionLimits {
                messages: pick(r.messages, default.messages),
                events: pick(r.events, default.events),
                invalid_devices: pick(r.invalid_devices, default.invalid_devices),
            };
            (name.clone(), limits)
        })
        .collect();
    Ok(RetentionSettings {
        default,
        apps,
        batch,
        interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
[apps.shop]
api_keys = ["a-test-api-key-of-some-length"]
[apps.shop.channels.gcm]
kind = "legacy"
api_key = "server-key"
endpoint = "http://127.0.0.1:1/gcm/send"
"#;

    fn settings(extra: &str) -> Result<RetentionSettings, ConfigError> {
        Ok(ConfigFile::from_toml(&format!("{extra}\n{APP}"))?
            .resolve()?
            .retention)
    }

    const DAY: u64 = 24 * 3600;

    #[test]
    fn limits_read_in_days_when_they_are_whole_days() {
        assert_eq!(limit_words(Some(Duration::from_secs(90 * DAY))), "90d");
        assert_eq!(
            limit_words(Some(Duration::from_secs(36 * 3600))),
            "1day 12h"
        );
        assert_eq!(limit_words(Some(Duration::from_secs(1))), "1s");
        assert_eq!(limit_words(None), "off");
    }

    #[test]
    fn without_a_retention_table_history_is_kept_a_week_and_invalid_devices_ninety_days() {
        let r = settings("").unwrap();
        let days = |d: Option<Duration>| d.map(|d| d.as_secs() / DAY);
        assert_eq!(days(r.default.messages), Some(7));
        assert_eq!(days(r.default.events), Some(7));
        assert_eq!(days(r.default.invalid_devices), Some(90));
        assert_eq!((r.batch, r.interval), (500, Duration::from_secs(60)));
        assert_eq!(r.limits_for("shop"), r.default);
    }

    #[test]
    fn each_limit_takes_a_duration_or_off_and_an_app_may_override_it() {
        let service =
            "[retention]\nmessages = \"2h\"\nevents = \"off\"\nbatch = 50\ninterval = \"5s\"\n";
        let app = "[apps.shop.retention]\nevents = \"30d\"\ninvalid_devices = \"OFF\"\n";
        let r = ConfigFile::from_toml(&format!("{service}{APP}{app}"))
            .unwrap()
            .resolve()
            .unwrap()
            .retention;
        assert_eq!(r.default.messages, Some(Duration::from_secs(7200)));
        assert_eq!(r.default.events, None);
        assert_eq!(
            r.default.invalid_devices,
            Some(Duration::from_secs(90 * DAY))
        );
        assert_eq!((r.batch, r.interval), (50, Duration::from_secs(5)));
        let shop = r.limits_for("shop");
        assert_eq!(
            shop.messages,
            Some(Duration::from_secs(7200)),
            "from [retention]"
        );
        assert_eq!(shop.events, Some(Duration::from_secs(30 * DAY)));
        assert_eq!(shop.invalid_devices, None);
        assert_eq!(
            r.limits_for("gone"),
            r.default,
            "an app no longer configured"
        );
        assert!(!shop.keeps_everything());
        assert!(
            RetentionLimits {
                messages: None,
                events: None,
                invalid_devices: None
            }
            .keeps_everything()
        );
    }

    #[test]
    fn a_bad_limit_is_refused_with_its_key_and_what_is_accepted() {
        for (text, key, says) in [
            ("[retention]\nmessages = false", "messages", "\"off\""),
            ("[retention]\nevents = \"soon\"", "events", "\"soon\""),
            (
                "[retention]\ninvalid_devices = \"0s\"",
                "invalid_devices",
                "more than 0s",
            ),
            (
                "[retention]\nbatch = 0",
                "retention.batch",
                "between 1 and 10000",
            ),
            (
                "[retention]\ninterval = \"10ms\"",
                "retention.interval",
                "at least 1s",
            ),
            ("[retention]\nmesages = \"7d\"", "mesages", "unknown"),
        ] {
            let e = settings(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(says), "{text}: {e}");
        }
    }
}
