//! Reload without restart: on SIGHUP or `POST /v1/admin/reload`, the configuration is read
//! again exactly as at start (same file, environment and flags) and applied to the running
//! gateway. Added apps get their channels and workers; removed apps stop taking requests and
//! their workers stop as at shutdown (in-flight sends finish, the rest is released, stored
//! work stays); a changed channel's worker is restarted after its in-flight batch; a changed
//! webhook's sender is restarted from its stored cursor; key changes apply to the next
//! request. Settings that only take effect at start are reported
//! as needing a restart and left as they are. A configuration that does not validate is
//! refused and the running one kept.

pub mod channels;
pub mod plan;
mod signal;
mod tasks;
pub mod webhooks;

use std::sync::Arc;

use pushgate_store::StoreError;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub use signal::Hangups;
pub(crate) use signal::next as next_hangup;
pub use tasks::KeyedTasks;

use crate::api::Apps;
use crate::config::{ConfigError, GatewaySpec};
use crate::console::Console;
use crate::worker::Workers;
use channels::{ChannelRuntime, Prepared};
use plan::{ChannelKey, Plan};
use webhooks::WebhookRuntime;

/// Reads the configuration again as the gateway was started with it (file, environment,
/// command-line flags).
pub type ConfigSource = Arc<dyn Fn() -> Result<GatewaySpec, ConfigError> + Send + Sync>;

/// What a reload changed: the answer of `POST /v1/admin/reload` and the log line. Names and
/// counts only, never a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Apps that were added.
    pub apps_added: Vec<String>,
    /// Apps that were removed (their stored work stays).
    pub apps_removed: Vec<String>,
    /// Apps whose keys, channels or settings changed.
    pub apps_changed: Vec<String>,
    /// Channels started, as `app/channel`.
    pub channels_added: Vec<String>,
    /// Channels stopped, as `app/channel`.
    pub channels_removed: Vec<String>,
    /// Channels restarted with new settings, as `app/channel`.
    pub channels_restarted: Vec<String>,
    /// Apps whose webhook sender was started, stopped or restarted.
    pub webhooks_changed: Vec<String>,
    /// API keys added, removed or moved to another app.
    pub keys_changed: usize,
    /// Admin keys added or removed.
    pub admin_keys_changed: usize,
    /// Settings that changed in the file but need a restart; the running values stay.
    pub needs_restart: Vec<String>,
}

/// Why a reload was refused; the running configuration stays in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The gateway was started without a configuration file (the sandbox).
    #[error(
        "this gateway was started without a configuration file: there is nothing to read again"
    )]
    NoSource,
    /// The new configuration does not validate.
    #[error("{0}")]
    Invalid(String),
    /// The new apps and channels could not be recorded in the database.
    #[error("cannot record the new configuration in the database: {0}")]
    Store(#[source] StoreError),
    /// The gateway is shutting down.
    #[error("the gateway is stopping")]
    Stopping,
}

/// What a reload replaces, behind one lock so that reloads run one at a time.
struct Live {
    /// The configuration running now (start-only settings as they were at start).
    spec: GatewaySpec,
    workers: Workers,
    companions: KeyedTasks<ChannelKey>,
    /// Webhook senders, by app.
    webhooks: KeyedTasks<String>,
}

/// The parts of a running gateway that a reload changes.
pub struct Reloader {
    source: Option<ConfigSource>,
    runtime: ChannelRuntime,
    webhooks: WebhookRuntime,
    apps: Arc<Apps>,
    console: Arc<Console>,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("has_source", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// The reloader of a gateway started from `spec`.
    pub(crate) fn new(
        source: Option<ConfigSource>,
        spec: GatewaySpec,
        (runtime, webhooks): (ChannelRuntime, WebhookRuntime),
        (apps, console): (Arc<Apps>, Arc<Console>),
        (workers, companions, senders): (Workers, KeyedTasks<ChannelKey>, KeyedTasks<String>),
    ) -> Self {
        Self {
            source,
            runtime,
            webhooks,
            apps,
            console,
            live: Mutex::new(Some(Live {
                spec,
                workers,
                companions,
                webhooks: senders,
            })),
        }
    }

    /// Reads the configuration again and applies it; logs what changed or why nothing did.
    pub async fn reload(&self, why: &str) -> Result<ReloadReport, ReloadError> {
        let result = self.apply().await;
        match &result {
            Ok(r) => tracing::info!(
                trigger = why,
                apps_added = ?r.apps_added,
                apps_removed = ?r.apps_removed,
                apps_changed = ?r.apps_changed,
                channels_restarted = ?r.channels_restarted,
                webhooks_changed = ?r.webhooks_changed,
                keys_changed = r.keys_changed,
                admin_keys_changed = r.admin_keys_changed,
                needs_restart = ?r.needs_restart,
                "configuration reloaded"
            ),
            Err(ReloadError::NoSource) => {
                tracing::info!(trigger = why, "{}", ReloadError::NoSource)
            }
            Err(e) => tracing::error!(
                trigger = why,
                error = %e,
                "configuration not reloaded; the running one stays"
            ),
        }
        for setting in result.iter().flat_map(|r| &r.needs_restart) {
            tracing::warn!(%setting, "changed in the configuration; needs a restart, the running value stays");
        }
        result
    }

    /// Reloads at every SIGHUP counted by `hangups`, until `stop`.
    pub(crate) async fn follow(self: Arc<Self>, hangups: Hangups, stop: CancellationToken) {
        let mut rx = hangups.subscribe();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = next_hangup(&mut rx) => {
                    let _ = self.reload("SIGHUP").await;
                }
            }
        }
    }

    async fn apply(&self) -> Result<ReloadReport, ReloadError> {
        let source = self.source.as_ref().ok_or(ReloadError::NoSource)?;
        let read = source().map_err(|e| ReloadError::Invalid(redact_values(&e.to_string())))?;
        let mut guard = self.live.lock().await;
        let live = guard.as_mut().ok_or(ReloadError::Stopping)?;
        let plan = plan::plan(&live.spec, &read);
        let effective = effective_spec(&live.spec, read);
        // Build every new sender before touching anything: a channel that cannot be built
        // refuses the whole configuration.
        let mut prepared = Vec::new();
        for (app, name) in plan.channels_added.iter().chain(&plan.channels_changed) {
            let spec = effective
                .apps
                .iter()
                .find(|a| &a.name == app)
                .and_then(|a| a.channel(name))
                .ok_or_else(|| {
                    ReloadError::Invalid(format!("app {app}: channel {name} vanished"))
                })?;
            let built = channels::prepare(app, spec)
                .map_err(|e| ReloadError::Invalid(format!("app {app}: {e}")))?;
            prepared.push(built);
        }
        crate::service::record_apps(&effective, &*self.runtime.store)
            .await
            .map_err(ReloadError::Store)?;
        self.switch(live, &plan, prepared, &effective).await;
        live.spec = effective;
        Ok(report(plan))
    }

    /// Starts, restarts and stops channels and swaps the apps, keys and admin keys.
    async fn switch(
        &self,
        live: &mut Live,
        plan: &Plan,
        prepared: Vec<Prepared>,
        effective: &GatewaySpec,
    ) {
        // New and changed channels first, so that a new app's requests find their
        // channels; a changed channel's old worker finishes its in-flight batch first.
        for p in prepared {
            let (app, name) = p.key();
            if plan.channels_changed.contains(&(app.clone(), name.clone())) {
                live.companions.stop(&(app.clone(), name.clone())).await;
                live.workers.stop_channel(&app, &name).await;
            }
            let entry = self.runtime.install(p, &mut live.companions);
            live.workers.add(&app, &name, &entry);
        }
        // Webhooks before the apps swap, so that a new app's cursor exists before its first
        // request can write an event.
        for name in &plan.webhooks_changed {
            live.webhooks.stop(name).await;
            let nudge = match effective.apps.iter().find(|a| &a.name == name) {
                Some(app) => self.webhooks.start(app, &mut live.webhooks).await,
                None => None,
            };
            self.console.set_webhook_nudge(name, nudge);
        }
        self.apps.replace(&effective.apps);
        self.console.replace_admin_keys(&effective.admin_keys);
        // Removed apps and channels take no more requests; their workers stop as at
        // shutdown, releasing what they had claimed and not sent.
        for (app, name) in &plan.channels_removed {
            live.companions.stop(&(app.clone(), name.clone())).await;
            live.workers.stop_channel(app, name).await;
            self.runtime.channels.remove(app, name);
        }
    }

    /// Stops every worker and companion task (gateway shutdown); later reloads are refused.
    pub(crate) async fn shutdown(&self, companions_within: std::time::Duration) {
        let Some(live) = self.live.lock().await.take() else {
            return;
        };
        live.workers.shutdown().await;
        live.companions.stop_all_within(companions_within).await;
        live.webhooks.stop_all_within(companions_within).await;
    }
}

/// The new configuration as it will run: its apps and admin keys, with every start-only
/// setting as it runs now.
fn effective_spec(running: &GatewaySpec, read: GatewaySpec) -> GatewaySpec {
    GatewaySpec {
        apps: read.apps,
        admin_keys: read.admin_keys,
        ..running.clone()
    }
}

fn report(plan: Plan) -> ReloadReport {
    let names = |keys: Vec<ChannelKey>| keys.into_iter().map(|(a, c)| format!("{a}/{c}")).collect();
    ReloadReport {
        apps_added: plan.apps_added,
        apps_removed: plan.apps_removed,
        apps_changed: plan.apps_changed,
        channels_added: names(plan.channels_added),
        channels_removed: names(plan.channels_removed),
        channels_restarted: names(plan.channels_changed),
        webhooks_changed: plan.webhooks_changed,
        keys_changed: plan.keys_changed,
        admin_keys_changed: plan.admin_keys_changed,
        needs_restart: plan.needs_restart,
    }
}

/// A configuration error with every quoted string value replaced: the file parser quotes
/// the value it could not use (`found string "..."`), which may be a key written inline.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        let (head, tail) = rest.split_at(at + "string \"".len());
        out.push_str(head);
        match tail.find('"') {
            Some(end) => {
                out.push_str("<redacted>\"");
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str("<redacted>");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
