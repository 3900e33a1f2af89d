//! A wake-up for everything that follows the event log (the SSE stream, webhooks): bumped
//! after every commit that may have written events. Followers also poll, so events written
//! by another gateway process on the same database are seen too.

use std::time::Duration;

use tokio::sync::watch;

/// How often followers look even without a wake-up (other processes write events too).
pub const POLL: Duration = Duration::from_millis(500);

/// The shared wake-up.
#[derive(Debug, Clone)]
pub struct EventWakeup {
    tx: watch::Sender<u64>,
}

impl Default for EventWakeup {
    fn default() -> Self {
        Self {
            tx: watch::channel(0).0,
        }
    }
}

impl EventWakeup {
    /// Wakes every follower.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A follower's end.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

/// Waits for a wake-up or the poll interval, whichever comes first.
pub async fn wait(rx: &mut watch::Receiver<u64>) {
    let _ = tokio::time::timeout(POLL, rx.changed()).await;
}
