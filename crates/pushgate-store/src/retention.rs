//! Retention: what [`Store::purge`](crate::Store::purge) may delete and what it did. History
//! (finished messages with their deliveries, events, retired devices) would otherwise grow
//! forever; a purge deletes a bounded batch of it per call so that a caller can run it between
//! other writes without holding the database long.

use std::time::Duration;

use time::OffsetDateTime;

/// How old rows must be before [`Store::purge`](crate::Store::purge) deletes them, and how many
/// rows of each table one call may delete. `None` keeps that kind of row forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeLimits {
    /// Finished messages (every delivery in a final state) accepted longer ago than this go,
    /// with their deliveries.
    pub messages: Option<Duration>,
    /// Events written longer ago than this go, once the app's webhook (if it has one) has
    /// delivered them.
    pub events: Option<Duration>,
    /// Devices invalid (unchanged) for longer than this go, with their tags and topics.
    pub invalid_devices: Option<Duration>,
    /// Most rows one call deletes from each of messages, deliveries, events and devices (rows
    /// hanging off a deleted row, such as a device's tags, go with it).
    pub batch: u32,
}

/// What one [`Store::purge`](crate::Store::purge) call deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Messages deleted.
    pub messages: u64,
    /// Deliveries deleted.
    pub deliveries: u64,
    /// Events deleted.
    pub events: u64,
    /// Invalid devices deleted.
    pub devices: u64,
    /// The newest acceptance time among the messages this call deleted.
    pub purged_through: Option<OffsetDateTime>,
}

impl PurgeReport {
    /// True when some table gave a full batch, so that more may be left to delete: a caller
    /// purging "until done" calls again.
    pub fn more_left(&self, batch: u32) -> bool {
        let batch = u64::from(batch);
        [self.messages, self.deliveries, self.events, self.devices]
            .iter()
            .any(|n| *n >= batch)
    }

    /// True when nothing was deleted.
    pub fn is_empty(&self) -> bool {
        self.messages + self.deliveries + self.events + self.devices == 0
    }

    /// Adds another call's counts (the horizon is the newer of the two).
    pub fn add(&mut self, other: &PurgeReport) {
        self.messages += other.messages;
        self.deliveries += other.deliveries;
        self.events += other.events;
        self.devices += other.devices;
        self.purged_through = self.purged_through.max(other.purged_through);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_is_left_only_when_a_table_gave_a_full_batch() {
        let mut r = PurgeReport {
            messages: 3,
            deliveries: 9,
            ..Default::default()
        };
        assert!(!r.more_left(10));
        r.deliveries = 10;
        assert!(r.more_left(10));
        assert!(!PurgeReport::default().more_left(1));
        assert!(PurgeReport::default().is_empty());
    }

    #[test]
    fn adding_reports_sums_counts_and_keeps_the_newer_horizon() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut a = PurgeReport {
            events: 2,
            purged_through: Some(t),
            ..Default::default()
        };
        a.add(&PurgeReport {
            events: 3,
            devices: 1,
            purged_through: Some(t + time::Duration::seconds(5)),
            ..Default::default()
        });
        a.add(&PurgeReport::default());
        assert_eq!((a.events, a.devices), (5, 1));
        assert_eq!(a.purged_through, Some(t + time::Duration::seconds(5)));
    }
}
