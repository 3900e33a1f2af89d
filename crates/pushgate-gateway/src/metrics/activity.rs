//! Recent provider answers, in memory: per-minute counts by outcome over the last hour (the
//! console's overview plot) and the last answers one by one (a device's recent deliveries).
//! Fed by the workers where each answer arrives; lost on restart, like the metrics'
//! counters, and bounded so that a busy gateway never grows it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::Mutex;
use pushgate_proto::outcome::{Outcome, OutcomeKind};
use pushgate_store::Delivery;
use time::OffsetDateTime;
use uuid::Uuid;

/// Minutes of per-minute counts kept.
pub const MINUTES: i64 = 60;
/// Answers kept one by one (the oldest are dropped first).
pub const RECENT: usize = 20_000;

/// The groups an outcome is plotted in, in legend order.
pub const GROUPS: [&str; 4] = ["sent", "retried", "token_dead", "failed"];

/// The plot group of an outcome: sent (delivered, rotated), retried (retry later,
/// throttled), token dead, failed (message rejected, credentials refused).
pub fn group(kind: OutcomeKind) -> usize {
    match kind {
        OutcomeKind::Delivered | OutcomeKind::Rotated => 0,
        OutcomeKind::RetryLater | OutcomeKind::Throttled => 1,
        OutcomeKind::TokenDead => 2,
        OutcomeKind::MessageRejected | OutcomeKind::AuthFailed => 3,
    }
}

/// One provider answer for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// When it arrived.
    pub at: OffsetDateTime,
    /// The app.
    pub app: String,
    /// The channel that sent it.
    pub channel: String,
    /// The message.
    pub message_id: Uuid,
    /// The delivery.
    pub delivery_id: i64,
    /// The registered device, when the target was one.
    pub device_id: Option<String>,
    /// The attempt it answers.
    pub attempt: i64,
    /// The outcome's name (`delivered`, `token_dead`, ...).
    pub outcome: &'static str,
    /// The provider's reason, when it gave one.
    pub reason: Option<String>,
    /// The provider's message id, when it accepted.
    pub provider_message_id: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Minute (Unix seconds / 60) -> app -> counts per group.
    minutes: BTreeMap<i64, HashMap<String, [u64; 4]>>,
    recent: VecDeque<Answer>,
}

/// The recorder: cheap to feed (one lock per batch), read by the console.
#[derive(Debug, Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

fn minute(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

impl Activity {
    /// Records the answers of one batch of an app's channel (`outcomes[i]` answers
    /// `deliveries[i]`).
    pub fn record(
        &self,
        app: &str,
        channel: &str,
        deliveries: &[Delivery],
        outcomes: &[Outcome],
        at: OffsetDateTime,
    ) {
        let now_min = minute(at);
        let mut inner = self.inner.lock();
        let counts = inner
            .minutes
            .entry(now_min)
            .or_default()
            .entry(app.to_string())
            .or_default();
        for o in outcomes {
            counts[group(o.kind())] += 1;
        }
        while let Some((&first, _)) = inner.minutes.first_key_value() {
            if first > now_min - MINUTES {
                break;
            }
            inner.minutes.pop_first();
        }
        for (d, o) in deliveries.iter().zip(outcomes) {
            if inner.recent.len() >= RECENT {
                inner.recent.pop_front();
            }
            inner.recent.push_back(Answer {
                at,
                app: app.to_string(),
                channel: channel.to_string(),
                message_id: d.message_id,
                delivery_id: d.id,
                device_id: d.device_id.clone(),
                attempt: d.attempts,
                outcome: o.kind().as_str(),
                reason: o.reason().map(str::to_string),
                provider_message_id: o.message_id().map(str::to_string),
            });
        }
    }

    /// Counts per group for each of the last [`MINUTES`] minutes up to `now` (oldest first),
    /// over the apps `visible` accepts.
    pub fn per_minute(&self, now: OffsetDateTime, visible: impl Fn(&str) -> bool) -> Vec<[u64; 4]> {
        let now_min = minute(now);
        let inner = self.inner.lock();
        (now_min - MINUTES + 1..=now_min)
            .map(|m| {
                let mut sum = [0u64; 4];
                if let Some(apps) = inner.minutes.get(&m) {
                    for (app, counts) in apps {
                        if visible(app) {
                            for (s, c) in sum.iter_mut().zip(counts) {
                                *s += c;
                            }
                        }
                    }
                }
                sum
            })
            .collect()
    }

    /// The last `limit` answers for one device of an app, newest first.
    pub fn for_device(&self, app: &str, device_id: &str, limit: usize) -> Vec<Answer> {
        let inner = self.inner.lock();
        inner
            .recent
            .iter()
            .rev()
            .filter(|a| a.app == app && a.device_id.as_deref() == Some(device_id))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_store::DeliveryState;

    fn delivery(id: i64, device: &str) -> Delivery {
        let t = OffsetDateTime::UNIX_EPOCH;
        Delivery {
            id,
            message_id: Uuid::nil(),
            app: "a".into(),
            device_id: Some(device.into()),
            token: format!("tok-{id}"),
            channel: "fcm".into(),
            state: DeliveryState::InFlight,
            attempts: 1,
            due_at: t,
            lease_until: None,
            deadline: t,
            provider_message_id: None,
            error_code: None,
            updated_at: t,
        }
    }

    #[test]
    fn counts_by_minute_and_group_and_forgets_after_an_hour() {
        let a = Activity::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let sent = Outcome::Delivered {
            message_id: "m1".into(),
        };
        let dead = Outcome::TokenDead {
            reason: "NotRegistered".into(),
        };
        a.record(
            "a",
            "fcm",
            &[delivery(1, "d1"), delivery(2, "d2")],
            &[sent.clone(), dead],
            t0,
        );
        a.record(
            "b",
            "fcm",
            &[delivery(3, "d3")],
            std::slice::from_ref(&sent),
            t0,
        );
        let all = a.per_minute(t0, |_| true);
        assert_eq!(all.len(), 60);
        assert_eq!(all[59], [2, 0, 1, 0]);
        let only_a = a.per_minute(t0, |app| app == "a");
        assert_eq!(only_a[59], [1, 0, 1, 0]);
        // An hour later the minute has scrolled out of the plot, and of memory.
        let later = t0 + time::Duration::minutes(60);
        a.record("a", "fcm", &[delivery(4, "d1")], &[sent], later);
        assert_eq!(a.per_minute(later, |_| true)[58], [0, 0, 0, 0]);
        assert_eq!(a.inner.lock().minutes.len(), 1);
        let d1 = a.for_device("a", "d1", 10);
        assert_eq!(
            d1.iter().map(|x| x.delivery_id).collect::<Vec<_>>(),
            vec![4, 1]
        );
        assert_eq!(d1[1].provider_message_id.as_deref(), Some("m1"));
        assert!(a.for_device("b", "d1", 10).is_empty());
    }
}
