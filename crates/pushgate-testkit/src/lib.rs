//! Helpers shared by the test suites of every pushgate crate. A dev-dependency only: nothing
//! here is part of the product.
#![warn(missing_docs)]

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

pub mod postgres;
pub mod sqlite;

/// How often [`eventually`] and [`eventually_ok`] look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Some`, and returns that value; fails the test naming
/// `what` if `limit` passes first. For state that other tasks or processes change: a
/// delivery reaching a device, a row appearing, a server starting.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Like [`eventually`], for probes that can say why they are not there yet: on time-out the
/// failure shows the last `Err`, so a test that fails says what it saw instead.
pub async fn eventually_ok<T, E: Debug>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last seen: {last:?}"
            ),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_value_the_probe_finds() {
        let calls = AtomicU32::new(0);
        let got = eventually("the third call", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n * 10)
        })
        .await;
        assert_eq!(got, 30);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never; last seen: \"still 0\"")]
    async fn fails_with_the_last_observation() {
        eventually_ok::<(), _>("never", Duration::from_millis(60), || async {
            Err("still 0")
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for nothing")]
    async fn fails_after_the_limit() {
        eventually::<()>("nothing", Duration::from_millis(60), || async { None }).await;
    }
}
