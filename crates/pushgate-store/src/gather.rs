//! Group commit for calls that can be stored together: concurrent callers queue their inputs,
//! and whichever caller finds a turn free leads, taking every input waiting into one run (one
//! transaction, one commit) and answering each caller from it. Callers arriving meanwhile
//! queue for the next run, so none waits longer than the runs in progress when it came plus
//! its own; with several turns, that many runs proceed at once.
//!
//! An input is stored even if its caller gave up waiting (its client went away) before the
//! run that takes it: as with any write whose answer was lost, a retry carrying the same
//! idempotency key is answered with the stored message.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Semaphore, oneshot};

use crate::{Result, StoreError};

/// A queue of inputs waiting for a run, and the turns to lead one.
pub(crate) struct Gather<I, O> {
    queue: Mutex<Vec<(I, oneshot::Sender<Result<O>>)>>,
    turns: Arc<Semaphore>,
    /// Most inputs one run takes.
    max: usize,
}

impl<I, O> std::fmt::Debug for Gather<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather")
            .field("waiting", &self.queue.lock().len())
            .field("free_turns", &self.turns.available_permits())
            .finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> Gather<I, O> {
    /// At most `turns` runs at once, each of at most `max` inputs.
    pub(crate) fn new(turns: usize, max: usize) -> Self {
        Self {
            queue: Mutex::default(),
            turns: Arc::new(Semaphore::new(turns.max(1))),
            max: max.max(1),
        }
    }

    /// Queues `input` and returns its answer: from a run this caller leads, or one another
    /// caller led. `run` stores the inputs it is given and answers one result per input, in
    /// order; it runs on a task of its own, so that a caller giving up never abandons the
    /// others' inputs.
    pub(crate) async fn submit<F, Fut>(&self, input: I, run: F) -> Result<O>
    where
        F: Fn(Vec<I>) -> Fut,
        Fut: Future<Output = Vec<Result<O>>> + Send + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        self.queue.lock().push((input, reply));
        loop {
            let turn = tokio::select! {
                biased;
                out = &mut answer => return out.unwrap_or_else(|_| Err(lost())),
                turn = self.turns.clone().acquire_owned() => turn,
            };
            let Ok(turn) = turn else {
                // The semaphore is never closed; if it were, the inputs would wait forever.
                return Err(StoreError::Corrupt("write turns closed".into()));
            };
            let batch = {
                let mut queue = self.queue.lock();
                let n = queue.len().min(self.max);
                queue.drain(..n).collect::<Vec<_>>()
            };
            if batch.is_empty() {
                // Ours is in a run another caller leads.
                drop(turn);
                return answer.await.unwrap_or_else(|_| Err(lost()));
            }
            let (inputs, replies): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
            let work = run(inputs);
            let led = tokio::spawn(async move {
                answer_all(replies, work.await);
                drop(turn);
            });
            let _ = led.await;
            // Ours was among them unless more than a run's worth queued before it.
            match answer.try_recv() {
                Ok(out) => return out,
                Err(oneshot::error::TryRecvError::Closed) => return Err(lost()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
    }
}

/// Sends each caller its result; all of them an error if the run answered a wrong count.
fn answer_all<O>(replies: Vec<oneshot::Sender<Result<O>>>, outs: Vec<Result<O>>) {
    if outs.len() != replies.len() {
        let why = format!(
            "a batch write answered {} results for {} inputs",
            outs.len(),
            replies.len()
        );
        for reply in replies {
            let _ = reply.send(Err(StoreError::Corrupt(why.clone())));
        }
        return;
    }
    for (reply, out) in replies.into_iter().zip(outs) {
        let _ = reply.send(out);
    }
}

fn lost() -> StoreError {
    StoreError::Corrupt("write answer lost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Callers arriving while a run is in progress share the next one, and each gets its own
    /// answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_runs_and_get_their_own_answers() {
        let gather = Arc::new(Gather::<u32, u32>::new(1, 1000));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for i in 0..200u32 {
            let (gather, runs) = (gather.clone(), runs.clone());
            calls.push(tokio::spawn(async move {
                gather
                    .submit(i, |inputs| {
                        let runs = runs.clone();
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            inputs.into_iter().map(|i| Ok(i * 2)).collect()
                        }
                    })
                    .await
            }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), i as u32 * 2);
        }
        let runs = runs.load(Ordering::SeqCst);
        assert!(runs < 200, "{runs} runs for 200 callers");
    }

    /// A run that answers the wrong number of results fails its callers instead of
    /// answering one with another's result.
    #[tokio::test]
    async fn a_wrong_count_of_results_fails_the_callers() {
        let gather = Gather::<u32, u32>::new(1, 10);
        let out = gather
            .submit(1, |_| async { vec![Ok(1), Ok(2)] })
            .await
            .unwrap_err();
        assert!(out.to_string().contains("2 results for 1 inputs"), "{out}");
    }
}
