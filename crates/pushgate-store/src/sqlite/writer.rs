//! The one write path of a [`super::SqliteStore`]: every change (new messages, claims,
//! provider answers, releases, registry and device writes, events, webhooks) is a job queued
//! here, and one cycle at a time stores every job waiting into one `BEGIN IMMEDIATE`
//! transaction: one commit and one flush for however many callers. Each caller gets its
//! answer only once the commit holding its job returned (with `synchronous=FULL`, once it is
//! on disk).
//!
//! A cycle first runs its jobs one after the other with nothing in between (the fast path).
//! If a job fails, the transaction is rolled back and the cycle runs again with a savepoint
//! around each job, so the failing job's writes are undone alone and the others still share
//! one commit. If even that transaction fails (the database itself refused), each job is
//! retried in a transaction of its own: one bad job never fails the others.
//!
//! Jobs of one kind that can be stored together (new single-device messages) are queued as
//! batch jobs: a cycle merges every batch job of a kind into one, whose work stores all their
//! inputs with a few set-based statements instead of a few statements each (each statement
//! is a hand-off to sqlx's connection thread, which is where the CPU of a write went). If a
//! merged batch fails, it is split again before the cycle is retried, so each input is then
//! stored, and fails, alone.
//!
//! Not every write needs its own flush. A cycle holding only delivery bookkeeping (claims,
//! provider answers, releases: see [`Flush::Deferred`]) commits without one, as long as the
//! last flushed commit is less than [`DEFERRED_FLUSH_WITHIN`] old: it is committed (every
//! connection, and the process after a crash, sees it), and it reaches the disk with the next
//! flushed commit, or at the latest [`DEFERRED_FLUSH_WITHIN`] later with a passive checkpoint
//! (which syncs the write-ahead log first) when nothing else is written. A power cut in that window can only make the gateway send again what it
//! had already sent (at-least-once), never lose an accepted message: every cycle holding a
//! new message, a device change or an event cursor flushes before it answers.
//!
//! Every cycle runs on the same connection, kept by the writer and outside the pool of
//! readers: SQLite drops a connection's page cache whenever another connection wrote since
//! its last transaction, so cycles taking turns over the pool's connections each began by
//! reading back, through the kernel, the index and table pages the cycle before had just
//! written. Kept apart, the writer's cache stays warm; only readers pay for the writes.
//!
//! There is no writer thread to start or stop: the first caller that finds no cycle running
//! becomes the leader and runs a cycle on a task of its own (so that a caller giving up
//! cannot cancel the others' commit); callers arriving meanwhile queue and are served by the
//! next cycle, so none waits longer than the cycle that was running when it came plus its
//! own.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// The page cache of the writer's own connection, in KiB (SQLite's default is 2,000): the
/// registry's token index and the queue's indexes stay in it between cycles. Measured on
/// `devices:import` of 100,000 devices, two sets of three alternating pairs: +15% and +3%
/// (medians), for about 7 MiB more of idle RSS at 1,000,000 devices (46 → 53 MiB).
const WRITER_CACHE_KIB: u32 = 8192;

/// Pages the write-ahead log grows to before a commit of the writer checkpoints it into the
/// database (SQLite's default is 1,000, 4 MB). Each new device dirties a page of the token-key
/// index at a random place, and past a few hundred thousand devices a cycle of imports dirties
/// thousands of them: with the default, every cycle ended with a checkpoint writing them all
/// back; with a larger log, a page dirtied by several cycles goes back once. Measured on the
/// import of 1,000,000 devices, three alternating pairs: 35,202 → 41,314 devices/s (medians),
/// the fan-out and the singles no slower; the log takes up to about 40 MB of disk.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Largest size the write-ahead log is kept at once checkpointed (it is reused, not shrunk,
/// below this): bounds its disk use when readers held a checkpoint back and it grew further.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Most jobs one cycle stores (bounds how long a cycle holds SQLite's write lock).
const MAX_CYCLE: usize = 1024;

/// Longest a cycle of [`Flush::Deferred`] jobs may go without a flushed commit before it:
/// what a power cut can make the gateway send a second time.
pub(super) const DEFERRED_FLUSH_WITHIN: Duration = Duration::from_millis(200);

/// The statements a cycle starts with: the flush its commit makes, then the write lock.
const BEGIN_FLUSHED: &str = "PRAGMA synchronous = FULL; BEGIN IMMEDIATE";
const BEGIN_UNFLUSHED: &str = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE";

/// Whether a job's commit must be on disk before its caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flush {
    /// Flushed before the answer (with durable commits on): new messages, devices, events,
    /// webhook cursors, everything a caller was promised.
    Required,
    /// Delivery bookkeeping whose loss in a power cut only means sending again: claims,
    /// provider answers, releases. Flushed by the next flushed commit, within
    /// [`DEFERRED_FLUSH_WITHIN`].
    Deferred,
}

/// A boxed future borrowing the connection and the job's input for `'c`.
pub(super) type JobFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// The work of a job: the SQL it runs on the writer's connection, given its input. A plain
/// function so that it can run again (a cycle may run a job more than once, rolled back).
pub(super) type Work<D, T> = for<'c> fn(&'c mut SqliteConnection, &'c D) -> JobFuture<'c, T>;

/// The work of a batch job: stores every input given, in order, and answers one result per
/// input; all or nothing (an error undoes the whole batch, which is then retried split).
pub(super) type BatchWork<D, T> =
    for<'c> fn(&'c mut SqliteConnection, &'c [D]) -> JobFuture<'c, Vec<T>>;

/// What makes two batch jobs mergeable: their types and the name of their work.
type BatchKind = (TypeId, &'static str);

/// A queued job with its typed input and answer, seen through the cycle's untyped view.
trait Job: Send + Any {
    /// Runs the job inside the cycle's transaction and keeps its result for the answer;
    /// false when it failed.
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>>;
    /// Forgets the kept result (its transaction was rolled back).
    fn forget(&mut self);
    /// Sends the kept result (after its transaction committed, or when it failed).
    fn answer(self: Box<Self>);
    /// Sends `err` instead of a result.
    fn fail(self: Box<Self>, err: StoreError);
    /// The callers this job answers.
    fn size(&self) -> usize {
        1
    }
    /// Whether its commit must be flushed before the answer.
    fn flush(&self) -> Flush {
        Flush::Required
    }
    /// Which batch jobs this one can merge with; `None` for a job that runs alone.
    fn batch_kind(&self) -> Option<BatchKind> {
        None
    }
    /// Takes in another job of the same [`Job::batch_kind`].
    fn absorb(&mut self, _other: Box<dyn Job>) {}
    /// The job as one job per caller.
    fn split(self: Box<Self>) -> Vec<Box<dyn Job>>;
    /// For [`Job::absorb`]'s downcast.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// A job: input, work, result once run, and the caller waiting for it.
struct Typed<D, T> {
    input: D,
    work: Work<D, T>,
    flush: Flush,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<D: Send + Sync + 'static, T: Send + 'static> Job for Typed<D, T> {
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>> {
        Box::pin(async move {
            let out = (self.work)(conn, &self.input).await;
            let ok = out.is_ok();
            self.result = Some(out);
            ok
        })
    }

    fn forget(&mut self) {
        self.result = None;
    }

    fn answer(self: Box<Self>) {
        let out = self
            .result
            .unwrap_or_else(|| Err(StoreError::Corrupt("write job never ran".into())));
        let _ = self.reply.send(out);
    }

    fn fail(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err));
    }

    fn flush(&self) -> Flush {
        self.flush
    }

    fn split(self: Box<Self>) -> Vec<Box<dyn Job>> {
        vec![self]
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A batch job: the inputs of every caller merged into it, their work, the results once run,
/// and the callers waiting, in the order of the inputs.
struct Batched<D, T> {
    kind: &'static str,
    inputs: Vec<D>,
    work: BatchWork<D, T>,
    results: Option<Result<Vec<T>>>,
    replies: Vec<oneshot::Sender<Result<T>>>,
}

impl<D: Send + Sync + 'static, T: Send + 'static> Job for Batched<D, T> {
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>> {
        Box::pin(async move {
            let out = match (self.work)(conn, &self.inputs).await {
                Ok(out) if out.len() != self.inputs.len() => Err(StoreError::Corrupt(format!(
                    "batch write {} answered {} results for {} inputs",
                    self.kind,
                    out.len(),
                    self.inputs.len()
                ))),
                other => other,
            };
            let ok = out.is_ok();
            self.results = Some(out);
            ok
        })
    }

    fn forget(&mut self) {
        self.results = None;
    }

    fn answer(self: Box<Self>) {
        match self.results {
            Some(Ok(results)) => {
                for (reply, out) in self.replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(out));
                }
            }
            // Only a split batch (one input) is answered with its own error; a larger one
            // that failed was split and run again before any answer.
            Some(Err(err)) => fail_replies(self.kind, self.replies, err),
            None => {
                for reply in self.replies {
                    let _ = reply.send(Err(StoreError::Corrupt("write job never ran".into())));
                }
            }
        }
    }

    fn fail(self: Box<Self>, err: StoreError) {
        fail_replies(self.kind, self.replies, err);
    }

    fn size(&self) -> usize {
        self.inputs.len()
    }

    fn batch_kind(&self) -> Option<BatchKind> {
        Some((TypeId::of::<Self>(), self.kind))
    }

    fn absorb(&mut self, other: Box<dyn Job>) {
        // Callers check the kind first, so the downcast cannot fail; if it did, the other
        // job's callers would get "write answer lost" rather than a wrong answer.
        if let Ok(other) = other.into_any().downcast::<Self>() {
            let other = *other;
            self.inputs.extend(other.inputs);
            self.replies.extend(other.replies);
        }
    }

    fn split(self: Box<Self>) -> Vec<Box<dyn Job>> {
        let (kind, work) = (self.kind, self.work);
        self.inputs
            .into_iter()
            .zip(self.replies)
            .map(|(input, reply)| {
                Box::new(Batched {
                    kind,
                    inputs: vec![input],
                    work,
                    results: None,
                    replies: vec![reply],
                }) as Box<dyn Job>
            })
            .collect()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Answers the first caller of a failed batch with `err` and the others with an error saying
/// the batch failed as a whole (errors cannot be cloned).
fn fail_replies<T>(kind: &str, replies: Vec<oneshot::Sender<Result<T>>>, err: StoreError) {
    let mut replies = replies.into_iter();
    if let Some(first) = replies.next() {
        let _ = first.send(Err(err));
    }
    for reply in replies {
        let _ = reply.send(Err(StoreError::Corrupt(format!(
            "batch write {kind} failed as a whole"
        ))));
    }
}

/// Merges the batch jobs of each kind into the first of them (jobs in one cycle are
/// concurrent, so their order within it is free).
fn merge(jobs: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
    let mut merged: Vec<Box<dyn Job>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(kind) = job.batch_kind()
            && let Some(host) = merged.iter_mut().find(|j| j.batch_kind() == Some(kind))
        {
            host.absorb(job);
            continue;
        }
        merged.push(job);
    }
    merged
}

/// Splits every batch job back into one job per caller.
fn split(jobs: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
    jobs.into_iter().flat_map(|job| job.split()).collect()
}

/// The queue of waiting jobs and the turn to run a cycle.
pub(super) struct Writer {
    queue: Mutex<Vec<Box<dyn Job>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
    commits: AtomicU64,
    flushes: AtomicU64,
    jobs_done: AtomicU64,
    /// Whether commits are flushed at all (`durable_commits`).
    durable: bool,
    /// When the last flushed commit returned, and the last unflushed one.
    last_flush: Mutex<Instant>,
    last_unflushed: Mutex<Option<Instant>>,
    /// Whether a later flush of unflushed commits is scheduled ([`Writer::flush_later`]).
    flush_pending: std::sync::atomic::AtomicBool,
    /// Whether cycles keep a connection of their own (see the module); if not, each takes one
    /// from the pool.
    dedicated: bool,
    /// The connection every cycle runs on, taken out of the pool once; empty before the first
    /// cycle and after one whose transaction failed (the next takes a fresh one).
    own: Mutex<Option<SqliteConnection>>,
}

/// The connection a cycle runs on: the writer's own, or one borrowed from the pool.
enum CycleConnection {
    Own(SqliteConnection),
    Pooled(PoolConnection<Sqlite>),
}

impl CycleConnection {
    fn get(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Own(conn) => conn,
            Self::Pooled(conn) => conn,
        }
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("waiting", &self.queue.lock().len())
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .finish()
    }
}

impl Writer {
    /// A writer whose commits are flushed (`synchronous=FULL`) when `durable`, as
    /// [`Flush`] says; never when not. With `dedicated`, cycles run on a connection the
    /// writer takes out of the pool for good (see the module); without it (a database that
    /// exists only in its one pooled connection, in memory), on whichever the pool lends.
    pub(super) fn new(durable: bool, dedicated: bool) -> Self {
        Self {
            queue: Mutex::default(),
            turn: Arc::default(),
            commits: AtomicU64::default(),
            flushes: AtomicU64::default(),
            jobs_done: AtomicU64::default(),
            durable,
            last_flush: Mutex::new(Instant::now()),
            last_unflushed: Mutex::new(None),
            flush_pending: Default::default(),
            dedicated,
            own: Mutex::default(),
        }
    }

    /// The connection for the next cycle: the writer's own (taken from the pool the first
    /// time), or a pooled one.
    async fn connection(&self, pool: &SqlitePool) -> Result<CycleConnection> {
        if !self.dedicated {
            return Ok(CycleConnection::Pooled(pool.acquire().await?));
        }
        if let Some(conn) = self.own.lock().take() {
            return Ok(CycleConnection::Own(conn));
        }
        let mut conn = pool.acquire().await?.detach();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA cache_size = -{WRITER_CACHE_KIB};
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};
             PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}"
        )))
        .execute(&mut conn)
        .await?;
        Ok(CycleConnection::Own(conn))
    }

    /// Keeps a cycle's connection for the next cycle, unless its transaction failed (then
    /// the next cycle starts on a fresh one).
    fn keep(&self, conn: CycleConnection, healthy: bool) {
        if let (CycleConnection::Own(conn), true) = (conn, healthy) {
            *self.own.lock() = Some(conn);
        }
    }

    /// Closes the writer's own connection, on the store's close (the pool closes after it),
    /// once the cycle running, if any, has committed: closing the pool used to wait for it,
    /// but this connection is not the pool's.
    pub(super) async fn close(&self) {
        let _turn = self.turn.lock().await;
        let own = self.own.lock().take();
        if let Some(conn) = own
            && let Err(e) = conn.close().await
        {
            tracing::warn!(error = %e, "cannot close the writer's connection");
        }
    }

    /// Transactions this writer committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Commits of this writer that were flushed so far.
    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Jobs this writer ran to an answer so far.
    pub(super) fn jobs(&self) -> u64 {
        self.jobs_done.load(Ordering::Relaxed)
    }

    /// Queues a job and returns its answer once the transaction holding it committed (and,
    /// for [`Flush::Required`] with durable commits, was flushed).
    pub(super) async fn write<D, T>(
        self: &Arc<Self>,
        pool: &SqlitePool,
        flush: Flush,
        input: D,
        work: Work<D, T>,
    ) -> Result<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Typed {
            input,
            work,
            flush,
            result: None,
            reply,
        });
        self.submit(pool, job, answer).await
    }

    /// Queues an input of a batch job (see [`BatchWork`]): every such input waiting when a
    /// cycle starts is stored by one run of `work`. `kind` names the work; inputs of one kind
    /// must always come with the same `work`.
    pub(super) async fn write_batched<D, T>(
        self: &Arc<Self>,
        pool: &SqlitePool,
        kind: &'static str,
        input: D,
        work: BatchWork<D, T>,
    ) -> Result<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Batched {
            kind,
            inputs: vec![input],
            work,
            results: None,
            replies: vec![reply],
        });
        self.submit(pool, job, answer).await
    }

    /// Queues `job` and leads cycles until one of them answered it.
    async fn submit<T>(
        self: &Arc<Self>,
        pool: &SqlitePool,
        job: Box<dyn Job>,
        mut answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        self.queue.lock().push(job);
        loop {
            // Whichever comes first: a cycle that ran meanwhile answers us, or the turn to
            // lead the next cycle is ours.
            let turn = tokio::select! {
                biased;
                out = &mut answer => {
                    return out.unwrap_or_else(|_| Err(StoreError::Corrupt("write answer lost".into())));
                }
                turn = self.turn.clone().lock_owned() => turn,
            };
            match answer.try_recv() {
                Ok(out) => return out,
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(StoreError::Corrupt("write answer lost".into()));
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let jobs = {
                let mut queue = self.queue.lock();
                let n = queue.len().min(MAX_CYCLE);
                queue.drain(..n).collect::<Vec<_>>()
            };
            let this = self.clone();
            let pool = pool.clone();
            // On a task of its own: dropping this caller must not abandon the others' jobs.
            let cycle = tokio::spawn(async move {
                this.cycle(&pool, jobs).await;
                drop(turn);
            });
            let _ = cycle.await;
            // Ours was among them unless more than a cycle's worth queued before it.
            if let Ok(out) = answer.try_recv() {
                return out;
            }
        }
    }

    /// Stores `jobs` and answers each of them.
    async fn cycle(self: &Arc<Self>, pool: &SqlitePool, jobs: Vec<Box<dyn Job>>) {
        if jobs.is_empty() {
            return;
        }
        let n = jobs.iter().map(|job| job.size() as u64).sum();
        let jobs = merge(jobs);
        match self.connection(pool).await {
            Ok(mut conn) => {
                let healthy = self.run_cycle(conn.get(), jobs).await;
                self.keep(conn, healthy);
            }
            Err(err) => {
                // The first job gets the pool's own error (closed, or cannot connect).
                let what = err.to_string();
                let mut err = Some(err);
                for job in split(jobs) {
                    job.fail(err.take().unwrap_or_else(|| {
                        StoreError::Corrupt(format!("no connection to write on: {what}"))
                    }));
                }
            }
        }
        self.jobs_done.fetch_add(n, Ordering::Relaxed);
        if self.last_unflushed.lock().is_some() {
            self.flush_later(pool);
        }
    }

    /// Runs a cycle's jobs on `conn`: together, then with savepoints, then each alone (see
    /// the module); false when a transaction itself failed.
    async fn run_cycle(&self, conn: &mut SqliteConnection, mut jobs: Vec<Box<dyn Job>>) -> bool {
        let begin = self.begin_for(&jobs);
        match together(&mut *conn, begin, &mut jobs, false).await {
            Ok(true) => {
                self.committed(begin, jobs);
                true
            }
            Ok(false) => {
                let mut jobs = split(jobs);
                for job in &mut jobs {
                    job.forget();
                }
                match together(&mut *conn, begin, &mut jobs, true).await {
                    Ok(_) => {
                        self.committed(begin, jobs);
                        true
                    }
                    Err(_) => self.each_alone(conn, jobs).await,
                }
            }
            Err(_) => self.each_alone(conn, split(jobs)).await,
        }
    }

    /// How a cycle of `jobs` starts: flushed if durable commits are on and a job needs it or
    /// the last flushed commit is [`DEFERRED_FLUSH_WITHIN`] old.
    fn begin_for(&self, jobs: &[Box<dyn Job>]) -> &'static str {
        let flushed = self.durable
            && (jobs.iter().any(|job| job.flush() == Flush::Required)
                || self.last_flush.lock().elapsed() >= DEFERRED_FLUSH_WITHIN);
        if flushed {
            BEGIN_FLUSHED
        } else {
            BEGIN_UNFLUSHED
        }
    }

    /// Answers every job of a committed transaction.
    fn committed(&self, begin: &'static str, jobs: Vec<Box<dyn Job>>) {
        if begin == BEGIN_FLUSHED {
            *self.last_flush.lock() = Instant::now();
            *self.last_unflushed.lock() = None;
            self.flushes.fetch_add(1, Ordering::Relaxed);
        } else if self.durable {
            *self.last_unflushed.lock() = Some(Instant::now());
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        for job in jobs {
            job.answer();
        }
    }

    /// Makes sure unflushed commits reach the disk within [`DEFERRED_FLUSH_WITHIN`] even when
    /// no flushed commit follows (the gateway went quiet): unless a flushed commit came
    /// meanwhile, a passive checkpoint then syncs the write-ahead log, which holds them.
    fn flush_later(self: &Arc<Self>, pool: &SqlitePool) {
        if self.flush_pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let (this, pool) = (self.clone(), pool.clone());
        tokio::spawn(async move {
            tokio::time::sleep(DEFERRED_FLUSH_WITHIN).await;
            this.flush_pending.store(false, Ordering::SeqCst);
            let Some(marked) = *this.last_unflushed.lock() else {
                return;
            };
            match sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                Ok(_) => {
                    // A commit that came during the checkpoint keeps its mark (and the timer
                    // it started).
                    let mut unflushed = this.last_unflushed.lock();
                    if *unflushed == Some(marked) {
                        *unflushed = None;
                    }
                    *this.last_flush.lock() = Instant::now();
                    this.flushes.fetch_add(1, Ordering::Relaxed);
                }
                // The next flushed commit or checkpoint flushes them instead.
                Err(e) => tracing::warn!(error = %e, "cannot flush the write-ahead log"),
            }
        });
    }

    /// The last resort: each job in a transaction of its own; false when a transaction
    /// itself failed.
    async fn each_alone(&self, conn: &mut SqliteConnection, jobs: Vec<Box<dyn Job>>) -> bool {
        let mut healthy = true;
        for mut job in jobs {
            job.forget();
            let mut one = vec![job];
            let begin = self.begin_for(&one);
            match together(&mut *conn, begin, &mut one, false).await {
                Ok(true) => self.committed(begin, one),
                // The job failed: its transaction was rolled back, its error is kept.
                Ok(false) => one.into_iter().for_each(|job| job.answer()),
                Err(err) => {
                    healthy = false;
                    if let Some(job) = one.pop() {
                        job.fail(err);
                    }
                }
            }
        }
        healthy
    }
}

/// Runs `jobs` in one transaction started with `begin`. Without savepoints, the first failing job rolls the whole
/// transaction back (`Ok(false)`); with them, a failing job's writes alone are undone and the
/// transaction commits (`Ok(true)`). `Err` when the transaction itself failed.
async fn together(
    conn: &mut SqliteConnection,
    begin: &'static str,
    jobs: &mut [Box<dyn Job>],
    savepoints: bool,
) -> Result<bool> {
    let mut tx = conn.begin_with(begin).await?;
    for job in jobs.iter_mut() {
        if savepoints {
            sqlx::raw_sql("SAVEPOINT job").execute(&mut *tx).await?;
        }
        let ok = job.run(&mut tx).await;
        if savepoints {
            let end = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            sqlx::raw_sql(end).execute(&mut *tx).await?;
        } else if !ok {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}
