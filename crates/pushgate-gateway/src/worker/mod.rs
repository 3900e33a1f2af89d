//! Delivery workers: one loop per app and channel (a bulkhead per credential), woken when
//! new work is stored (by this instance, or announced by the store for any instance) and
//! polling for work that becomes due.

mod announced;
mod channel_loop;
mod decide;
mod status;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use pushgate_store::Store;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use decide::{AUTH_PAUSE, Decision, after, decide, retry_policy};
pub use status::{ChannelStatus, StatusView};

use crate::channel::Channel;
use crate::config::DeliverySettings;
use crate::event_wakeup::EventWakeup;
use crate::metrics::Metrics;
use crate::reload::KeyedTasks;
use channel_loop::ChannelLoop;

/// The channels of every app, with what their workers share with the API. Clones share one
/// table, so that a reload's added and removed channels are seen by every holder (API,
/// workers, heartbeat) at once.
#[derive(Clone, Default)]
pub struct ChannelSet {
    by_key: Arc<RwLock<HashMap<(String, String), ChannelEntry>>>,
}

/// One channel with its wake-up and status.
#[derive(Clone)]
pub struct ChannelEntry {
    /// The sender.
    pub channel: Arc<dyn Channel>,
    /// Notified when new work for the channel is stored.
    pub wake: Arc<Notify>,
    /// What its worker reports.
    pub status: Arc<ChannelStatus>,
}

impl ChannelSet {
    /// Adds (or replaces) a channel of an app and returns its entry.
    pub fn insert(&self, app: &str, name: &str, channel: Arc<dyn Channel>) -> ChannelEntry {
        let entry = ChannelEntry {
            channel,
            wake: Arc::new(Notify::new()),
            status: Arc::new(ChannelStatus::default()),
        };
        self.by_key
            .write()
            .insert((app.to_string(), name.to_string()), entry.clone());
        entry
    }

    /// Removes the channel `name` of `app` (a reload dropped it).
    pub fn remove(&self, app: &str, name: &str) -> Option<ChannelEntry> {
        self.by_key
            .write()
            .remove(&(app.to_string(), name.to_string()))
    }

    /// The channel `name` of `app`.
    pub fn get(&self, app: &str, name: &str) -> Option<ChannelEntry> {
        self.by_key
            .read()
            .get(&(app.to_string(), name.to_string()))
            .cloned()
    }

    /// Wakes the worker of one channel (new work was stored for it).
    pub fn wake(&self, app: &str, channel: &str) {
        if let Some(entry) = self.get(app, channel) {
            entry.wake.notify_one();
        }
    }

    /// Every (app, channel name, entry) as they are now.
    pub fn iter(&self) -> std::vec::IntoIter<(String, String, ChannelEntry)> {
        let snapshot: Vec<_> = self
            .by_key
            .read()
            .iter()
            .map(|((a, n), e)| (a.clone(), n.clone(), e.clone()))
            .collect();
        snapshot.into_iter()
    }
}

/// What every channel loop shares, to start loops after the first ones (reload).
#[derive(Clone)]
struct LoopContext {
    store: Arc<dyn Store>,
    settings: DeliverySettings,
    metrics: Arc<Metrics>,
    events_wakeup: EventWakeup,
}

/// The running workers: one loop per channel, each stoppable on its own.
pub struct Workers {
    stop: CancellationToken,
    context: LoopContext,
    loops: KeyedTasks<(String, String)>,
    follower: JoinHandle<()>,
}

impl Workers {
    /// Starts one loop per channel.
    pub fn start(
        channels: &ChannelSet,
        store: Arc<dyn Store>,
        settings: &DeliverySettings,
        metrics: Arc<Metrics>,
        events_wakeup: EventWakeup,
    ) -> Self {
        let stop = CancellationToken::new();
        let follower = tokio::spawn(announced::follow(
            store.clone(),
            channels.clone(),
            stop.clone(),
        ));
        let mut workers = Self {
            stop,
            context: LoopContext {
                store,
                settings: settings.clone(),
                metrics,
                events_wakeup,
            },
            loops: KeyedTasks::default(),
            follower,
        };
        for (app, name, entry) in channels.iter() {
            workers.add(&app, &name, &entry);
        }
        workers
    }

    /// Starts the loop of one channel (added by a reload, or restarted with new settings).
    pub fn add(&mut self, app: &str, name: &str, entry: &ChannelEntry) {
        let c = &self.context;
        let stop = self.stop.child_token();
        let l = ChannelLoop {
            app: app.to_string(),
            name: name.to_string(),
            channel: entry.channel.clone(),
            store: c.store.clone(),
            settings: c.settings.clone(),
            wake: entry.wake.clone(),
            stop: stop.clone(),
            status: entry.status.clone(),
            metrics: c.metrics.clone(),
            events_wakeup: c.events_wakeup.clone(),
        };
        self.loops
            .spawn((app.to_string(), name.to_string()), stop, l.run());
    }

    /// Stops one channel's loop as shutdown does (no new claims, in-flight sends finish
    /// within the grace period, the rest released) and returns when it has ended.
    pub async fn stop_channel(&mut self, app: &str, name: &str) {
        self.loops.stop(&(app.to_string(), name.to_string())).await;
    }

    /// Stops claiming, lets in-flight sends finish (up to the grace period), releases the
    /// rest, and returns when every loop has ended.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.loops.stop_all().await;
        let _ = self.follower.await;
    }
}
