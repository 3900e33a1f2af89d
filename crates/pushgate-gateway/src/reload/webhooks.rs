//! Each app's webhook sender, started at start and by a reload, and stopped by a reload that
//! removes or changes the webhook (a stopped sender finishes its POST and gives its lease back,
//! so the next one goes on from the same cursor).

use std::sync::Arc;
use std::time::Duration;

use pushgate_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::tasks::KeyedTasks;
use crate::config::AppSpec;
use crate::event_wakeup::EventWakeup;
use crate::webhook::WebhookSender;

/// What every webhook sender shares.
#[derive(Clone)]
pub struct WebhookRuntime {
    /// The durable state.
    pub store: Arc<dyn Store>,
    /// Wakes senders when events are written.
    pub events_wakeup: EventWakeup,
    /// This instance's id (the owner of the leases it takes).
    pub owner: String,
    /// First and longest retry delays.
    pub retry: (Duration, Duration),
    /// Parent of every sender's stop token (the gateway's background stop).
    pub stop: CancellationToken,
}

impl WebhookRuntime {
    /// Starts `app`'s webhook sender under its name, when it has a webhook; returns what asks
    /// it to try again now. Its cursor is made first, so that every event written after
    /// this returns is delivered.
    pub async fn start(
        &self,
        app: &AppSpec,
        senders: &mut KeyedTasks<String>,
    ) -> Option<Arc<Notify>> {
        let hook = app.webhook.as_ref()?;
        let retry_now = Arc::new(Notify::new());
        let stop = self.stop.child_token();
        let sender = WebhookSender {
            app: app.name.clone(),
            spec: hook.clone(),
            store: self.store.clone(),
            events_wakeup: self.events_wakeup.clone(),
            owner: self.owner.clone(),
            retry: self.retry,
            stop: stop.clone(),
            retry_now: retry_now.clone(),
        };
        if let Err(e) = sender.ensure_cursor().await {
            warn!(app = %app.name, error = %e, "cannot set up the webhook cursor yet; the sender tries again");
        }
        senders.spawn(app.name.clone(), stop, sender.run());
        Some(retry_now)
    }
}
