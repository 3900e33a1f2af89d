//! Group commit for new messages: messages stored while another transaction is being flushed
//! wait together and go into the next transaction, each under a savepoint of its own, so that
//! a burst of single-device messages costs one flushed commit per batch instead of one per
//! message (PostgreSQL flushes the write-ahead log once per commit, and the flush is what
//! each request waited for).
//!
//! A few runners take batches from one queue, so that a slow batch (a large fan-out) does not
//! hold up the messages behind it for long. A message whose statements fail is rolled back to
//! its savepoint and answered with its error, without touching the others; one that lost a
//! race on a unique key or a deadlock is tried again in the same transaction. A batch whose
//! transaction fails is run again from the start when the failure is worth it
//! ([`super::retriable`]), and otherwise each of its messages alone, so that each caller gets
//! its own answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgConnection, PgPool};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::messages::{self, Inserted};
use super::{TX_ATTEMPTS, retriable};
use crate::model::{NewMessage, Targets};
use crate::{Result, StoreError};

/// Most messages in one transaction.
const MAX_BATCH: usize = 128;
/// Transactions of new messages in flight at once.
const RUNNERS: usize = 4;

/// One message waiting for a transaction.
struct Job {
    msg: NewMessage,
    targets: Targets,
    reply: oneshot::Sender<Result<Inserted>>,
}

/// The queue of messages to store; cloned into every handle of the store, and its runners
/// stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct MessageBatcher {
    queue: mpsc::UnboundedSender<Job>,
    /// Transactions of new messages committed so far.
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("message", &self.msg.id)
            .finish()
    }
}

impl MessageBatcher {
    /// Starts the runners, which store on connections of `pool`.
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, rx) = mpsc::unbounded_channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let commits = Arc::new(AtomicU64::new(0));
        for _ in 0..RUNNERS {
            let (pool, rx, commits) = (pool.clone(), rx.clone(), commits.clone());
            tokio::spawn(async move {
                while let Some(jobs) = next_batch(&rx).await {
                    run(&pool, jobs, &commits).await;
                }
            });
        }
        Self { queue, commits }
    }

    /// Transactions of new messages committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Stores `msg` in the next batch and waits for that batch's commit.
    pub(super) async fn insert(&self, msg: NewMessage, targets: &Targets) -> Result<Inserted> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            msg,
            targets: targets.clone(),
            reply,
        };
        self.queue.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// The error of a store whose runners are gone.
fn closed() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Waits for a message, then takes every message already waiting behind it (up to
/// [`MAX_BATCH`]); `None` once the store is gone.
async fn next_batch(rx: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut jobs = vec![first];
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// Stores one batch and answers each message.
async fn run(pool: &PgPool, jobs: Vec<Job>, commits: &AtomicU64) {
    match with_retries(pool, &jobs, commits).await {
        Ok(results) => {
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(_) if jobs.len() > 1 => {
            for job in jobs {
                let alone = with_retries(pool, std::slice::from_ref(&job), commits).await;
                let _ = job.reply.send(alone.and_then(|mut r| r.remove(0)));
            }
        }
        Err(e) => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

/// [`store_batch`], run again from the start while it fails in a way worth it.
async fn with_retries(
    pool: &PgPool,
    jobs: &[Job],
    commits: &AtomicU64,
) -> Result<Vec<Result<Inserted>>> {
    let mut attempt = 1;
    loop {
        match store_batch(pool, jobs).await {
            Err(e) if attempt < TX_ATTEMPTS && retriable(&e) => attempt += 1,
            other => {
                if other.is_ok() {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                return other;
            }
        }
    }
}

/// One transaction for the batch: each message under its savepoint; the per-message
/// results, once the commit succeeded.
async fn store_batch(pool: &PgPool, jobs: &[Job]) -> Result<Vec<Result<Inserted>>> {
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(store_one(&mut tx, job).await?);
    }
    tx.commit().await?;
    Ok(results)
}

/// One message under a savepoint: `Ok(Err(_))` when its statements failed (rolled back to the
/// savepoint, the transaction goes on); `Err(_)` when the transaction itself is lost.
async fn store_one(conn: &mut PgConnection, job: &Job) -> Result<Result<Inserted>> {
    let mut attempt = 1;
    loop {
        sqlx::query("SAVEPOINT message").execute(&mut *conn).await?;
        match messages::insert_message(&mut *conn, &job.msg, &job.targets).await {
            Ok(inserted) => {
                sqlx::query("RELEASE SAVEPOINT message")
                    .execute(&mut *conn)
                    .await?;
                return Ok(Ok(inserted));
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT message")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT message")
                    .execute(&mut *conn)
                    .await?;
                if attempt < TX_ATTEMPTS && retriable(&e) {
                    attempt += 1;
                    continue;
                }
                return Ok(Err(e));
            }
        }
    }
}
