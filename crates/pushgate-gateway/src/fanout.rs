//! The fan-out task: stores the rest of large fan-outs, one chunk per store call
//! ([`Store::expand_audience`]), and wakes the app's channels after each chunk, so that the
//! first deliveries go out while the rest of the audience is still being stored.
//!
//! The API nudges it when it accepts a message that is still expanding; it also looks every
//! [`POLL`], for fan-outs a restart left unfinished or another instance accepted. Every
//! instance sharing a PostgreSQL database runs it: the store hands each chunk to one of them.

use std::sync::Arc;
use std::time::Duration;

use pushgate_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::worker::ChannelSet;

/// How often the task looks for unfinished fan-outs without a nudge.
pub const POLL: Duration = Duration::from_secs(1);

/// How long the task waits before trying again after the store failed.
const AFTER_ERROR: Duration = Duration::from_secs(1);

/// Wakes the fan-out task at once (a message still expanding was accepted). Clones share it.
#[derive(Clone, Default)]
pub struct FanoutNudge(Arc<Notify>);

impl FanoutNudge {
    /// Wakes the task (or makes its next wait return at once).
    pub fn nudge(&self) {
        self.0.notify_one();
    }
}

/// Stores the rest of large fan-outs until stopped.
pub struct Fanout {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Whose channels are woken after each chunk.
    pub channels: ChannelSet,
    /// What the API nudges.
    pub nudge: FanoutNudge,
    /// Ends the loop (between two chunks).
    pub stop: CancellationToken,
}

impl Fanout {
    /// The loop: chunk after chunk while any message is expanding, then a wait for a nudge,
    /// the poll interval or `stop`.
    pub async fn run(self) {
        loop {
            let pause = match self.store.expand_audience().await {
                Ok(Some(expansion)) => {
                    if expansion.stored > 0 {
                        self.wake_app(&expansion.app);
                    }
                    None
                }
                Ok(None) => Some(POLL),
                Err(e) => {
                    tracing::warn!(error = %e, "fan-out: cannot store the next chunk of a message; trying again");
                    Some(AFTER_ERROR)
                }
            };
            let Some(pause) = pause else {
                if self.stop.is_cancelled() {
                    return;
                }
                continue;
            };
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = self.nudge.0.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Wakes every channel of `app`: a chunk holds deliveries of any of them.
    fn wake_app(&self, app: &str) {
        for (owner, _, entry) in self.channels.iter() {
            if owner == app {
                entry.wake.notify_one();
            }
        }
    }
}
