//! Webhooks: each app's events POSTed to its receiver in batches, in order, signed, and
//! retried with backoff until the receiver answers 2xx. The cursor (the last event the
//! receiver accepted) lives in the database, so nothing is lost across a restart; a lease
//! keeps one sender per app when several gateways share a database. A crash between the
//! receiver's 2xx and the commit resends that batch with the same event ids.

mod sign;

use std::sync::Arc;
use std::time::Duration;

use pushgate_store::Store;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use sign::{SIGNATURE_HEADER, signature};

use crate::api::event_view;
use crate::config::WebhookSpec;
use crate::event_wakeup::{self, EventWakeup};
use crate::worker::after;

/// How long one sender holds an app's webhook beyond the POST timeout (renewed on every
/// attempt; given back on a graceful stop).
const LEASE_MARGIN: Duration = Duration::from_secs(20);

/// One app's webhook sender.
pub struct WebhookSender {
    /// The app.
    pub app: String,
    /// Its webhook.
    pub spec: WebhookSpec,
    /// The durable state.
    pub store: Arc<dyn Store>,
    /// Wakes it when events are written.
    pub events_wakeup: EventWakeup,
    /// This process, as lease owner.
    pub owner: String,
    /// First and longest retry delays.
    pub retry: (Duration, Duration),
    /// Stops it.
    pub stop: CancellationToken,
    /// Asks for an attempt now, before the backoff's next attempt time (the console's
    /// "retry now").
    pub retry_now: Arc<Notify>,
}

impl WebhookSender {
    /// Makes sure the app's cursor exists: at the current end of the log, or before the
    /// first event with `replay_existing`. Done before the sender is spawned, and before the
    /// app takes requests, so that no event written after start is skipped; an existing
    /// cursor is kept as it is.
    pub async fn ensure_cursor(&self) -> Result<(), pushgate_store::StoreError> {
        let start = if self.spec.replay_existing {
            0
        } else {
            self.store.last_event_seq(&self.app).await?
        };
        self.store
            .webhook_init(&self.app, start, OffsetDateTime::now_utc())
            .await
    }

    /// Delivers until stopped. Makes sure of the cursor first: it was made at start, unless
    /// the database failed then (an existing cursor is kept as it is).
    pub async fn run(self) {
        if let Err(e) = self.ensure_cursor().await {
            warn!(app = %self.app, error = %e, "cannot set up the webhook cursor");
        }
        let client = match reqwest::Client::builder()
            .no_proxy()
            .timeout(self.spec.timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                warn!(app = %self.app, error = %e, "cannot build the webhook client");
                return;
            }
        };
        let mut wake = self.events_wakeup.subscribe();
        let mut forced = false;
        loop {
            if self.stop.is_cancelled() {
                let _ = self.store.webhook_release(&self.app, &self.owner).await;
                return;
            }
            let attempt = self.attempt(&client, std::mem::take(&mut forced)).await;
            let worked = match attempt {
                Ok(worked) => worked,
                Err(e) => {
                    warn!(app = %self.app, error = %e, "webhook attempt failed to run");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = self.stop.cancelled() => {}
                    _ = event_wakeup::wait(&mut wake) => {}
                    _ = self.retry_now.notified() => forced = true,
                }
            }
        }
    }

    /// One attempt: true when it sent something (so the next batch is tried at once).
    /// `forced` tries before the backoff's next attempt time: the claim is then made as of
    /// that time, so its lease also runs that much longer, which delays no other sender
    /// (none could have claimed before then either).
    async fn attempt(
        &self,
        client: &reqwest::Client,
        forced: bool,
    ) -> Result<bool, pushgate_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        let claim_at = match forced {
            false => now,
            true => self
                .store
                .webhook_state(&self.app)
                .await?
                .map_or(now, |s| s.next_attempt_at.max(now)),
        };
        let Some(state) = self
            .store
            .webhook_claim(
                &self.app,
                &self.owner,
                claim_at,
                self.spec.timeout + LEASE_MARGIN,
            )
            .await?
        else {
            return Ok(false);
        };
        let events = self
            .store
            .events_after(&self.app, state.delivered_seq, self.spec.batch as u32, None)
            .await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let body = json!({
            "app": self.app,
            "events": events.iter().map(event_view).collect::<Vec<_>>(),
        })
        .to_string();
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let sig = signature(self.spec.secret.expose(), timestamp, body.as_bytes());
        let answer = client
            .post(&self.spec.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sig)
            .header("pushgate-event-ids", format!("{}-{last}", events[0].seq))
            .body(body)
            .send()
            .await;
        let problem = match answer {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("receiver answered HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Some("receiver timed out".to_string()),
            Err(e) if e.is_connect() => Some("cannot connect to the receiver".to_string()),
            Err(_) => Some("request to the receiver failed".to_string()),
        };
        let now = OffsetDateTime::now_utc();
        match problem {
            None => {
                self.store
                    .webhook_done(&self.app, &self.owner, last, now)
                    .await?;
                info!(app = %self.app, events = events.len(), through = last, "webhook delivered");
                Ok(true)
            }
            Some(problem) => {
                let policy = pushgate_client::RetryPolicy::default()
                    .with_initial_backoff(self.retry.0)
                    .with_max_backoff(self.retry.1);
                let attempt = u32::try_from(state.attempts).unwrap_or(u32::MAX);
                let next = after(now, policy.delay(attempt, None));
                warn!(app = %self.app, %problem, next_attempt = %next, "webhook failed");
                self.store
                    .webhook_failed(&self.app, &self.owner, &problem, next, now)
                    .await?;
                Ok(false)
            }
        }
    }
}
