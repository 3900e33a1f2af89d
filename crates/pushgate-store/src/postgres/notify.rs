//! `LISTEN/NOTIFY`: stored work is announced on one channel (`app\nchannel` as payload,
//! delivered at commit), so that idle workers of every instance wake at once instead of
//! waiting for their next poll. Polling stays as the fallback: a notification can be lost
//! while a listener reconnects.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Result;
use crate::model::NewWork;

/// The notification channel every instance of one database listens on.
const WORK: &str = "pushgate_work";

/// How many announcements wait for the gateway before more are dropped (they only wake; a
/// dropped one costs at most one poll interval).
const BACKLOG: usize = 1024;

/// Announces the channels a just-stored message has queued work on.
pub(super) async fn message_queued(conn: &mut PgConnection, message_id: Uuid) -> Result<()> {
    sqlx::query(
        "SELECT pg_notify($1, c.app || chr(10) || c.channel)
         FROM (SELECT DISTINCT app, channel FROM deliveries
               WHERE message_id = $2 AND state = 'queued') c",
    )
    .bind(WORK)
    .bind(message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Announces channels that got work back (released by a stopping worker).
pub(super) async fn work_back(
    conn: &mut PgConnection,
    channels: &[(String, String)],
) -> Result<()> {
    let mut pairs: Vec<String> = channels.iter().map(|(a, c)| format!("{a}\n{c}")).collect();
    pairs.sort();
    pairs.dedup();
    if pairs.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(WORK)
        .bind(pairs)
        .execute(conn)
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
