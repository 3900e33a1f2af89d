//! One virtual device's side of the C2DM-era registration flow: where it registers, what the
//! gateway answered, and the state shown by the control API.
//!
//! Every change happens under the link's own small lock, never held across an await: a call
//! first takes a ticket (generation, sequence) under the lock, runs without it, and records
//! its outcome under the lock again, where outcomes of stale tickets are ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// Where a registration flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowState {
    /// The registration call is in flight.
    Registering,
    /// Registration answered 200; no successful confirmation yet.
    Registered,
    /// Confirmation answered 200.
    Confirmed,
    /// A call answered non-200 or failed at transport level.
    Failed,
}

impl FlowState {
    /// The name shown in the control API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FlowState::Registering => "registering",
            FlowState::Registered => "registered",
            FlowState::Confirmed => "confirmed",
            FlowState::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        match self {
            FlowState::Registering => 0,
            FlowState::Registered => 1,
            FlowState::Confirmed => 2,
            FlowState::Failed => 3,
        }
    }
}

/// How many devices are in each [`FlowState`], for `GET /emulator/stats`.
///
/// One set per reset epoch: a reset swaps in a fresh set, so calls still in flight for
/// forgotten devices only touch the old one.
#[derive(Debug, Default)]
pub(crate) struct Counters([AtomicU64; 4]);

/// The `confirm_via` block of `GET /emulator/stats`.
#[derive(Debug, Serialize)]
pub(crate) struct CountersView {
    /// Devices whose registration call is in flight.
    pub registering: u64,
    /// Devices registered (200) and not yet confirmed.
    pub registered: u64,
    /// Devices confirmed (200).
    pub confirmed: u64,
    /// Devices whose last flow failed.
    pub failed: u64,
}

impl Counters {
    fn add(&self, state: FlowState) {
        self.0[state.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn sub(&self, state: FlowState) {
        // Never below zero, even if a bug made the books disagree.
        let _ = self.0[state.index()]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// A snapshot.
    pub(crate) fn view(&self) -> CountersView {
        let get = |s: FlowState| self.0[s.index()].load(Ordering::Relaxed);
        CountersView {
            registering: get(FlowState::Registering),
            registered: get(FlowState::Registered),
            confirmed: get(FlowState::Confirmed),
            failed: get(FlowState::Failed),
        }
    }
}

/// The outcome of one call to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// Not answered yet.
    Pending,
    /// The gateway answered with this HTTP status.
    Answered(u16),
    /// No HTTP answer (connection refused, timeout, ...): a short text.
    Failed(String),
}

impl Call {
    /// The HTTP status, if the gateway answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Call::Answered(status) => Some(*status),
            _ => None,
        }
    }

    /// The transport error, if there was one.
    pub(crate) fn transport_error(&self) -> Option<&str> {
        match self {
            Call::Failed(text) => Some(text),
            _ => None,
        }
    }

    fn is_ok(&self) -> bool {
        *self == Call::Answered(200)
    }

    fn problem(&self, what: &str) -> Option<String> {
        match self {
            Call::Pending | Call::Answered(200) => None,
            Call::Answered(status) => Some(format!("{what} answered HTTP {status}")),
            Call::Failed(text) => Some(format!("{what} failed: {text}")),
        }
    }
}

/// Mutable part of a [`Link`].
#[derive(Debug)]
struct Status {
    /// Bumped by every registration (creation, rotation); outcomes of older ones are stale.
    generation: u64,
    registration: Call,
    /// `None` until a confirmation message arrived in this generation.
    confirmation: Option<Call>,
    /// Confirmation calls started in this generation.
    confirmations_started: u64,
    /// Sequence number of the confirmation outcome kept in `confirmation`.
    confirmation_recorded: u64,
}

impl Status {
    fn state(&self) -> FlowState {
        let confirmation = self.confirmation.as_ref();
        let failed = |c: &Call| matches!(c, Call::Failed(_) | Call::Answered(_)) && !c.is_ok();
        if failed(&self.registration) || confirmation.is_some_and(failed) {
            FlowState::Failed
        } else if confirmation.is_some_and(Call::is_ok) {
            FlowState::Confirmed
        } else if self.registration.is_ok() {
            FlowState::Registered
        } else {
            FlowState::Registering
        }
    }
}

/// A ticket for one call, handed back with its outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    generation: u64,
    sequence: u64,
}

/// A device's registration flow: its device id, the gateway base URL it talks to and what
/// the gateway answered so far.
#[derive(Debug)]
pub(crate) struct Link {
    /// The device id sent as `device_id`.
    pub device_id: Arc<str>,
    /// The gateway base URL (no trailing slash).
    pub base: Arc<str>,
    /// Shared client of the emulator instance.
    pub(super) client: reqwest::Client,
    counters: Arc<Counters>,
    status: Mutex<Status>,
}

/// The `registration` block of `GET /emulator/devices/{token}`.
#[derive(Debug, Serialize)]
pub(crate) struct LinkView {
    /// The device id sent as `device_id`.
    pub device_id: String,
    /// The gateway base URL.
    pub confirm_via: String,
    /// `registering`, `registered`, `confirmed` or `failed`.
    pub state: &'static str,
    /// Status of the last registration call; null while in flight or without an answer.
    pub registration_status: Option<u16>,
    /// Status of the last recorded confirmation call; null if none answered.
    pub confirmation_status: Option<u16>,
    /// What went wrong, if something did.
    pub error: Option<String>,
}

impl Link {
    /// A link in state `registering`, counted in `counters`.
    pub(super) fn new(
        device_id: Arc<str>,
        base: Arc<str>,
        client: reqwest::Client,
        counters: Arc<Counters>,
    ) -> Self {
        let status = Status {
            generation: 0,
            registration: Call::Pending,
            confirmation: None,
            confirmations_started: 0,
            confirmation_recorded: 0,
        };
        counters.add(status.state());
        Self {
            device_id,
            base,
            client,
            counters,
            status: Mutex::new(status),
        }
    }

    /// Applies `change` under the lock and moves the device between counters.
    fn update<R>(&self, change: impl FnOnce(&mut Status) -> R) -> R {
        let mut status = self.status.lock();
        let before = status.state();
        let result = change(&mut status);
        let after = status.state();
        if before != after {
            self.counters.sub(before);
            self.counters.add(after);
        }
        result
    }

    /// Starts a new registration: back to `registering`, earlier outcomes become stale.
    pub(super) fn begin_registration(&self) -> Ticket {
        self.update(|s| {
            s.generation += 1;
            s.registration = Call::Pending;
            s.confirmation = None;
            s.confirmations_started = 0;
            s.confirmation_recorded = 0;
            Ticket {
                generation: s.generation,
                sequence: 0,
            }
        })
    }

    /// Records a registration outcome, unless a newer registration started meanwhile.
    pub(super) fn finish_registration(&self, ticket: Ticket, call: Call) {
        self.update(|s| {
            if s.generation == ticket.generation {
                s.registration = call;
            }
        });
    }

    /// Starts a confirmation call; the last recorded outcome stays until this one answers.
    pub(super) fn begin_confirmation(&self) -> Ticket {
        self.update(|s| {
            s.confirmations_started += 1;
            if s.confirmation.is_none() {
                s.confirmation = Some(Call::Pending);
            }
            Ticket {
                generation: s.generation,
                sequence: s.confirmations_started,
            }
        })
    }

    /// Records a confirmation outcome, unless it is stale (newer registration, or a later
    /// confirmation call already answered).
    pub(super) fn finish_confirmation(&self, ticket: Ticket, call: Call) {
        self.update(|s| {
            if s.generation == ticket.generation && ticket.sequence > s.confirmation_recorded {
                s.confirmation = Some(call);
                s.confirmation_recorded = ticket.sequence;
            }
        });
    }

    /// The current state.
    #[cfg(test)]
    fn state(&self) -> FlowState {
        self.status.lock().state()
    }

    /// A snapshot for the control API.
    pub(crate) fn view(&self) -> LinkView {
        let s = self.status.lock();
        let confirmation = s.confirmation.as_ref();
        LinkView {
            device_id: self.device_id.to_string(),
            confirm_via: self.base.to_string(),
            state: s.state().as_str(),
            registration_status: s.registration.status(),
            confirmation_status: confirmation.and_then(Call::status),
            error: s
                .registration
                .problem("registration")
                .or_else(|| confirmation.and_then(|c| c.problem("confirmation"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> (Link, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let link = Link::new(
            Arc::from("dev"),
            Arc::from("http://127.0.0.1:9"),
            reqwest::Client::new(),
            counters.clone(),
        );
        (link, counters)
    }

    fn counts(c: &Counters) -> [u64; 4] {
        let v = c.view();
        [v.registering, v.registered, v.confirmed, v.failed]
    }

    #[test]
    fn registration_then_confirmation() {
        let (link, counters) = link();
        assert_eq!(counts(&counters), [1, 0, 0, 0]);
        let t = link.begin_registration();
        link.finish_registration(t, Call::Answered(200));
        assert_eq!(link.state(), FlowState::Registered);
        let c = link.begin_confirmation();
        assert_eq!(link.state(), FlowState::Registered, "pending confirmation");
        link.finish_confirmation(c, Call::Answered(200));
        assert_eq!(link.state(), FlowState::Confirmed);
        assert_eq!(counts(&counters), [0, 0, 1, 0]);
        let v = link.view();
        assert_eq!(
            (v.registration_status, v.confirmation_status, v.error),
            (Some(200), Some(200), None)
        );
    }

    #[test]
    fn confirmation_answered_before_registration_stays_confirmed() {
        let (link, counters) = link();
        let t = link.begin_registration();
        let c = link.begin_confirmation();
        link.finish_confirmation(c, Call::Answered(200));
        link.finish_registration(t, Call::Answered(200));
        assert_eq!(link.state(), FlowState::Confirmed);
        assert_eq!(counts(&counters), [0, 0, 1, 0]);
    }

    #[test]
    fn failures_and_stale_outcomes() {
        let (link, counters) = link();
        let old = link.begin_registration();
        link.finish_registration(old, Call::Failed("connection refused".into()));
        assert_eq!(link.state(), FlowState::Failed);
        assert_eq!(counts(&counters), [0, 0, 0, 1]);
        assert!(link.view().error.unwrap().contains("connection refused"));
        // A rotation registers again; a late answer to the old call is ignored.
        let new = link.begin_registration();
        link.finish_registration(old, Call::Answered(200));
        assert_eq!(link.state(), FlowState::Registering);
        link.finish_registration(new, Call::Answered(400));
        assert_eq!(link.state(), FlowState::Failed);
        assert_eq!(link.view().registration_status, Some(400));
        assert_eq!(counts(&counters), [0, 0, 0, 1]);
    }

    #[test]
    fn later_confirmation_wins_over_an_earlier_one() {
        let (link, _) = link();
        let t = link.begin_registration();
        link.finish_registration(t, Call::Answered(200));
        let first = link.begin_confirmation();
        let second = link.begin_confirmation();
        link.finish_confirmation(second, Call::Answered(200));
        link.finish_confirmation(first, Call::Answered(400));
        assert_eq!(link.state(), FlowState::Confirmed);
        let third = link.begin_confirmation();
        link.finish_confirmation(third, Call::Answered(400));
        assert_eq!(link.state(), FlowState::Failed);
        assert_eq!(link.view().confirmation_status, Some(400));
    }
}
