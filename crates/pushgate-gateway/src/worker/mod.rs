//! Delivery workers: one loop per app and channel (a bulkhead per credential), woken when
//! new work is stored (by this instance, or announced by the store for any instance) and
//! polling for work that becomes due.

mod announced;
mod channel_loop;
mod decide;
mod status;

use std::collections::HashMap;
use std::sync::Arc;

use pushgate_store::Store;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use decide::{AUTH_PAUSE, Decision, after, decide, retry_policy};
pub use status::{ChannelStatus, StatusView};

use crate::channel::Channel;
use crate::config::DeliverySettings;
use crate::event_wakeup::EventWakeup;
use crate::metrics::Metrics;
use channel_loop::ChannelLoop;

/// The channels of every app, with what their workers share with the API.
#[derive(Clone, Default)]
pub struct ChannelSet {
    by_key: HashMap<(String, String), ChannelEntry>,
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
    /// Adds a channel of an app.
    pub fn insert(&mut self, app: &str, name: &str, channel: Arc<dyn Channel>) {
        self.by_key.insert(
            (app.to_string(), name.to_string()),
            ChannelEntry {
                channel,
                wake: Arc::new(Notify::new()),
                status: Arc::new(ChannelStatus::default()),
            },
        );
    }

    /// The channel `name` of `app`.
    pub fn get(&self, app: &str, name: &str) -> Option<&ChannelEntry> {
        self.by_key.get(&(app.to_string(), name.to_string()))
    }

    /// Wakes the worker of one channel (new work was stored for it).
    pub fn wake(&self, app: &str, channel: &str) {
        if let Some(entry) = self.get(app, channel) {
            entry.wake.notify_one();
        }
    }

    /// Every (app, channel name, entry).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &ChannelEntry)> {
        self.by_key
            .iter()
            .map(|((a, n), e)| (a.as_str(), n.as_str(), e))
    }
}

/// The running workers.
pub struct Workers {
    stop: CancellationToken,
    tasks: JoinSet<()>,
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
        let mut tasks = JoinSet::new();
        for (app, name, entry) in channels.iter() {
            let l = ChannelLoop {
                app: app.to_string(),
                name: name.to_string(),
                channel: entry.channel.clone(),
                store: store.clone(),
                settings: settings.clone(),
                wake: entry.wake.clone(),
                stop: stop.clone(),
                status: entry.status.clone(),
                metrics: metrics.clone(),
                events_wakeup: events_wakeup.clone(),
            };
            tasks.spawn(l.run());
        }
        tasks.spawn(announced::follow(store, channels.clone(), stop.clone()));
        Self { stop, tasks }
    }

    /// Stops claiming, lets in-flight sends finish (up to the grace period), releases the
    /// rest, and returns when every loop has ended.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
