//! What an operator wants to know about one channel's worker, shared with the API.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

/// Live state of one channel's worker.
#[derive(Debug, Default)]
pub struct ChannelStatus {
    /// Deliveries handed to the provider.
    pub attempted: AtomicU64,
    /// Answers recorded.
    pub completed: AtomicU64,
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default, Clone)]
struct StatusInner {
    last_error: Option<(OffsetDateTime, String)>,
    paused_until: Option<OffsetDateTime>,
}

/// A snapshot of [`ChannelStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusView {
    /// Deliveries handed to the provider.
    pub attempted: u64,
    /// Answers recorded.
    pub completed: u64,
    /// When and what last went wrong on the channel as a whole.
    pub last_error: Option<(OffsetDateTime, String)>,
    /// Sends wait until then.
    pub paused_until: Option<OffsetDateTime>,
}

impl ChannelStatus {
    /// Records a whole-channel problem.
    pub fn error(&self, at: OffsetDateTime, what: String) {
        self.inner.lock().last_error = Some((at, what));
    }

    /// Records a pause (or its end with `None`).
    pub fn paused(&self, until: Option<OffsetDateTime>) {
        self.inner.lock().paused_until = until;
    }

    /// A snapshot.
    pub fn view(&self) -> StatusView {
        let inner = self.inner.lock().clone();
        StatusView {
            attempted: self.attempted.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            last_error: inner.last_error,
            paused_until: inner.paused_until,
        }
    }
}
