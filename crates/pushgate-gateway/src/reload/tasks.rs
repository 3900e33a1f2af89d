//! Background tasks started and stopped one by one: a channel's delivery loop, a CCS
//! channel's upstream handler and reopener. A reload stops exactly the ones of a removed or
//! changed channel and waits for them, while the others run on.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tasks by key, each with the token that stops it.
pub struct KeyedTasks<K> {
    tasks: HashMap<K, Vec<(CancellationToken, JoinHandle<()>)>>,
}

impl<K> Default for KeyedTasks<K> {
    fn default() -> Self {
        Self {
            tasks: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> KeyedTasks<K> {
    /// Spawns `task`, which must end soon after `stop` is cancelled, under `key`.
    pub fn spawn<F>(&mut self, key: K, stop: CancellationToken, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        self.tasks.entry(key).or_default().push((stop, handle));
    }

    /// Stops every task of `key` and returns when they have ended.
    pub async fn stop(&mut self, key: &K) {
        for (stop, handle) in self.tasks.remove(key).unwrap_or_default() {
            stop.cancel();
            let _ = handle.await;
        }
    }

    /// Stops every task and returns when they have all ended.
    pub async fn stop_all(self) {
        let all: Vec<_> = self.tasks.into_values().flatten().collect();
        for (stop, _) in &all {
            stop.cancel();
        }
        for (_, handle) in all {
            let _ = handle.await;
        }
    }

    /// Like [`stop_all`](Self::stop_all), but aborts what has not ended within `limit`.
    pub async fn stop_all_within(self, limit: Duration) {
        let all: Vec<_> = self.tasks.into_values().flatten().collect();
        for (stop, _) in &all {
            stop.cancel();
        }
        let aborts: Vec<_> = all.iter().map(|(_, h)| h.abort_handle()).collect();
        let wait = async {
            for (_, handle) in all {
                let _ = handle.await;
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            aborts.iter().for_each(|a| a.abort());
        }
    }
}
