//! Injected faults: make the next N matching requests or recipients fail.
//!
//! Two kinds, chosen by the spec: with a `status` (or with only `delay_ms`) a fault acts on
//! whole requests; with an `error` and no `status` it acts on single recipients, which get
//! that per-recipient code. Each fault fires `count` times, first-added first. Counters of
//! live faults let the hot path skip the lock entirely when none is set.
//!
//! Request-level faults are looked at after authentication and after the body has been read
//! (a fault bound to a token needs the body's tokens): a 401 or a 400 never spends one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use parking_lot::Mutex;
use pushgate_proto::legacy::ErrorCode;
use serde::Serialize;

/// A validated fault, as `POST /emulator/faults` describes it.
#[derive(Debug, Clone)]
pub(crate) struct FaultSpec {
    /// Only requests (or recipients) naming this token.
    pub token: Option<String>,
    /// Only requests whose path starts with this.
    pub path: Option<String>,
    /// Fail the whole request with this status.
    pub status: Option<StatusCode>,
    /// Per-recipient error code (or the 5xx body when `status` is set).
    pub error: Option<ErrorCode>,
    /// `Retry-After` header value, already checked to parse.
    pub retry_after: Option<String>,
    /// Delay before answering.
    pub delay: Option<Duration>,
    /// How many times it fires.
    pub count: u32,
}

impl FaultSpec {
    fn is_per_recipient(&self) -> bool {
        self.status.is_none() && self.error.is_some()
    }

    fn matches_path(&self, path: &str) -> bool {
        self.path.as_deref().is_none_or(|p| path.starts_with(p))
    }
}

/// A request-level fault that fired.
#[derive(Debug, Clone)]
pub(crate) struct RequestFault {
    /// Status to answer with; `None` for a delay-only fault (answer normally, later).
    pub status: Option<StatusCode>,
    /// Error text for the body, if the spec gave one.
    pub error: Option<ErrorCode>,
    /// `Retry-After` value.
    pub retry_after: Option<String>,
    /// Delay before answering.
    pub delay: Option<Duration>,
}

/// A recipient-level fault that fired.
#[derive(Debug, Clone)]
pub(crate) struct RecipientFault {
    /// The code the recipient gets.
    pub error: ErrorCode,
    /// `Retry-After` value for the response.
    pub retry_after: Option<String>,
    /// Delay before answering.
    pub delay: Option<Duration>,
}

#[derive(Debug)]
struct Fault {
    id: u64,
    spec: FaultSpec,
    remaining: u32,
}

/// The JSON form of a live fault, for `GET /emulator/faults`.
#[derive(Debug, Serialize)]
pub(crate) struct FaultView {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    remaining: u32,
}

/// Every live fault.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    list: Mutex<Vec<Fault>>,
    request_faults: AtomicUsize,
    recipient_faults: AtomicUsize,
    next_id: AtomicU64,
}

impl Faults {
    /// Adds a fault and returns its id.
    pub(crate) fn add(&self, spec: FaultSpec) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut list = self.list.lock();
        self.counter(&spec).fetch_add(1, Ordering::Relaxed);
        let remaining = spec.count;
        list.push(Fault {
            id,
            spec,
            remaining,
        });
        id
    }

    fn counter(&self, spec: &FaultSpec) -> &AtomicUsize {
        if spec.is_per_recipient() {
            &self.recipient_faults
        } else {
            &self.request_faults
        }
    }

    /// Removes every fault.
    pub(crate) fn clear(&self) {
        let mut list = self.list.lock();
        list.clear();
        self.request_faults.store(0, Ordering::Relaxed);
        self.recipient_faults.store(0, Ordering::Relaxed);
    }

    /// The live faults, oldest first.
    pub(crate) fn views(&self) -> Vec<FaultView> {
        self.list
            .lock()
            .iter()
            .map(|f| FaultView {
                id: f.id,
                token: f.spec.token.clone(),
                path: f.spec.path.clone(),
                status: f.spec.status.map(|s| s.as_u16()),
                error: f.spec.error.as_ref().map(|e| e.as_str().to_string()),
                retry_after: f.spec.retry_after.clone(),
                delay_ms: f.spec.delay.map(|d| d.as_millis() as u64),
                remaining: f.remaining,
            })
            .collect()
    }

    /// Fires the first request-level fault matching `path` (and, for a fault bound to a
    /// token, a request for which `names_token` is true).
    pub(crate) fn take_request(
        &self,
        path: &str,
        names_token: impl Fn(&str) -> bool,
    ) -> Option<RequestFault> {
        if self.request_faults.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.take(|spec| {
            !spec.is_per_recipient()
                && spec.matches_path(path)
                && spec.token.as_deref().is_none_or(&names_token)
        })
        .map(|spec| RequestFault {
            status: spec.status,
            error: spec.error,
            retry_after: spec.retry_after,
            delay: spec.delay,
        })
    }

    /// Fires the first recipient-level fault matching `path` and `token`.
    pub(crate) fn take_recipient(&self, path: &str, token: &str) -> Option<RecipientFault> {
        if self.recipient_faults.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.take(|spec| {
            spec.is_per_recipient()
                && spec.matches_path(path)
                && spec.token.as_deref().is_none_or(|t| t == token)
        })
        .and_then(|spec| {
            Some(RecipientFault {
                error: spec.error?,
                retry_after: spec.retry_after,
                delay: spec.delay,
            })
        })
    }

    /// Consumes one firing of the first fault `matches` accepts; removes it when spent.
    fn take(&self, matches: impl Fn(&FaultSpec) -> bool) -> Option<FaultSpec> {
        let mut list = self.list.lock();
        let index = list.iter().position(|f| matches(&f.spec))?;
        let fault = &mut list[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        if fault.remaining == 0 {
            let spent = list.remove(index);
            self.counter(&spent.spec).fetch_sub(1, Ordering::Relaxed);
            Some(spent.spec)
        } else {
            Some(fault.spec.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FaultSpec {
        FaultSpec {
            token: None,
            path: None,
            status: None,
            error: None,
            retry_after: None,
            delay: None,
            count: 2,
        }
    }

    #[test]
    fn fires_count_times_then_disappears() {
        let faults = Faults::default();
        faults.add(FaultSpec {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            path: Some("/gcm".into()),
            ..spec()
        });
        assert!(faults.take_request("/fcm/send", |_| false).is_none());
        assert!(faults.take_request("/gcm/send", |_| false).is_some());
        assert!(faults.take_request("/gcm/send", |_| false).is_some());
        assert!(faults.take_request("/gcm/send", |_| false).is_none());
        assert!(faults.views().is_empty());
    }

    #[test]
    fn recipient_faults_match_their_token_only() {
        let faults = Faults::default();
        faults.add(FaultSpec {
            error: Some(ErrorCode::Unavailable),
            token: Some("t2".into()),
            count: 1,
            ..spec()
        });
        assert!(faults.take_request("/gcm/send", |_| true).is_none());
        assert!(faults.take_recipient("/gcm/send", "t1").is_none());
        let fired = faults.take_recipient("/gcm/send", "t2").unwrap();
        assert_eq!(fired.error, ErrorCode::Unavailable);
        assert!(faults.take_recipient("/gcm/send", "t2").is_none());
    }
}
