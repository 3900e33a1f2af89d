//! Topic subscriptions and topic/condition fan-out (docs/protocols.md, the "Topics: ..." sections
//! and
//! "Emulator checklist: topics, groups and Instance ID").
//!
//! Subscriptions are kept per device (not per token), so every token of a rotated device
//! shares them, and an uninstalled device silently stops receiving. Fan-out walks the
//! subscribers and delivers one copy of the same payload to each active device of the
//! sending sender/project.

use std::collections::BTreeMap;
use std::sync::Arc;

use dashmap::DashMap;
use pushgate_proto::condition::Condition;
use pushgate_proto::iid::MAX_TOPICS_PER_INSTANCE;

use crate::devices::{DeliverResult, Device, Devices, Payload, StoredMessage, Via};
use crate::state::Inner;
use crate::time::{now_micros, now_ms};

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubscribeError {
    /// The instance already has [`MAX_TOPICS_PER_INSTANCE`] topics.
    #[error("instance is subscribed to {MAX_TOPICS_PER_INSTANCE} topics already")]
    TooManyTopics,
}

/// What a topic-style send addresses.
#[derive(Debug)]
pub(crate) enum TopicTarget<'a> {
    /// One topic, bare name.
    Topic(&'a str),
    /// A condition over topics (text as sent).
    Condition(&'a str),
}

#[derive(Debug)]
struct Subscriber {
    device: Arc<Device>,
    /// Topic name -> `YYYY-MM-DD` of the subscription.
    topics: BTreeMap<String, String>,
}

/// Every device's topic subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    by_device: DashMap<u64, Subscriber>,
}

impl Topics {
    /// Subscribes `device` to `topic` (idempotent: the first date stays).
    pub(crate) fn subscribe(
        &self,
        device: &Arc<Device>,
        topic: &str,
    ) -> Result<(), SubscribeError> {
        let mut entry = self
            .by_device
            .entry(device.id)
            .or_insert_with(|| Subscriber {
                device: device.clone(),
                topics: BTreeMap::new(),
            });
        if entry.topics.contains_key(topic) {
            return Ok(());
        }
        if entry.topics.len() >= MAX_TOPICS_PER_INSTANCE {
            return Err(SubscribeError::TooManyTopics);
        }
        entry.topics.insert(topic.to_string(), today());
        Ok(())
    }

    /// Removes `topic` from `device`'s subscriptions; true if it was there.
    pub(crate) fn unsubscribe(&self, device: &Device, topic: &str) -> bool {
        let Some(mut entry) = self.by_device.get_mut(&device.id) else {
            return false;
        };
        entry.topics.remove(topic).is_some()
    }

    /// `device`'s topics with their subscription dates.
    pub(crate) fn topics_of(&self, device: &Device) -> BTreeMap<String, String> {
        self.by_device
            .get(&device.id)
            .map(|e| e.topics.clone())
            .unwrap_or_default()
    }

    /// Every device subscribed to `topic` (any sender, any state).
    pub(crate) fn subscribers(&self, topic: &str) -> Vec<Arc<Device>> {
        self.by_device
            .iter()
            .filter(|e| e.topics.contains_key(topic))
            .map(|e| e.device.clone())
            .collect()
    }

    /// The active devices of `sender_id` that `target` reaches. A condition is evaluated
    /// against every device (a negation reaches devices subscribed to nothing); an
    /// unparsable condition reaches nobody.
    pub(crate) fn recipients(
        &self,
        devices: &Devices,
        sender_id: &str,
        target: &TopicTarget<'_>,
    ) -> Vec<Arc<Device>> {
        let active = |d: &Device| *d.sender_id == *sender_id && !d.is_uninstalled();
        match target {
            TopicTarget::Topic(name) => self
                .by_device
                .iter()
                .filter(|e| active(&e.device) && e.topics.contains_key(*name))
                .map(|e| e.device.clone())
                .collect(),
            TopicTarget::Condition(text) => {
                let condition = match Condition::parse(text) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(error = %e, "condition does not parse; no fan-out");
                        return Vec::new();
                    }
                };
                devices
                    .all()
                    .into_iter()
                    .filter(|d| active(d))
                    .filter(|d| {
                        let subscribed = self.by_device.get(&d.id);
                        condition.matches(&|t: &str| {
                            subscribed
                                .as_ref()
                                .is_some_and(|s| s.topics.contains_key(t))
                        })
                    })
                    .collect()
            }
        }
    }

    /// Forgets every subscription.
    pub(crate) fn reset(&self) {
        self.by_device.clear();
    }
}

/// Delivers `payload` to every device `target` reaches for `sender_id`; returns how many
/// inboxes got it. A dry run delivers nothing. Rate-limited devices are skipped.
pub(crate) fn fan_out(
    state: &Inner,
    sender_id: &str,
    target: &TopicTarget<'_>,
    payload: &Arc<Payload>,
    via: Via,
    dry_run: bool,
) -> u64 {
    if dry_run {
        return 0;
    }
    let now_micros = now_micros();
    let now_ms = now_ms().max(now_micros / 1000);
    let message_id = state.ids.message_id(now_micros);
    let mut delivered = 0;
    for device in state.topics.recipients(&state.devices, sender_id, target) {
        let stored = StoredMessage {
            message_id,
            token: device.canonical(),
            via,
            received_at_ms: now_ms,
            payload: payload.clone(),
        };
        match device.deliver(stored, state.inbox_limit) {
            DeliverResult::RateLimited => {}
            DeliverResult::Stored { copies } => {
                delivered += 1;
                if copies > 1 {
                    state.stats.duplicate(&device, payload.hash, copies);
                }
            }
        }
    }
    delivered
}

/// Today's UTC date as `YYYY-MM-DD` (the IID `addDate` form).
fn today() -> String {
    date_of(now_ms())
}

/// `YYYY-MM-DD` of an epoch-milliseconds instant (civil-from-days, proleptic Gregorian).
fn date_of(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_of(0), "1970-01-01");
        // 2015-07-30T12:00:00Z
        assert_eq!(date_of(1_438_257_600_000), "2015-07-30");
        assert_eq!(date_of(951_782_400_000), "2000-02-29");
    }
}
