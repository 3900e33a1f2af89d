//! C2DM quotas: messages per sender and per device in fixed one-minute windows
//! (`PUT /emulator/c2dm/quotas`). A window starts with the first message counted in it;
//! only accepted messages count. A reset clears quotas and counts.

use std::collections::HashMap;

use parking_lot::Mutex;

/// Length of one quota window.
const WINDOW_MS: u64 = 60_000;

/// Which quota refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaHit {
    /// The sender's (`Error=QuotaExceeded`).
    Sender,
    /// The device's (`Error=DeviceQuotaExceeded`).
    Device,
}

#[derive(Debug, Default)]
struct Window {
    start_ms: u64,
    count: u32,
}

impl Window {
    fn full(&mut self, now_ms: u64, limit: Option<u32>) -> bool {
        if now_ms.saturating_sub(self.start_ms) >= WINDOW_MS {
            self.start_ms = now_ms;
            self.count = 0;
        }
        limit.is_some_and(|l| self.count >= l)
    }
}

#[derive(Debug, Default)]
struct Inner {
    per_sender: Option<u32>,
    per_device: Option<u32>,
    senders: HashMap<String, Window>,
    devices: HashMap<u64, Window>,
}

/// Quota settings and counts.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    inner: Mutex<Inner>,
}

impl Quotas {
    /// Sets the limits per minute (`None` = unlimited) and starts counting afresh.
    pub(crate) fn set(&self, per_sender: Option<u32>, per_device: Option<u32>) {
        let mut inner = self.inner.lock();
        inner.per_sender = per_sender;
        inner.per_device = per_device;
        inner.senders.clear();
        inner.devices.clear();
    }

    /// Counts one message from `sender` to `device`, unless a quota is used up.
    pub(crate) fn take(&self, sender: &str, device: u64, now_ms: u64) -> Result<(), QuotaHit> {
        let mut inner = self.inner.lock();
        let (per_sender, per_device) = (inner.per_sender, inner.per_device);
        if inner
            .senders
            .entry(sender.to_string())
            .or_default()
            .full(now_ms, per_sender)
        {
            return Err(QuotaHit::Sender);
        }
        if inner
            .devices
            .entry(device)
            .or_default()
            .full(now_ms, per_device)
        {
            return Err(QuotaHit::Device);
        }
        if let Some(w) = inner.senders.get_mut(sender) {
            w.count += 1;
        }
        if let Some(w) = inner.devices.get_mut(&device) {
            w.count += 1;
        }
        Ok(())
    }

    /// No quota, no count.
    pub(crate) fn reset(&self) {
        self.set(None, None);
    }
}
