//! Time arithmetic of the reports: wall-clock milliseconds, durations in milliseconds,
//! nearest-rank percentiles, and the API's RFC 3339 timestamps as epoch milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in (fractional) milliseconds.
pub(super) fn ms_f(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The nearest-rank `p` percentile of `sorted` (zero when empty); serves the round trips
/// (`Duration`) and the latencies (`i64` ms).
pub(super) fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Milliseconds since the Unix epoch of an RFC 3339 time as the API writes it
/// (`2025-01-02T03:04:05.678Z`; any fraction length, `Z` or `±hh:mm`).
pub(super) fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let at = |i: usize, c: u8| b.get(i).map(u8::to_ascii_uppercase) == Some(c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    let mut millis = 0;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        for k in 0..3 {
            let digit = if start + k < i {
                i64::from(b[start + k] - b'0')
            } else {
                0
            };
            millis = millis * 10 + digit;
        }
    }
    let offset_minutes = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let minutes = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if rest.starts_with('-') {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_epoch_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.7Z"),
            Some(1_709_210_096_700)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.789123456Z"),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T14:34:56.789+02:00"),
            Some(1_709_210_096_789)
        );
        assert_eq!(parse_rfc3339_ms("2024-02-29 12:34:56Z"), None);
        assert_eq!(parse_rfc3339_ms("2024-02-29T12:34:56"), None);
        assert_eq!(parse_rfc3339_ms("garbage"), None);
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile::<i64>(&[], 0.5), 0);
    }
}
