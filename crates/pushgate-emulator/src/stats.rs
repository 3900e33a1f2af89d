//! Counters over every protocol request: requests, deliveries and duplicate deliveries.
//!
//! A duplicate is the same payload (by hash, see `Payload::hash`) stored more than once in
//! one device's inbox: what an at-least-once sender produces when it resends after a crash.
//! Only duplicates touch the pair map, so the common path is two atomic additions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde::Serialize;

use crate::devices::Device;

/// Global counters of the emulator.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    token_requests: AtomicU64,
    /// (device id, payload hash) -> (device, copies delivered).
    pairs: DashMap<(u64, u64), (Arc<Device>, u32)>,
}

/// One device that got the same payload more than once.
#[derive(Debug, Serialize)]
pub(crate) struct DuplicatePair {
    /// The device's canonical token.
    pub token: String,
    /// How many copies of the payload it received.
    pub count: u32,
}

/// `GET /emulator/stats`.
#[derive(Debug, Serialize)]
pub(crate) struct StatsView {
    /// Protocol requests answered.
    pub requests: u64,
    /// Messages stored in device inboxes.
    pub delivered: u64,
    /// Deliveries that repeated a payload the device already had.
    pub duplicates: u64,
    /// OAuth token requests (`POST /token`), successful or not.
    pub token_requests: u64,
    /// The pairs with the most copies, most first.
    pub duplicate_pairs: Vec<DuplicatePair>,
}

impl Stats {
    /// Counts one protocol request.
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one OAuth token request.
    pub(crate) fn token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` deliveries of one request.
    pub(crate) fn delivered(&self, n: u64) {
        if n > 0 {
            self.delivered.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records that `device` now holds `copies` (≥ 2) copies of the payload `hash`.
    pub(crate) fn duplicate(&self, device: &Arc<Device>, hash: u64, copies: u32) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
        let mut entry = self
            .pairs
            .entry((device.id, hash))
            .or_insert_with(|| (device.clone(), copies));
        entry.1 = entry.1.max(copies);
    }

    /// A snapshot with the `top` biggest duplicate pairs.
    pub(crate) fn view(&self, top: usize) -> StatsView {
        let mut pairs: Vec<(u32, Arc<Device>)> = self
            .pairs
            .iter()
            .map(|e| (e.value().1, e.value().0.clone()))
            .collect();
        pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        StatsView {
            requests: self.requests.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            token_requests: self.token_requests.load(Ordering::Relaxed),
            duplicate_pairs: pairs
                .into_iter()
                .take(top)
                .map(|(count, device)| DuplicatePair {
                    token: device.canonical().to_string(),
                    count,
                })
                .collect(),
        }
    }

    /// Back to zero.
    pub(crate) fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.delivered.store(0, Ordering::Relaxed);
        self.duplicates.store(0, Ordering::Relaxed);
        self.token_requests.store(0, Ordering::Relaxed);
        self.pairs.clear();
    }
}
