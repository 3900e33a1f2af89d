//! The open connections of the API listener, so that their number stays under a cap without
//! locking out normal clients: when the cap is reached, the connection that has been idle
//! the longest (a keep-alive connection between requests, or one that never finished
//! sending its request head) is closed to make room. Connections with a request in progress
//! (including a streaming response) are never chosen.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// What one connection is doing, shared by its task and the registry.
#[derive(Debug)]
pub struct Activity {
    /// Requests whose response has not been sent to the end yet.
    in_flight: AtomicUsize,
    /// When the connection last became idle, in ms since the registry's epoch.
    idle_since_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let activity = Self {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch,
        };
        activity.mark_idle();
        activity
    }

    fn mark_idle(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(ms, Ordering::Relaxed);
    }

    /// A request began: the connection is busy until the returned guard is dropped (when
    /// the response body has been sent or abandoned).
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    /// When it went idle, if it is idle now.
    fn idle_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.idle_since_ms.load(Ordering::Relaxed))
    }
}

/// Keeps a connection marked busy while a request is being answered.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.mark_idle();
        }
    }
}

/// A response body that holds its connection's [`RequestGuard`] until it is done.
pub struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl GuardedBody {
    /// Wraps `inner`, keeping `guard` alive as long as the body.
    pub fn new(inner: Body, guard: RequestGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

struct Entry {
    activity: Arc<Activity>,
    evict: CancellationToken,
}

/// Every open connection, and the cap on their number.
pub struct Registry {
    max: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

/// A connection's place in the [`Registry`]; leaving it (drop) frees the place.
pub struct Slot {
    registry: Arc<Registry>,
    id: u64,
    /// What the connection is doing.
    pub activity: Arc<Activity>,
    /// Cancelled when the registry closes this connection to make room.
    pub evicted: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open.lock().remove(&self.id);
    }
}

impl Registry {
    /// A registry that keeps at most `max` connections open.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A place for a new connection: at the cap, the longest-idle connection is told to
    /// close and its place is taken; `None` when every open connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock();
        if open.len() >= self.max {
            let oldest = open
                .iter()
                .filter_map(|(id, e)| e.activity.idle_since().map(|at| (at, *id)))
                .min()?;
            if let Some(entry) = open.remove(&oldest.1) {
                entry.evict.cancel();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        let evicted = CancellationToken::new();
        open.insert(
            id,
            Entry {
                activity: activity.clone(),
                evict: evicted.clone(),
            },
        );
        Some(Slot {
            registry: self.clone(),
            id,
            activity,
            evicted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let registry = Registry::new(2);
        let first = registry.admit().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = registry.admit().unwrap();
        let third = registry.admit().expect("room is made");
        assert!(first.evicted.is_cancelled(), "the oldest idle one goes");
        assert!(!second.evicted.is_cancelled());
        assert!(!third.evicted.is_cancelled());
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn busy_connections_are_never_closed_to_make_room() {
        let registry = Registry::new(2);
        let a = registry.admit().unwrap();
        let b = registry.admit().unwrap();
        let guard_a = a.activity.begin();
        let guard_b = b.activity.begin();
        assert!(registry.admit().is_none(), "every connection is busy");
        assert!(!a.evicted.is_cancelled() && !b.evicted.is_cancelled());
        // When b's response is done, b is idle and may make room.
        drop(guard_b);
        let c = registry.admit().expect("b is idle now");
        assert!(b.evicted.is_cancelled());
        assert!(!a.evicted.is_cancelled());
        drop((guard_a, c));
    }

    #[test]
    fn a_closed_connection_frees_its_place() {
        let registry = Registry::new(1);
        let a = registry.admit().unwrap();
        let _busy = a.activity.begin();
        assert!(registry.admit().is_none());
        drop(_busy);
        drop(a);
        assert!(registry.is_empty());
        assert!(registry.admit().is_some());
    }
}
