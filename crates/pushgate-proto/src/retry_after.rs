//! The `Retry-After` header in both of its RFC 7231 forms.

use std::time::{Duration, SystemTime};

/// A server's request to wait before trying again: delta-seconds or an HTTP-date.
///
/// Client libraries have disagreed on this header for a decade (python-gcm kept it as a
/// string and misread dates as durations); this type parses both forms once, for every
/// protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 120`
    Seconds(u64),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`
    Date(SystemTime),
}

impl RetryAfter {
    /// Parses a header value; `None` when it is neither delta-seconds nor an HTTP-date.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value.parse().ok().map(RetryAfter::Seconds);
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::Date)
    }

    /// How long to wait, counted from `now`; a date in the past means no wait.
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(*s),
            RetryAfter::Date(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }

    /// Renders the header value (the form it was given in).
    pub fn to_header_value(&self) -> String {
        match self {
            RetryAfter::Seconds(s) => s.to_string(),
            RetryAfter::Date(at) => httpdate::fmt_http_date(*at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delta_seconds() {
        assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::Seconds(120)));
        assert_eq!(
            RetryAfter::parse("120")
                .unwrap()
                .delay_from(SystemTime::now()),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn parses_http_date_relative_to_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799 - 30);
        let parsed = RetryAfter::parse("Fri, 31 Dec 1999 23:59:59 GMT").unwrap();
        assert_eq!(parsed.delay_from(now), Duration::from_secs(30));
        // A date in the past asks for no wait at all.
        let later = now + Duration::from_secs(3600);
        assert_eq!(parsed.delay_from(later), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(RetryAfter::parse(""), None);
        assert_eq!(RetryAfter::parse("-5"), None);
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse("1.5"), None);
    }
}
