//! One channel's delivery loop: claim due work with a lease, send it in the protocol's
//! batches with at most the channel's capacity in flight, and commit every answer with its
//! effects. On shutdown it stops claiming, lets sends finish for a grace period, and hands
//! back (releases) whatever is still unanswered.
//!
//! Two windows bound the work: the channel's capacity of requests at the provider (a batch
//! holds its share from before the request until the answer), and the work sent but not yet
//! recorded, one batch larger (held from before the request until the answers' commit).
//! The extra batch lets the loop claim and send the next batch while the last one's
//! answers are being committed: the claim and the commit then meet in the same cycle of the
//! store's writer instead of taking turns, and the provider is not left idle during commits.
//! A crash can therefore make the gateway send again at most the capacity plus one batch.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use pushgate_proto::Outcome;
use pushgate_proto::token::short_token;
use pushgate_store::{Completion, Delivery, Release, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};
use uuid::Uuid;

use super::decide::{Decision, decide};
use super::status::ChannelStatus;
use crate::channel::Channel;
use crate::config::DeliverySettings;
use crate::event_wakeup::EventWakeup;
use crate::message::Payload;
use crate::metrics::{Metrics, QueueStep};

/// Payloads kept in memory per channel; beyond it the cache starts over.
const PAYLOAD_CACHE: usize = 4096;
/// How often a failed commit is retried before the work is left to its lease.
const COMMIT_ATTEMPTS: u32 = 5;

/// Everything one channel's loop needs.
pub(super) struct ChannelLoop {
    pub app: String,
    pub name: String,
    pub channel: Arc<dyn Channel>,
    pub store: Arc<dyn Store>,
    pub settings: DeliverySettings,
    pub wake: Arc<Notify>,
    pub stop: CancellationToken,
    pub status: Arc<ChannelStatus>,
    pub metrics: Arc<Metrics>,
    pub events_wakeup: EventWakeup,
}

/// Claimed deliveries not yet answered, by batch, so that shutdown can release them.
#[derive(Default)]
struct Unanswered {
    next: u64,
    batches: HashMap<u64, Vec<Release>>,
}

impl Unanswered {
    fn add(&mut self, deliveries: &[Delivery]) -> u64 {
        self.next += 1;
        let releases = deliveries
            .iter()
            .map(|d| Release {
                delivery_id: d.id,
                attempt: d.attempts,
            })
            .collect();
        self.batches.insert(self.next, releases);
        self.next
    }

    fn done(&mut self, batch: u64) {
        self.batches.remove(&batch);
    }

    fn drain(&mut self) -> Vec<Release> {
        self.batches.drain().flat_map(|(_, r)| r).collect()
    }
}

/// State shared by the loop and its batch tasks.
struct Shared {
    l: ChannelLoop,
    unanswered: Mutex<Unanswered>,
    pause_until: Mutex<Option<OffsetDateTime>>,
    failures: Mutex<u32>,
    payloads: Mutex<HashMap<Uuid, Arc<Payload>>>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn until(t: OffsetDateTime) -> Duration {
    let left = t - now();
    if left.is_positive() {
        Duration::try_from(left).unwrap_or(Duration::ZERO)
    } else {
        Duration::ZERO
    }
}

impl ChannelLoop {
    /// Runs until `stop` is cancelled, then drains as described in the module docs.
    pub(super) async fn run(self) {
        let span = info_span!("channel", app = %self.app, channel = %self.name);
        let shared = Arc::new(Shared {
            l: self,
            unanswered: Mutex::new(Unanswered::default()),
            pause_until: Mutex::new(None),
            failures: Mutex::new(0),
            payloads: Mutex::new(HashMap::new()),
        });
        run_loop(shared).instrument(span).await;
    }
}

/// The loop: sit out pauses, wait for room, claim due work, send it in batches; then drain.
async fn run_loop(shared: Arc<Shared>) {
    let l = &shared.l;
    let capacity = l.channel.capacity().max(1);
    let windows = Windows::new(capacity, l.channel.cost(l.channel.batch_size().max(1)));
    let (commits, committer) = committer(shared.clone());
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        if l.stop.is_cancelled() {
            break;
        }
        let paused = shared.pause_until.lock().is_some();
        if paused {
            if sit_out_pause(&shared).await.is_break() {
                break;
            }
            continue;
        }
        let Some(room) = wait_for_room(l, &windows).await else {
            break;
        };
        let claimed = match claim(l, room).await {
            Claimed::Work(claimed) => claimed,
            Claimed::Failed => continue,
            Claimed::Stopped => break,
        };
        if claimed.is_empty() {
            idle(l).await;
            continue;
        }
        prefetch_payloads(&shared, &claimed).await;
        let sending = Sending {
            windows: &windows,
            capacity,
            commits: &commits,
        };
        dispatch(&shared, claimed, &sending, &mut tasks).await;
    }
    finish(&shared, tasks, commits, committer).await;
}

/// Waits until the channel's pause is over (or the loop is stopped) and lifts it.
async fn sit_out_pause(shared: &Shared) -> ControlFlow<()> {
    let l = &shared.l;
    let paused = *shared.pause_until.lock();
    if let Some(t) = paused
        && t > now()
    {
        tokio::select! {
            _ = l.stop.cancelled() => return ControlFlow::Break(()),
            _ = tokio::time::sleep(until(t)) => {}
        }
    }
    *shared.pause_until.lock() = None;
    l.status.paused(None);
    ControlFlow::Continue(())
}

/// The loop's two windows (see the module docs), in the channel's cost units.
struct Windows {
    /// Requests at the provider: the channel's capacity.
    at_provider: Arc<Semaphore>,
    /// Work sent (or being sent) whose answers are not committed yet: one batch more.
    unrecorded: Arc<Semaphore>,
}

/// A batch's hold on both windows.
struct Held {
    at_provider: OwnedSemaphorePermit,
    unrecorded: OwnedSemaphorePermit,
}

impl Windows {
    fn new(capacity: usize, batch_cost: usize) -> Self {
        Self {
            at_provider: Arc::new(Semaphore::new(capacity)),
            unrecorded: Arc::new(Semaphore::new(capacity + batch_cost.clamp(1, capacity))),
        }
    }

    /// Takes `cost` of both windows, waiting until both have it; `None` once closed.
    async fn hold(&self, cost: u32) -> Option<Held> {
        let unrecorded = self
            .unrecorded
            .clone()
            .acquire_many_owned(cost)
            .await
            .ok()?;
        let at_provider = self
            .at_provider
            .clone()
            .acquire_many_owned(cost)
            .await
            .ok()?;
        Some(Held {
            at_provider,
            unrecorded,
        })
    }
}

/// Waits until both windows have room, so nothing is claimed that cannot be sent soon, and
/// returns how much the smaller one has; `None` when the loop is stopped.
async fn wait_for_room(l: &ChannelLoop, windows: &Windows) -> Option<usize> {
    tokio::select! {
        _ = l.stop.cancelled() => None,
        held = windows.hold(1) => {
            let held = held?;
            let free = windows
                .at_provider
                .available_permits()
                .min(windows.unrecorded.available_permits())
                + 1;
            drop(held);
            Some(free)
        }
    }
}

/// What one claim got.
enum Claimed {
    /// Due deliveries (maybe none).
    Work(Vec<Delivery>),
    /// The store failed; an idle poll has passed since.
    Failed,
    /// The loop was stopped while waiting after a failure.
    Stopped,
}

/// Claims as many due deliveries as `room` free permits can send; after a store error, waits
/// an idle poll before saying so.
async fn claim(l: &ChannelLoop, room: usize) -> Claimed {
    let batch = l.channel.batch_size().max(1);
    // Room in tokens: free permits, each worth batch/cost(batch) tokens.
    let per_permit = (batch / l.channel.cost(batch).max(1)).max(1);
    let limit = (room * per_permit)
        .min(l.settings.claim_batch as usize)
        .max(1) as u32;
    let started = std::time::Instant::now();
    let claimed = l
        .store
        .claim_due(&l.app, &l.name, now(), limit, l.settings.lease)
        .await;
    l.metrics
        .queue_step(&l.app, &l.name, QueueStep::Claim, started.elapsed());
    match claimed {
        Ok(c) => Claimed::Work(c),
        Err(e) => {
            warn!(error = %e, "cannot claim deliveries");
            l.status.error(now(), format!("claim failed: {e}"));
            tokio::select! {
                _ = l.stop.cancelled() => Claimed::Stopped,
                _ = tokio::time::sleep(l.settings.idle_poll) => Claimed::Failed,
            }
        }
    }
}

/// What sending batches needs from the loop: its windows and the committer's queue.
struct Sending<'a> {
    windows: &'a Windows,
    capacity: usize,
    commits: &'a mpsc::Sender<CommitJob>,
}

/// Cuts the claimed work into batches and starts one task per batch once both windows have
/// room for it; batches that cannot start (the loop is stopping) are released at once.
async fn dispatch(
    shared: &Arc<Shared>,
    claimed: Vec<Delivery>,
    sending: &Sending<'_>,
    tasks: &mut JoinSet<()>,
) {
    let l = &shared.l;
    for chunk in batches(claimed, l.channel.batch_size().max(1)) {
        let cost = l.channel.cost(chunk.len()).min(sending.capacity) as u32;
        let held = tokio::select! {
            _ = l.stop.cancelled() => None,
            held = sending.windows.hold(cost) => held,
        };
        let Some(held) = held else {
            release(l, &chunk).await;
            continue;
        };
        let id = shared.unanswered.lock().add(&chunk);
        let shared = shared.clone();
        let commits = sending.commits.clone();
        tasks.spawn(
            async move {
                send_batch(&shared, chunk, &commits, held.at_provider).await;
                shared.unanswered.lock().done(id);
                // Held until the answers are committed: at most the capacity and one batch
                // of work is ever sent but not recorded.
                drop(held.unrecorded);
            }
            .in_current_span(),
        );
    }
}

/// Shutdown: lets what is in flight finish within the grace period, then hands back what is
/// still unanswered.
async fn finish(
    shared: &Shared,
    mut tasks: JoinSet<()>,
    commits: mpsc::Sender<CommitJob>,
    committer: tokio::task::JoinHandle<()>,
) {
    let l = &shared.l;
    let grace = tokio::time::sleep(l.settings.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut grace => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    drop(commits);
    let _ = committer.await;
    let left = shared.unanswered.lock().drain();
    if !left.is_empty() {
        match l.store.release(&left, now()).await {
            Ok(n) => debug!(released = n, "released unanswered deliveries"),
            Err(e) => warn!(error = %e, "cannot release deliveries; their leases will run out"),
        }
    }
}

/// Waits for new work: a wake-up, the next due time, or the idle poll, whichever is first.
async fn idle(l: &ChannelLoop) {
    let next = l.store.next_due(&l.app, &l.name).await.ok().flatten();
    let wait = next.map_or(l.settings.idle_poll, |t| until(t).min(l.settings.idle_poll));
    tokio::select! {
        _ = l.stop.cancelled() => {}
        _ = l.wake.notified() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

/// Groups claimed deliveries by message (claim order kept) and cuts each group into batches.
fn batches(claimed: Vec<Delivery>, size: usize) -> Vec<Vec<Delivery>> {
    let mut by_message: Vec<(Uuid, Vec<Delivery>)> = Vec::new();
    for d in claimed {
        match by_message.iter_mut().find(|(m, _)| *m == d.message_id) {
            Some((_, list)) => list.push(d),
            None => by_message.push((d.message_id, vec![d])),
        }
    }
    let mut out = Vec::new();
    for (_, list) in by_message {
        let mut list = list.into_iter().peekable();
        while list.peek().is_some() {
            out.push(list.by_ref().take(size).collect());
        }
    }
    out
}

async fn release(l: &ChannelLoop, chunk: &[Delivery]) {
    let releases: Vec<Release> = chunk
        .iter()
        .map(|d| Release {
            delivery_id: d.id,
            attempt: d.attempts,
        })
        .collect();
    if let Err(e) = l.store.release(&releases, now()).await {
        warn!(error = %e, "cannot release deliveries; their leases will run out");
    }
}

/// Why a claimed batch's message cannot be sent now.
enum Unsendable {
    /// The store could not be read (the database away, say): the batch is left to its
    /// leases, and sent again once they run out.
    StoreAway(String),
    /// The message is gone or cannot be decoded: its deliveries fail for good.
    Unreadable(String),
}

/// The payload of a message, from the cache or the store.
async fn payload(shared: &Shared, id: Uuid) -> Result<Arc<Payload>, Unsendable> {
    if let Some(p) = shared.payloads.lock().get(&id) {
        return Ok(p.clone());
    }
    let stored = match shared.l.store.get_message(id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return Err(Unsendable::Unreadable(format!("message {id} is gone"))),
        Err(e @ StoreError::Corrupt(_)) => {
            return Err(Unsendable::Unreadable(format!(
                "stored message {id} is unreadable: {e}"
            )));
        }
        Err(e) => {
            return Err(Unsendable::StoreAway(format!(
                "cannot read message {id}: {e}"
            )));
        }
    };
    let p = Arc::new(Payload::from_json(&stored.payload).map_err(|e| {
        Unsendable::Unreadable(format!("stored payload of {id} is unreadable: {e}"))
    })?);
    let mut cache = shared.payloads.lock();
    if cache.len() >= PAYLOAD_CACHE {
        cache.clear();
    }
    cache.insert(id, p.clone());
    Ok(p)
}

/// Sends one batch (one message, several tokens), gives its place at the provider back, and
/// hands the answers to the committer, returning once they are committed (or given up on).
async fn send_batch(
    shared: &Shared,
    chunk: Vec<Delivery>,
    commits: &mpsc::Sender<CommitJob>,
    at_provider: OwnedSemaphorePermit,
) {
    let l = &shared.l;
    let Some(first) = chunk.first() else { return };
    let outcomes = match payload(shared, first.message_id).await {
        Ok(p) => send_to_provider(l, &chunk, p).await,
        Err(Unsendable::StoreAway(problem)) => {
            // Nothing reached the provider: no answer to record (the store is likely away
            // for that too). The leases run out and the deliveries are claimed again. Claims
            // may still work while reads fail: the loop waits a poll before claiming more,
            // rather than leasing out its whole backlog batch after batch.
            warn!(%problem, deliveries = chunk.len(), "cannot send; the deliveries wait for their leases to run out");
            l.status.error(now(), problem);
            let until = now() + l.settings.idle_poll;
            let mut pause = shared.pause_until.lock();
            *pause = Some(pause.map_or(until, |old| old.max(until)));
            return;
        }
        Err(Unsendable::Unreadable(problem)) => {
            warn!(%problem, "cannot send");
            vec![
                Outcome::MessageRejected {
                    reason: "stored message unreadable".into()
                };
                chunk.len()
            ]
        }
    };
    drop(at_provider);
    let failures = *shared.failures.lock();
    let decision = decide(&chunk, outcomes, now(), &l.settings, failures);
    record_channel_state(shared, &decision);
    let (done, committed) = oneshot::channel();
    if commits.send((decision.completions, done)).await.is_ok() {
        let _ = committed.await;
    }
}

/// Sends `p` to the batch's tokens with what is left of its TTL, counting and timing it.
async fn send_to_provider(l: &ChannelLoop, chunk: &[Delivery], p: Arc<Payload>) -> Vec<Outcome> {
    let first = &chunk[0];
    // The provider gets what is left of the TTL, not the whole of it again.
    let left = u32::try_from((first.deadline - now()).whole_seconds().max(0)).unwrap_or(0);
    let p = if left < p.ttl_secs {
        Arc::new(Payload {
            ttl_secs: left,
            ..(*p).clone()
        })
    } else {
        p
    };
    let tokens: Vec<String> = chunk.iter().map(|d| d.token.clone()).collect();
    l.status
        .attempted
        .fetch_add(tokens.len() as u64, Ordering::Relaxed);
    let span = info_span!(
        "batch",
        message = %first.message_id,
        tokens = tokens.len(),
        first = %short_token(&tokens[0]),
    );
    let started = std::time::Instant::now();
    let outcomes = l.channel.send(&p, &tokens).instrument(span).await;
    l.metrics
        .provider(&l.app, &l.name, started.elapsed(), &outcomes);
    l.metrics
        .activity()
        .record(&l.app, &l.name, chunk, &outcomes, now());
    outcomes
}

/// What a batch's decision means for the channel: its run of whole-channel failures, its
/// last error and its pause.
fn record_channel_state(shared: &Shared, decision: &Decision) {
    let l = &shared.l;
    {
        let mut f = shared.failures.lock();
        *f = if decision.channel_failed { *f + 1 } else { 0 };
    }
    if decision.channel_failed
        && let Some(c) = decision.completions.first()
    {
        let what = c.outcome.reason().unwrap_or("failed").to_string();
        warn!(reason = %what, "the provider failed the whole batch");
        l.status.error(now(), what);
    }
    if let Some(t) = decision.pause_until {
        let mut p = shared.pause_until.lock();
        let until = p.map_or(t, |old| old.max(t));
        *p = Some(until);
        l.status.paused(Some(until));
    }
}

/// Answers waiting to be committed, and who to tell.
type CommitJob = (Vec<Completion>, oneshot::Sender<()>);

/// Most answers one commit records: answers that arrive while a commit runs are grouped into
/// the next one, so many small batches (single-device messages) share a transaction.
const COMMIT_GROUP: usize = 2000;

/// Starts the channel's committer; it ends once every sender is dropped.
fn committer(shared: Arc<Shared>) -> (mpsc::Sender<CommitJob>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<CommitJob>(1024);
    let task = tokio::spawn(
        async move {
            while let Some(first) = rx.recv().await {
                let mut completions = first.0;
                let mut waiting = vec![first.1];
                while completions.len() < COMMIT_GROUP {
                    match rx.try_recv() {
                        Ok((more, done)) => {
                            completions.extend(more);
                            waiting.push(done);
                        }
                        Err(_) => break,
                    }
                }
                commit(&shared.l, completions).await;
                for done in waiting {
                    let _ = done.send(());
                }
            }
        }
        .in_current_span(),
    );
    (tx, task)
}

/// Reads, in one query, the payloads of claimed messages that are not cached yet.
async fn prefetch_payloads(shared: &Shared, claimed: &[Delivery]) {
    let missing: Vec<Uuid> = {
        let cache = shared.payloads.lock();
        let mut ids: Vec<Uuid> = claimed
            .iter()
            .map(|d| d.message_id)
            .filter(|id| !cache.contains_key(id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    if missing.is_empty() {
        return;
    }
    match shared.l.store.get_messages(&missing).await {
        Ok(found) => {
            let mut cache = shared.payloads.lock();
            if cache.len() + found.len() > PAYLOAD_CACHE {
                cache.clear();
            }
            for m in found {
                match Payload::from_json(&m.payload) {
                    Ok(p) => {
                        cache.insert(m.id, Arc::new(p));
                    }
                    Err(e) => warn!(message = %m.id, error = %e, "stored payload unreadable"),
                }
            }
        }
        // Each batch then reads its own payload (and reports what fails).
        Err(e) => warn!(error = %e, "cannot read payloads"),
    }
}

/// Records answers, retrying a failed commit a few times; if it never succeeds the leases run
/// out and the work is sent again (at-least-once).
async fn commit(l: &ChannelLoop, completions: Vec<Completion>) {
    let n = completions.len() as u64;
    for attempt in 1..=COMMIT_ATTEMPTS {
        let started = std::time::Instant::now();
        let recorded = l.store.complete(completions.clone(), now()).await;
        l.metrics
            .queue_step(&l.app, &l.name, QueueStep::Commit, started.elapsed());
        match recorded {
            Ok(_) => {
                l.status.completed.fetch_add(n, Ordering::Relaxed);
                // Answers may have written events (rotations, failures).
                l.events_wakeup.notify();
                return;
            }
            Err(e) => {
                warn!(error = %e, attempt, "cannot record answers");
                l.status.error(now(), format!("commit failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_store::DeliveryState;

    fn d(id: i64, message: u128) -> Delivery {
        let t = OffsetDateTime::UNIX_EPOCH;
        Delivery {
            id,
            message_id: Uuid::from_u128(message),
            app: "a".into(),
            device_id: None,
            token: format!("t{id}"),
            channel: "c".into(),
            state: DeliveryState::InFlight,
            attempts: 1,
            due_at: t,
            lease_until: None,
            deadline: t,
            provider_message_id: None,
            error_code: None,
            updated_at: t,
        }
    }

    #[test]
    fn batches_group_by_message_and_respect_the_size() {
        let claimed = vec![d(1, 1), d(2, 2), d(3, 1), d(4, 1), d(5, 2)];
        let out = batches(claimed, 2);
        let ids: Vec<Vec<i64>> = out
            .iter()
            .map(|b| b.iter().map(|d| d.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3], vec![4], vec![2, 5]]);
    }
}
