//! The fan-out task: the backstop that stores the rest of a large fan-out when its channels
//! do not. A channel's claim stores the next chunk of the app's oldest fan-out itself, its own
//! deliveries already leased ([`Store::claim_due`]), so that those are not stored, then
//! claimed, then answered, but inserted in flight and then answered. A message none of whose chunks was stored for [`IDLE`]
//! (its channels are paused, busy with older work, or not run by this instance) gets one
//! chunk of queued deliveries from this task ([`Store::expand_audience`]), and the app's
//! channels are woken.
//!
//! It looks every [`POLL`] (a message just accepted is not idle, so the API does not wake it).
//! Every instance sharing a PostgreSQL database runs it: the store hands each chunk to one of
//! them.

use std::sync::Arc;
use std::time::Duration;

use pushgate_store::Store;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::worker::ChannelSet;

/// How often the task looks for fan-outs left idle.
pub const POLL: Duration = Duration::from_secs(1);

/// How long a fan-out's channels may store none of its chunks before this task stores one.
pub const IDLE: Duration = Duration::from_secs(1);

/// How long the task waits before trying again after the store failed.
const AFTER_ERROR: Duration = Duration::from_secs(1);

/// Stores the rest of large fan-outs until stopped.
pub struct Fanout {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Whose channels are woken after each chunk.
    pub channels: ChannelSet,
    /// Ends the loop (between two chunks).
    pub stop: CancellationToken,
}

impl Fanout {
    /// The loop: a chunk of each message left idle, then a wait for the poll interval or
    /// `stop`.
    pub async fn run(self) {
        loop {
            let pause = match self
                .store
                .expand_audience(OffsetDateTime::now_utc(), Some(IDLE))
                .await
            {
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
