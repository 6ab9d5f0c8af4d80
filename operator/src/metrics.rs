//! The operator's own Prometheus metrics: reconciles, failures by reason
//! and reconcile durations, per controller.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels: which controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `brokercluster`, `topic` or `consumergroup`.
    pub controller: String,
}

/// Labels: which controller, and why it failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `brokercluster`, `topic` or `consumergroup`.
    pub controller: String,
    /// [`crate::Error::reason`].
    pub reason: String,
}

fn duration_histogram() -> Histogram {
    // 5 ms to about 40 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The metrics, registered in a [`Registry`] served at `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Family<ControllerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    durations: Family<ControllerLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Creates the metrics and registers them, prefixed `tern_operator_`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            failures: Family::default(),
            durations: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
        };
        let sub = registry.sub_registry_with_prefix("tern_operator");
        sub.register("reconciles", "Reconciles started", m.reconciles.clone());
        sub.register(
            "reconcile_failures",
            "Reconciles that failed, by reason",
            m.failures.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Time a reconcile took",
            m.durations.clone(),
        );
        m
    }

    /// Counts a reconcile of `controller`; drop the guard when it ends.
    pub fn reconcile(&self, controller: &str) -> Timer<'_> {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        Timer {
            metrics: self,
            labels,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn failure(&self, controller: &str, reason: &str) {
        let labels = FailureLabels {
            controller: controller.to_owned(),
            reason: reason.to_owned(),
        };
        self.failures.get_or_create(&labels).inc();
    }
}

/// Records the duration of a reconcile when dropped.
#[derive(Debug)]
pub struct Timer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        let secs = self.start.elapsed().as_secs_f64();
        self.metrics
            .durations
            .get_or_create(&self.labels)
            .observe(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_failures_and_durations_are_exported() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        drop(m.reconcile("topic"));
        m.failure("topic", "BrokerUnreachable");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("tern_operator_reconciles_total{controller=\"topic\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "tern_operator_reconcile_failures_total{controller=\"topic\",reason=\"BrokerUnreachable\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("tern_operator_reconcile_duration_seconds_count{controller=\"topic\"} 1"),
            "{text}"
        );
    }
}
