//! proto3 JSON durations (`"3.5s"`), as v1 carries `android.ttl`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A protobuf `Duration` in its JSON form: decimal seconds with an `s` suffix.
///
/// Exists because v1 TTLs travel as strings (`"2419200s"`, `"1.500000000s"`), not numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtoDuration(pub Duration);

impl ProtoDuration {
    /// Parses `"3s"`, `"3.5s"`, `"3.000000001s"`; at most 9 fractional digits, no sign.
    pub fn parse(text: &str) -> Option<Self> {
        let number = text.strip_suffix('s')?;
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || fraction.len() > 9
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || (number.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let secs: u64 = whole.parse().ok()?;
        let nanos: u32 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<9}").parse().ok()?
        };
        Some(ProtoDuration(Duration::new(secs, nanos)))
    }

    /// Whole seconds, rounded down (the service rounds TTLs down).
    pub fn whole_seconds(&self) -> u64 {
        self.0.as_secs()
    }
}

impl fmt::Display for ProtoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.subsec_nanos();
        if nanos == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}.{nanos:09}s", self.0.as_secs())
        }
    }
}

impl Serialize for ProtoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProtoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ProtoDuration::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: expected decimal seconds with an 's' suffix, like \"3.5s\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_forms() {
        assert_eq!(
            ProtoDuration::parse("3s").unwrap().0,
            Duration::from_secs(3)
        );
        assert_eq!(
            ProtoDuration::parse("3.5s").unwrap().0,
            Duration::from_millis(3500)
        );
        assert_eq!(
            ProtoDuration::parse("3.000000001s").unwrap().0,
            Duration::new(3, 1)
        );
        assert_eq!(
            ProtoDuration::parse("1.500000000s").unwrap().to_string(),
            "1.500000000s"
        );
        assert_eq!(
            ProtoDuration::parse("2419200s").unwrap().whole_seconds(),
            2_419_200
        );
        for bad in [
            "3",
            "s",
            "-1s",
            "3.s",
            "1.0000000001s",
            "abc",
            "1e3s",
            " 3s",
        ] {
            assert_eq!(ProtoDuration::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(secs in 0u64..10_000_000, nanos in 0u32..1_000_000_000) {
            let d = ProtoDuration(Duration::new(secs, nanos));
            prop_assert_eq!(ProtoDuration::parse(&d.to_string()), Some(d));
        }
    }
}
