//! In-process announcements of work one channel's claim queued for others: a claim that
//! stores the next chunk of a mixed-channel fan-out leases its own channel's deliveries and
//! queues the rest, which no API call of this process woke anyone for. The gateway follows
//! these through [`crate::Store::watch_work`] and wakes the channels at once, as PostgreSQL's
//! `NOTIFY` does across instances; without them, an idle channel would find its work only at
//! its next poll.

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::model::NewWork;

/// How many announcements wait for a follower before more are dropped (they only wake; a
/// dropped one costs at most one poll interval).
const BACKLOG: usize = 1024;

/// The followers of one store (every clone of a [`super::SqliteStore`] shares them).
#[derive(Debug, Default)]
pub(super) struct Announcements {
    followers: Mutex<Vec<mpsc::Sender<NewWork>>>,
}

impl Announcements {
    /// A new follower's feed.
    pub(super) fn follow(&self) -> mpsc::Receiver<NewWork> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        self.followers.lock().push(tx);
        rx
    }

    /// Announces that `app`'s `channels` have queued work (call after the commit that stored
    /// it). Followers that went away are forgotten; a full feed misses this one.
    pub(super) fn announce(&self, app: &str, channels: &[String]) {
        if channels.is_empty() {
            return;
        }
        let mut followers = self.followers.lock();
        followers.retain(|tx| !tx.is_closed());
        for tx in followers.iter() {
            for channel in channels {
                let _ = tx.try_send(NewWork {
                    app: app.to_string(),
                    channel: channel.clone(),
                });
            }
        }
    }
}
