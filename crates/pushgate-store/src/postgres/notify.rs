//! `LISTEN/NOTIFY`: stored work is announced on one channel (`app\nchannel` as payload), so
//! that idle workers of every instance wake at once instead of waiting for their next poll.
//! Polling stays as the fallback: a notification can be lost while a listener reconnects, or
//! when a process dies between a commit and its announcement.
//!
//! Announcements are sent after the commit, by a task of their own, never inside the
//! transaction that stores the work: PostgreSQL serialises the commits of every transaction
//! that issued a `NOTIFY` (one database-wide lock, held through the commit's flush), which
//! capped the whole cluster at one flushed commit at a time. The task gathers what arrives
//! while its last `NOTIFY` runs, so a burst of stored messages costs one `NOTIFY` per channel.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::collections::BTreeSet;

use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::Result;
use crate::model::NewWork;

/// The notification channel every instance of one database listens on.
const WORK: &str = "pushgate_work";

/// How many announcements wait for the gateway before more are dropped (they only wake; a
/// dropped one costs at most one poll interval).
const BACKLOG: usize = 1024;

/// Sends announcements of committed work from a task of its own; cloned into every handle of
/// the store, and the task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Announcer {
    tx: mpsc::UnboundedSender<(String, String)>,
}

impl Announcer {
    /// Starts the task, which sends on connections of `pool`.
    pub(super) fn start(pool: PgPool) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, String)>();
        tokio::spawn(async move {
            let mut waiting = BTreeSet::new();
            while let Some(first) = rx.recv().await {
                waiting.insert(first);
                while let Ok(more) = rx.try_recv() {
                    waiting.insert(more);
                }
                let payloads: Vec<String> = std::mem::take(&mut waiting)
                    .into_iter()
                    .map(|(app, channel)| format!("{app}\n{channel}"))
                    .collect();
                if let Err(e) = send(&pool, payloads).await {
                    // Workers poll as well; a lost announcement costs one poll interval.
                    tracing::debug!(error = %e, "NOTIFY {WORK} failed");
                }
            }
        });
        Self { tx }
    }

    /// Announces that `app`'s `channels` have new or returned work (call after the commit
    /// that stored it).
    pub(super) fn announce<I, S>(&self, app: &str, channels: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for channel in channels {
            let _ = self.tx.send((app.to_string(), channel.into()));
        }
    }

    /// Announces `(app, channel)` pairs (call after the commit that stored their work).
    pub(super) fn announce_pairs(&self, pairs: Vec<(String, String)>) {
        for pair in pairs {
            let _ = self.tx.send(pair);
        }
    }
}

/// One `NOTIFY` per payload, in one statement outside any transaction of the store's writes.
async fn send(pool: &PgPool, payloads: Vec<String>) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(WORK)
        .bind(payloads)
        .execute(pool)
        .await?;
    Ok(())
}

/// Listens for announcements on a connection of its own (outside the store's pool, whose
/// every connection stays available to the store) and forwards them until the receiver is
/// dropped; the listener reconnects by itself after a lost connection.
pub(super) async fn listen(options: &PgConnectOptions) -> Result<mpsc::Receiver<NewWork>> {
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(WORK).await?;
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            let note = tokio::select! {
                note = listener.recv() => note,
                () = tx.closed() => return,
            };
            match note {
                Ok(note) => {
                    if let Some((app, channel)) = note.payload().split_once('\n') {
                        let work = NewWork {
                            app: app.to_string(),
                            channel: channel.to_string(),
                        };
                        if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(work) {
                            return;
                        }
                    }
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN {WORK} failed; retrying in 1 s (workers keep polling)");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(rx)
}
