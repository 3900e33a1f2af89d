//! The Cloud Connection Server (CCS): XMPP over direct TLS (docs/protocols.md, "CCS (XMPP)" and
//! "Emulator checklist: CCS").
//!
//! * [`listener`]: TLS accept loop (instance certificate, no ALPN) and the login;
//! * [`session`]: one authenticated connection: downstream acks/nacks (optionally delayed so
//!   the pending window matters), pings, upstream delivery, draining and kills;
//! * [`downstream`]: a downstream message checked exactly like a legacy JSON send (same
//!   parser, same per-recipient checks, same inboxes) and answered with an ack or a nack;
//! * [`hub`]: every sender's connections and its unacked upstream messages and receipts
//!   (redelivered on a new connection);
//! * its control routes (`/emulator/xmpp/*`, `POST /emulator/devices/{token}/upstream`) live
//!   in `crate::control::ccs`.
//!
//! Pending limit: a downstream message that arrives while `max_pending` acks/nacks of its
//! connection are still unwritten is answered at once with a `SERVICE_UNAVAILABLE` nack (and
//! not delivered); the connection stays open. `ccs_max_pending` records the largest pending
//! count seen, that message included, so a client overrunning its window shows up there.

mod downstream;
pub(crate) mod hub;
pub(crate) mod listener;
mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

pub(crate) use self::hub::Hub;

/// Tunables of the CCS emulation; every one can also be changed at run time with
/// `POST /emulator/xmpp/settings` (and goes back to these values on reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcsSettings {
    /// Unanswered downstream messages allowed per connection (docs/protocols.md,
    /// "CCS: flow control": 100).
    pub max_pending: usize,
    /// How long the emulator waits before writing each ack or nack; 0 answers at once. A
    /// delay makes the client's window observable.
    pub ack_delay: Duration,
    /// How long a drained connection stays open after `CONNECTION_DRAINING` before the
    /// emulator closes it.
    pub drain_grace: Duration,
    /// Longest TLS handshake plus XMPP login.
    pub login_timeout: Duration,
}

impl Default for CcsSettings {
    fn default() -> Self {
        CcsSettings {
            max_pending: pushgate_proto::ccs::MAX_PENDING,
            ack_delay: Duration::ZERO,
            drain_grace: Duration::from_secs(1),
            login_timeout: Duration::from_secs(10),
        }
    }
}

/// The live values of [`CcsSettings`].
#[derive(Debug)]
pub(crate) struct LiveSettings {
    initial: CcsSettings,
    max_pending: AtomicUsize,
    ack_delay_ms: AtomicU64,
    drain_grace_ms: AtomicU64,
}

impl LiveSettings {
    fn new(initial: CcsSettings) -> Self {
        let live = LiveSettings {
            max_pending: AtomicUsize::new(0),
            ack_delay_ms: AtomicU64::new(0),
            drain_grace_ms: AtomicU64::new(0),
            initial,
        };
        live.reset();
        live
    }

    fn reset(&self) {
        self.max_pending
            .store(self.initial.max_pending, Ordering::Relaxed);
        self.ack_delay_ms
            .store(self.initial.ack_delay.as_millis() as u64, Ordering::Relaxed);
        self.drain_grace_ms.store(
            self.initial.drain_grace.as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    pub(crate) fn max_pending(&self) -> usize {
        self.max_pending.load(Ordering::Relaxed)
    }

    pub(crate) fn ack_delay(&self) -> Duration {
        Duration::from_millis(self.ack_delay_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn drain_grace(&self) -> Duration {
        Duration::from_millis(self.drain_grace_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn login_timeout(&self) -> Duration {
        self.initial.login_timeout
    }

    pub(crate) fn set(
        &self,
        max_pending: Option<usize>,
        ack_delay_ms: Option<u64>,
        drain_grace_ms: Option<u64>,
    ) {
        if let Some(v) = max_pending {
            self.max_pending.store(v, Ordering::Relaxed);
        }
        if let Some(v) = ack_delay_ms {
            self.ack_delay_ms.store(v, Ordering::Relaxed);
        }
        if let Some(v) = drain_grace_ms {
            self.drain_grace_ms.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn view(&self) -> Value {
        serde_json::json!({
            "max_pending": self.max_pending(),
            "ack_delay_ms": self.ack_delay().as_millis() as u64,
            "drain_grace_ms": self.drain_grace().as_millis() as u64,
        })
    }
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// CCS counters, shown with a `ccs_` prefix in `GET /emulator/stats`.
        #[derive(Debug, Default)]
        pub(crate) struct CcsStats {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl CcsStats {
            fn reset(&self) {
                $(self.$name.store(0, Ordering::Relaxed);)*
            }

            fn write(&self, out: &mut Map<String, Value>) {
                $(out.insert(
                    concat!("ccs_", stringify!($name)).to_string(),
                    Value::from(self.$name.load(Ordering::Relaxed)),
                );)*
            }
        }
    };
}

counters!(
    connections,
    connections_total,
    login_failures,
    downstream,
    acks,
    nacks,
    stanza_errors,
    max_pending,
    pending_rejected,
    draining_nacks,
    upstream_injected,
    upstream_sent,
    upstream_redelivered,
    upstream_acked,
    receipts,
    receipts_acked,
    stale_acks,
    unknown_acks,
    drained,
    killed,
);

impl CcsStats {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything the CCS emulation keeps: settings, connections, upstream queues, counters.
#[derive(Debug)]
pub(crate) struct CcsState {
    pub(crate) settings: LiveSettings,
    pub(crate) hub: Hub,
    pub(crate) stats: CcsStats,
}

impl CcsState {
    /// A fresh state with these settings.
    pub(crate) fn new(settings: CcsSettings) -> Self {
        CcsState {
            settings: LiveSettings::new(settings),
            hub: Hub::default(),
            stats: CcsStats::default(),
        }
    }

    /// Back to the start: settings, upstream queues and counters (open connections stay,
    /// and so does the open-connection gauge).
    pub(crate) fn reset(&self) {
        self.settings.reset();
        self.hub.reset();
        let open = self.stats.connections.load(Ordering::Relaxed);
        self.stats.reset();
        self.stats.connections.store(open, Ordering::Relaxed);
    }

    /// Adds the `ccs_*` counters to a stats object.
    pub(crate) fn write_stats(&self, out: &mut Value) {
        if let Value::Object(map) = out {
            self.stats.write(map);
        }
    }
}
