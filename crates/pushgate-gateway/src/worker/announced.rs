//! Wakes idle channel workers when the store announces new work stored or released by any
//! instance sharing the database (PostgreSQL `NOTIFY`), or queued by one channel's claim for
//! the others (SQLite, in process); a store without announcements leaves the workers to
//! their polls.

use std::sync::Arc;

use pushgate_store::Store;
use tokio_util::sync::CancellationToken;

use super::ChannelSet;

/// Forwards the store's announcements to the channels' wake-ups until `stop`.
pub(super) async fn follow(store: Arc<dyn Store>, channels: ChannelSet, stop: CancellationToken) {
    let mut feed = match store.watch_work().await {
        Ok(Some(feed)) => feed,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for new work of other instances; idle workers poll");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            work = feed.recv() => match work {
                Some(work) => channels.wake(&work.app, &work.channel),
                None => return,
            },
        }
    }
}
