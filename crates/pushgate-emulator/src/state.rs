//! Everything an emulator instance knows, shared by all handlers.

use std::sync::Arc;

use crate::activity::Activity;
use crate::c2dm::C2dmState;
use crate::ccs::CcsState;
use crate::config::EmulatorConfig;
use crate::confirm::Confirmer;
use crate::devices::Devices;
use crate::faults::Faults;
use crate::groups::Groups;
use crate::ids::IdGenerator;
use crate::oauth::OAuth;
use crate::projects::Projects;
use crate::senders::Senders;
use crate::stats::Stats;
use crate::topics::Topics;

/// The emulator's state: senders, virtual devices, faults, activity log and counters.
///
/// Cheap to clone (one `Arc`). Exists apart from the server so the emulator's [`router`]
/// can be mounted in-process (the gateway's sandbox) with its own state.
///
/// [`router`]: crate::router
#[derive(Debug, Clone)]
pub struct EmulatorState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub inbox_limit: usize,
    pub max_body_bytes: usize,
    pub senders: Senders,
    pub devices: Devices,
    pub faults: Faults,
    pub activity: Activity,
    pub stats: Stats,
    pub ids: IdGenerator,
    /// FCM v1 projects (service accounts) and their quotas.
    pub projects: Projects,
    /// OAuth access tokens issued by `POST /token`.
    pub oauth: OAuth,
    /// CCS connections, upstream queues, settings and counters.
    pub ccs: CcsState,
    /// Topic subscriptions per device.
    pub topics: Topics,
    /// Device groups (notification keys).
    pub groups: Groups,
    /// C2DM accounts, quotas and counters.
    pub c2dm: C2dmState,
    /// The HTTP client and counters of `confirm_via` devices' registration flows.
    pub confirm: Confirmer,
}

impl EmulatorState {
    /// A fresh state: only the default sender, no device, no fault.
    pub fn new(config: &EmulatorConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                inbox_limit: config.inbox_limit,
                max_body_bytes: config.max_body_bytes,
                senders: Senders::new(),
                devices: Devices::default(),
                faults: Faults::default(),
                activity: Activity::new(config.activity_limit),
                stats: Stats::default(),
                ids: IdGenerator::new(),
                projects: Projects::new(config.v1_quota_per_minute),
                oauth: OAuth::new(config.access_token_lifetime),
                ccs: CcsState::new(config.ccs.clone()),
                topics: Topics::default(),
                groups: Groups::default(),
                c2dm: C2dmState::new(),
                confirm: Confirmer::new(),
            }),
        }
    }

    /// Back to the start state (what `POST /emulator/reset` does).
    pub fn reset(&self) {
        self.inner.senders.reset();
        self.inner.devices.reset();
        self.inner.faults.clear();
        self.inner.activity.reset();
        self.inner.stats.reset();
        self.inner.projects.reset(&self.inner.senders);
        self.inner.oauth.reset();
        self.inner.ccs.reset();
        self.inner.topics.reset();
        self.inner.groups.reset();
        self.inner.c2dm.reset();
        self.inner.confirm.reset();
    }

    pub(crate) fn get(&self) -> &Inner {
        &self.inner
    }
}
