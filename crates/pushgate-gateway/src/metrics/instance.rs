//! Which instance a scrape comes from, and how many share the database.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of the instance's info series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance_id: String,
}

/// `pushgate_instance_info{instance_id}` (always 1) and `pushgate_instances_alive`.
#[derive(Debug, Clone, Default)]
pub struct InstanceMetrics {
    info: Family<InstanceLabels, Gauge>,
    alive: Gauge,
}

impl InstanceMetrics {
    /// Registers both series.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "instance_info",
            "This gateway instance's id (value always 1)",
            metrics.info.clone(),
        );
        registry.register(
            "instances_alive",
            "Gateway instances sharing the database, by heartbeat (this one included)",
            metrics.alive.clone(),
        );
        metrics
    }

    /// Names this instance.
    pub fn set_id(&self, id: &str) {
        self.info
            .get_or_create(&InstanceLabels {
                instance_id: id.to_string(),
            })
            .set(1);
    }

    /// Records the instances alive at the last heartbeat.
    pub fn set_alive(&self, alive: u32) {
        self.alive.set(i64::from(alive));
    }
}
