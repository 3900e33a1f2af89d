//! A channel's running parts, for the start and for a reload alike: the sender built from its
//! settings, its entry in the shared [`ChannelSet`], and for a CCS channel the tasks beside
//! its worker (the upstream handler and the reopener that keeps it connected).

use std::sync::Arc;
use std::time::Duration;

use pushgate_client::ccs::Upstream;
use pushgate_store::Store;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::plan::ChannelKey;
use super::tasks::KeyedTasks;
use crate::channel::{self, Channel, ChannelError, ChannelHooks};
use crate::config::{ChannelSettings, ChannelSpec};
use crate::event_wakeup::EventWakeup;
use crate::metrics::Metrics;
use crate::upstream::UpstreamHandler;
use crate::worker::{ChannelEntry, ChannelSet};

/// Upstream items waiting for their handler, per CCS channel.
const UPSTREAM_QUEUE: usize = 256;
/// How often a persistent channel (CCS) is reopened after its connection was lost.
const REOPEN: Duration = Duration::from_secs(5);

/// A channel built from its settings, not yet running.
pub struct Prepared {
    app: String,
    name: String,
    channel: Arc<dyn Channel>,
    /// CCS: whether to echo upstream messages, and their feed.
    upstream: Option<(bool, mpsc::Receiver<Upstream>)>,
}

impl Prepared {
    /// Its (app, channel).
    pub fn key(&self) -> ChannelKey {
        (self.app.clone(), self.name.clone())
    }
}

/// Builds the sender of channel `spec` of `app`; nothing runs yet.
pub fn prepare(app: &str, spec: &ChannelSpec) -> Result<Prepared, ChannelError> {
    let mut hooks = ChannelHooks::default();
    let mut upstream = None;
    if let ChannelSettings::Ccs { echo, .. } = &spec.settings {
        let (tx, rx) = mpsc::channel(UPSTREAM_QUEUE);
        hooks.upstream = Some(tx);
        upstream = Some((*echo, rx));
    }
    Ok(Prepared {
        app: app.to_string(),
        name: spec.name.clone(),
        channel: channel::build(spec, hooks)?,
        upstream,
    })
}

/// What the tasks beside the workers share.
#[derive(Clone)]
pub struct ChannelRuntime {
    /// The durable state.
    pub store: Arc<dyn Store>,
    /// Every channel.
    pub channels: ChannelSet,
    /// Wakes event followers.
    pub events_wakeup: EventWakeup,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// TTL of echoed upstream messages, in seconds.
    pub echo_ttl: u32,
    /// Parent of every companion task's stop token (the gateway's background stop).
    pub stop: CancellationToken,
}

impl ChannelRuntime {
    /// Puts a prepared channel in the channel set (replacing one of the same name) and
    /// starts its companion tasks under its key; returns its entry for the worker.
    pub fn install(
        &self,
        prepared: Prepared,
        companions: &mut KeyedTasks<ChannelKey>,
    ) -> ChannelEntry {
        let Prepared {
            app,
            name,
            channel,
            upstream,
        } = prepared;
        let entry = self.channels.insert(&app, &name, channel);
        let key = (app.clone(), name.clone());
        if let Some((echo, rx)) = upstream {
            let stop = self.stop.child_token();
            let handler = UpstreamHandler {
                app: app.clone(),
                channel: name.clone(),
                echo,
                echo_ttl: self.echo_ttl,
                store: self.store.clone(),
                events_wakeup: self.events_wakeup.clone(),
                channels: self.channels.clone(),
                metrics: self.metrics.clone(),
                stop: stop.clone(),
            };
            companions.spawn(key.clone(), stop, handler.run(rx));
        }
        if entry.channel.is_persistent() {
            let stop = self.stop.child_token();
            companions.spawn(key, stop.clone(), keep_open(app, name, entry.clone(), stop));
        }
        entry
    }
}

/// Opens one persistent channel, and again after each loss, until `stop`.
async fn keep_open(app: String, name: String, entry: ChannelEntry, stop: CancellationToken) {
    loop {
        if let Err(e) = entry.channel.open().await {
            tracing::warn!(%app, channel = %name, error = %e, "cannot open the channel");
            entry.status.error(OffsetDateTime::now_utc(), e);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REOPEN) => {}
        }
    }
}
