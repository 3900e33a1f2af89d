//! The recent protocol requests, for `GET /emulator/activity`.
//!
//! A bounded ring buffer behind one short lock: one push per request (not per recipient),
//! so it never dominates the cost of a request.

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::Serialize;

use crate::time::rfc3339_millis;

/// One protocol request as the log keeps it.
#[derive(Debug, Clone)]
pub(crate) struct ActivityEntry {
    /// When it was answered, epoch milliseconds.
    pub at_ms: u64,
    /// Request path, e.g. `/gcm/send`.
    pub path: &'static str,
    /// HTTP status of the answer.
    pub status: u16,
    /// Recipients it named (tokens, or 1 for a topic or condition).
    pub recipients: usize,
    /// What it was: `legacy-json`, `legacy-plain`, `topic`, `condition`, ...
    pub kind: &'static str,
    /// Why it failed as a whole (400 text, fault), if it did.
    pub note: Option<String>,
}

/// The JSON form of an [`ActivityEntry`].
#[derive(Debug, Serialize)]
pub(crate) struct ActivityView {
    time: String,
    time_ms: u64,
    path: &'static str,
    status: u16,
    recipients: usize,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl From<ActivityEntry> for ActivityView {
    fn from(e: ActivityEntry) -> Self {
        Self {
            time: rfc3339_millis(e.at_ms),
            time_ms: e.at_ms,
            path: e.path,
            status: e.status,
            recipients: e.recipients,
            kind: e.kind,
            note: e.note,
        }
    }
}

/// The ring buffer.
#[derive(Debug)]
pub(crate) struct Activity {
    limit: usize,
    entries: Mutex<VecDeque<ActivityEntry>>,
}

impl Activity {
    /// An empty log keeping the last `limit` requests.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: Mutex::new(VecDeque::with_capacity(limit.min(4096))),
        }
    }

    /// Appends an entry, dropping the oldest beyond the limit.
    pub(crate) fn record(&self, entry: ActivityEntry) {
        if self.limit == 0 {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= self.limit {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Every kept entry, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<ActivityEntry> {
        self.entries.lock().iter().cloned().collect()
    }

    /// Empties the log.
    pub(crate) fn reset(&self) {
        self.entries.lock().clear();
    }
}
