//! An async token bucket: the client-side share of a project's send quota.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Requests per minute and burst of a [`RateLimiter`].
///
/// Exists because FCM v1 counts messages per project per minute (600,000 by default,
/// docs/protocols.md, "FCM v1: quotas and limits") and answers 429 once over it: pacing below the
/// quota is cheaper than
/// being throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate, requests per minute (at least 1).
    pub per_minute: u32,
    /// Requests allowed at once after an idle period (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// `per_minute` with a burst of one second's worth (at least 1).
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            per_minute,
            burst: (per_minute / 60).max(1),
        }
    }

    /// Sets the burst (at least 1).
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }
}

impl Default for RateLimit {
    /// FCM v1's default project quota: 600,000 per minute, bursts of 10,000.
    fn default() -> Self {
        Self::per_minute(600_000)
    }
}

/// A token bucket where waiters reserve their slot: `acquire` takes a token, letting the
/// count go negative, and sleeps until the refill reaches it. First come, first served;
/// no task spins.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    /// How many senders share the limit (gateway instances on one project): each gets this
    /// fraction of the rate and of the burst.
    sharers: AtomicU32,
    state: parking_lot::Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let burst = f64::from(limit.burst.max(1));
        Self {
            per_sec: f64::from(limit.per_minute.max(1)) / 60.0,
            burst,
            sharers: AtomicU32::new(1),
            state: parking_lot::Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// Shares the limit between `sharers` senders from now on (at least 1).
    pub(crate) fn share_between(&self, sharers: u32) {
        self.sharers.store(sharers.max(1), Ordering::Relaxed);
    }

    /// Takes one token; returns how long the caller must wait before using it.
    pub(crate) fn reserve(&self, now: Instant) -> Duration {
        let sharers = f64::from(self.sharers.load(Ordering::Relaxed).max(1));
        let per_sec = self.per_sec / sharers;
        let burst = (self.burst / sharers).max(1.0);
        let mut bucket = self.state.lock();
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.last = now.max(bucket.last);
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-bucket.tokens / per_sec).unwrap_or(Duration::MAX)
        }
    }

    /// Waits for one token.
    pub(crate) async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_limit_gives_each_sharer_its_fraction() {
        // 600/min alone is 10/s with a burst of 10; shared by 4, 2.5/s with a burst of 2.5:
        // two tokens at once, then one every 0.4 s (the third waits for the missing half).
        let limiter = RateLimiter::new(RateLimit::per_minute(600));
        limiter.share_between(4);
        let t = Instant::now() + Duration::from_secs(10); // a full bucket
        let waits: Vec<Duration> = (0..4).map(|_| limiter.reserve(t)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[1], Duration::ZERO);
        assert_eq!(waits[2], Duration::from_millis(200), "{waits:?}");
        assert_eq!(waits[3], Duration::from_millis(600), "{waits:?}");
        // Alone again: the full rate.
        limiter.share_between(1);
        let later = t + Duration::from_secs(60);
        assert!(limiter.reserve(later).is_zero());
        limiter.share_between(0); // taken as 1
        assert!(limiter.reserve(later).is_zero());
    }

    #[test]
    fn burst_then_steady_rate() {
        // 60/min = 1/s, burst 3.
        let limiter = RateLimiter::new(RateLimit::per_minute(60).with_burst(3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.reserve(t0), Duration::ZERO);
        }
        // The 4th, 5th wait 1 s, 2 s: reservations queue up.
        let w4 = limiter.reserve(t0);
        let w5 = limiter.reserve(t0);
        assert!((w4.as_secs_f64() - 1.0).abs() < 1e-6, "{w4:?}");
        assert!((w5.as_secs_f64() - 2.0).abs() < 1e-6, "{w5:?}");
        // After 10 s idle the bucket is full again, never more than the burst.
        let later = t0 + Duration::from_secs(12);
        for _ in 0..3 {
            assert_eq!(limiter.reserve(later), Duration::ZERO);
        }
        assert!(limiter.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn default_is_fcm_project_quota() {
        let d = RateLimit::default();
        assert_eq!(d.per_minute, 600_000);
        assert_eq!(d.burst, 10_000);
        assert_eq!(RateLimit::per_minute(0).burst, 1);
    }

    #[tokio::test]
    async fn acquire_paces_in_real_time() {
        // 600/min = 10/s, burst 1: the 3rd acquire is ≥ 200 ms after the first.
        let limiter = RateLimiter::new(RateLimit::per_minute(600).with_burst(1));
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(190));
    }
}
