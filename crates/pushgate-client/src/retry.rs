//! The one retry policy every protocol sender uses: exponential backoff with jitter,
//! never shorter than what the server asked for.
//!
//! docs/protocols.md, "Legacy HTTP: Retry-After and backoff", asks for 1 s, 2 s, 4 s, … with
//! independent random jitter so that
//! retries do not synchronise, and for `Retry-After` to be honoured as a minimum. The
//! reference libraries (docs/protocols.md, "Reference client libraries") all draw from the same
//! window, which is the default here.

use std::time::Duration;

/// How the random part of a backoff is drawn.
///
/// With `b` the initial backoff and `d = min(b·m^n, max_backoff)` the exponential delay of
/// attempt `n` (`m` the multiplier):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomness: exactly `d`. Only sensible in tests.
    None,
    /// "Full" jitter (AWS style): uniform in `[0, d)`. Spreads a herd the most.
    Full,
    /// The reference libraries' jitter (gcm-client, python-gcm, gcm-server), called "equal"
    /// here because the window has the same width `b` at every attempt: uniform in
    /// `[d − b/2, d + b/2)`, i.e. `[0.5 s, 1.5 s)`, `[1.5 s, 2.5 s)`, `[3.5 s, 4.5 s)`, … for
    /// `b = 1 s`. The default.
    #[default]
    Equal,
}

/// Exponential backoff with jitter, shared by every protocol sender.
///
/// The delay before retry number `n` (`n = 0` is the wait between the first and second
/// attempt) is:
///
/// ```text
/// d(n)     = min(initial_backoff · multiplier^n, max_backoff)
/// jittered = uniform in [d(n) − b/2, d(n) + b/2)   (Jitter::Equal, b = initial_backoff)
///          | uniform in [0, d(n))                  (Jitter::Full)
///          | d(n)                                  (Jitter::None)
/// delay(n) = max(min(jittered, max_backoff), server Retry-After)
/// ```
///
/// The server's `Retry-After` always wins over the cap: the service asked for at least that.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total number of attempts, the first one included (python-gcm's `retries`). At least 1.
    pub max_attempts: u32,
    /// The base `b` of the backoff (1 s in every reference library).
    pub initial_backoff: Duration,
    /// The largest delay the policy itself produces (a server's `Retry-After` may exceed it).
    pub max_backoff: Duration,
    /// Growth factor per attempt (2 in every reference library); values below 1 count as 1.
    pub multiplier: f64,
    /// How the random part is drawn.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 5 attempts, 1 s initial backoff doubling up to 512 s (the cap python-gcm and
    /// gcm-server reach), equal jitter.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(512),
            multiplier: 2.0,
            jitter: Jitter::Equal,
        }
    }
}

impl RetryPolicy {
    /// The default policy (see [`RetryPolicy::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the total number of attempts (the first included); 0 is treated as 1.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the base backoff `b`.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Sets the cap of the policy's own delays.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Sets the growth factor per attempt.
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the jitter kind.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// True when an attempt numbered `attempt` (1 = the first send) is still allowed.
    pub fn allows_attempt(&self, attempt: u32) -> bool {
        attempt <= self.max_attempts.max(1)
    }

    /// The wait before retry number `attempt` (0 = before the second send), with fresh
    /// random jitter, and never below `server_retry_after`.
    pub fn delay(&self, attempt: u32, server_retry_after: Option<Duration>) -> Duration {
        self.delay_with_sample(attempt, server_retry_after, rand::random_range(0.0..1.0))
    }

    /// The exponential part `d(n)` without jitter and without the server's floor.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        secs_to_duration(self.base_secs(attempt), self.max_backoff)
    }

    /// [`RetryPolicy::delay`] with the random draw given: `sample` in `[0, 1)`.
    pub(crate) fn delay_with_sample(
        &self,
        attempt: u32,
        server_retry_after: Option<Duration>,
        sample: f64,
    ) -> Duration {
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let b = self.initial_backoff.as_secs_f64();
        let d = self.base_secs(attempt);
        let jittered = match self.jitter {
            Jitter::None => d,
            Jitter::Full => d * sample,
            Jitter::Equal => (d - b / 2.0 + b * sample).max(0.0),
        };
        let own = secs_to_duration(jittered, self.max_backoff).min(self.max_backoff);
        match server_retry_after {
            Some(server) => own.max(server),
            None => own,
        }
    }

    /// `min(b · m^n, max)` in seconds, safe against overflow and odd multipliers.
    fn base_secs(&self, attempt: u32) -> f64 {
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let max = self.max_backoff.as_secs_f64();
        let grown = self.initial_backoff.as_secs_f64() * multiplier.powf(f64::from(attempt));
        if grown.is_finite() {
            grown.min(max)
        } else {
            max
        }
    }
}

/// Converts seconds to a `Duration`, falling back to `fallback` when out of range.
fn secs_to_duration(secs: f64, fallback: Duration) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn default_matches_the_reference_libraries() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial_backoff, Duration::from_millis(1000));
        assert_eq!(p.multiplier, 2.0);
        assert_eq!(p.jitter, Jitter::Equal);
    }

    #[test]
    fn equal_jitter_window_is_gcm_clients() {
        // gcm-client: backoff(retry) uniform in [2^retry − 0.5, 2^retry + 0.5) s for b = 1 s.
        let p = RetryPolicy::default();
        for n in 0..6u32 {
            let centre = f64::from(1u32 << n);
            let low = p.delay_with_sample(n, None, 0.0).as_secs_f64();
            let high = p.delay_with_sample(n, None, 0.999_999).as_secs_f64();
            assert!((low - (centre - 0.5)).abs() < 1e-6, "n={n} low={low}");
            assert!(
                high < centre + 0.5 && high > centre + 0.49,
                "n={n} high={high}"
            );
        }
    }

    #[test]
    fn random_delays_stay_in_bounds_and_spread() {
        let p = RetryPolicy::default();
        for n in 0..5u32 {
            let centre = S * (1u32 << n);
            let draws: Vec<Duration> = (0..400).map(|_| p.delay(n, None)).collect();
            for d in &draws {
                assert!(*d >= centre - S / 2 && *d < centre + S / 2, "n={n} {d:?}");
            }
            let min = draws.iter().min().copied().unwrap_or_default();
            let max = draws.iter().max().copied().unwrap_or_default();
            // 400 uniform draws over a 1 s window: the spread is almost surely > 0.5 s.
            assert!(max - min > S / 2, "n={n} spread {:?}", max - min);
        }
    }

    #[test]
    fn full_jitter_and_no_jitter() {
        let full = RetryPolicy::default().with_jitter(Jitter::Full);
        assert_eq!(full.delay_with_sample(3, None, 0.0), Duration::ZERO);
        assert_eq!(full.delay_with_sample(3, None, 0.5), 4 * S);
        let none = RetryPolicy::default().with_jitter(Jitter::None);
        assert_eq!(none.delay_with_sample(0, None, 0.9), S);
        assert_eq!(none.delay_with_sample(4, None, 0.1), 16 * S);
    }

    #[test]
    fn capped_at_max_backoff() {
        let p = RetryPolicy::default().with_max_backoff(10 * S);
        for n in [4u32, 5, 10, 64, 1000, u32::MAX] {
            let d = p.delay_with_sample(n, None, 0.999);
            assert!(d <= 10 * S, "n={n} {d:?}");
            assert!(d >= 10 * S - S / 2, "n={n} {d:?}");
        }
        assert_eq!(p.base_delay(u32::MAX), 10 * S);
    }

    #[test]
    fn server_retry_after_is_a_floor_even_above_the_cap() {
        let p = RetryPolicy::default().with_max_backoff(2 * S);
        assert_eq!(p.delay_with_sample(0, Some(30 * S), 0.5), 30 * S);
        // A shorter Retry-After does not shorten the backoff.
        let d = p.delay_with_sample(1, Some(Duration::from_millis(10)), 0.0);
        assert_eq!(d, Duration::from_millis(1500));
        for _ in 0..100 {
            assert!(p.delay(0, Some(3 * S)) >= 3 * S);
        }
    }

    #[test]
    fn odd_parameters_do_not_panic() {
        let p = RetryPolicy::default()
            .with_multiplier(f64::NAN)
            .with_initial_backoff(Duration::ZERO);
        assert_eq!(p.delay(7, None), Duration::ZERO);
        let p = RetryPolicy::default().with_multiplier(0.1);
        assert_eq!(p.base_delay(5), S);
        assert_eq!(
            RetryPolicy::default().delay_with_sample(0, None, f64::NAN),
            S / 2
        );
    }

    #[test]
    fn attempts_are_counted_from_one() {
        let p = RetryPolicy::default().with_max_attempts(3);
        assert!(p.allows_attempt(1) && p.allows_attempt(3));
        assert!(!p.allows_attempt(4));
        assert!(
            RetryPolicy::default()
                .with_max_attempts(0)
                .allows_attempt(1)
        );
    }
}
