//! Group commit of new messages: callers that arrive while another write runs queue their
//! message; the next writer to get the write turn stores every queued message in one
//! transaction (one commit, one flush) and hands each caller its answer. If any of them fails,
//! each is retried in a transaction of its own, so one bad message never fails the others.

use parking_lot::Mutex;
use sqlx::SqlitePool;
use tokio::sync::oneshot;

use super::{BEGIN_WRITE, messages};
use crate::model::{InsertOutcome, NewMessage, Targets};
use crate::{Result, StoreError};

/// Most messages one group stores.
const MAX_GROUP: usize = 256;

/// One queued insert and where its answer goes.
pub(super) struct Job {
    msg: NewMessage,
    targets: Targets,
    answer: oneshot::Sender<Result<InsertOutcome>>,
}

/// The group commit of new messages: the inserts waiting for the write turn, stored together
/// by whichever writer gets it next.
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    jobs: Mutex<Vec<Job>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("message", &self.msg.id)
            .finish()
    }
}

impl GroupCommit {
    /// Queues an insert; its answer arrives on the returned receiver.
    pub(super) fn enqueue(
        &self,
        msg: NewMessage,
        targets: Targets,
    ) -> oneshot::Receiver<Result<InsertOutcome>> {
        let (answer, rx) = oneshot::channel();
        self.jobs.lock().push(Job {
            msg,
            targets,
            answer,
        });
        rx
    }

    /// Takes up to a group's worth of queued inserts.
    pub(super) fn take(&self) -> Vec<Job> {
        let mut jobs = self.jobs.lock();
        let n = jobs.len().min(MAX_GROUP);
        jobs.drain(..n).collect()
    }
}

/// The answer if it already arrived; the receiver back otherwise.
pub(super) fn ready(
    mut rx: oneshot::Receiver<Result<InsertOutcome>>,
) -> std::result::Result<Result<InsertOutcome>, oneshot::Receiver<Result<InsertOutcome>>> {
    match rx.try_recv() {
        Ok(answer) => Ok(answer),
        Err(oneshot::error::TryRecvError::Empty) => Err(rx),
        Err(oneshot::error::TryRecvError::Closed) => {
            Ok(Err(StoreError::Corrupt("insert answer lost".into())))
        }
    }
}

/// Stores a group (the caller holds the write turn) and answers every job.
pub(super) async fn run(pool: &SqlitePool, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    match together(pool, &jobs).await {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.answer.send(Ok(outcome));
            }
        }
        Err(_) => {
            for job in jobs {
                let one = alone(pool, &job).await;
                let _ = job.answer.send(one);
            }
        }
    }
}

async fn together(pool: &SqlitePool, jobs: &[Job]) -> Result<Vec<InsertOutcome>> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(messages::insert_message(&mut tx, &job.msg, &job.targets).await?);
    }
    tx.commit().await?;
    Ok(out)
}

async fn alone(pool: &SqlitePool, job: &Job) -> Result<InsertOutcome> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let out = messages::insert_message(&mut tx, &job.msg, &job.targets).await?;
    tx.commit().await?;
    Ok(out)
}
