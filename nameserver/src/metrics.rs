//! The name server's Prometheus metrics, read from the registry at each
//! scrape:
//!
//! - `tern_nameserver_brokers` (gauge): live brokers registered here;
//! - `tern_nameserver_topics` (gauge): topics served by at least one
//!   registered broker;
//! - `tern_nameserver_broker_last_seen_seconds{cluster, broker}` (gauge):
//!   time since each live broker's last registration or heartbeat.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::registry::Registry;

/// Content type of the text [`Metrics::scrape`] returns.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabels {
    cluster: String,
    broker: String,
}

/// The metric families, in their own `prometheus_client` registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Held for a whole scrape, so that two scrapes do not mix their
    /// per-broker series.
    registry: Mutex<prometheus_client::registry::Registry>,
    brokers: Gauge,
    topics: Gauge,
    last_seen: Family<BrokerLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let brokers = Gauge::default();
        registry.register(
            "tern_nameserver_brokers",
            "Live brokers registered with this name server",
            brokers.clone(),
        );
        let topics = Gauge::default();
        registry.register(
            "tern_nameserver_topics",
            "Topics served by at least one registered broker",
            topics.clone(),
        );
        let last_seen = Family::default();
        registry.register(
            "tern_nameserver_broker_last_seen_seconds",
            "Time since each broker's last registration or heartbeat",
            last_seen.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            brokers,
            topics,
            last_seen,
        }
    }

    /// The text exposition of `routes` as of `now`.
    pub(crate) fn scrape(&self, routes: &Registry, now: Instant) -> String {
        let registry = self.registry.lock();
        let brokers = routes.brokers(now);
        self.brokers
            .set(i64::try_from(brokers.len()).unwrap_or(i64::MAX));
        self.topics
            .set(i64::try_from(routes.topic_count()).unwrap_or(i64::MAX));
        // Brokers gone since the last scrape lose their series.
        self.last_seen.clear();
        for b in brokers {
            let labels = BrokerLabels {
                cluster: b.cluster,
                broker: b.name,
            };
            // To the millisecond, as registrations and heartbeats are timed.
            let secs = (b.last_seen.as_secs_f64() * 1000.0).round() / 1000.0;
            self.last_seen.get_or_create(&labels).set(secs);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use tern_model::TopicName;
    use tern_model::{MessageType, Permission};

    use super::*;
    use crate::registry::{BrokerTable, TopicEntry};

    fn table(name: &str, topics: &[&str]) -> BrokerTable {
        BrokerTable {
            cluster: "c\"1".to_owned(),
            name: name.to_owned(),
            endpoints: vec![format!("{name}.local:8081")],
            version: 1,
            topics: topics
                .iter()
                .map(|t| TopicEntry {
                    name: TopicName::new(*t).unwrap(),
                    queues: 4,
                    message_type: MessageType::Normal,
                    permission: Permission::ReadWrite,
                })
                .collect(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn names_types_and_labels() {
        let routes = Registry::new(Duration::from_secs(60));
        let t0 = Instant::now();
        routes.register(table("a", &["t1", "t2"]), t0);
        routes.register(table("b", &["t2"]), t0);
        let metrics = Metrics::new();
        let text = metrics.scrape(&routes, t0 + Duration::from_millis(1500));
        for line in [
            "# HELP tern_nameserver_brokers Live brokers registered with this name server.",
            "# TYPE tern_nameserver_brokers gauge",
            "tern_nameserver_brokers 2",
            "# TYPE tern_nameserver_topics gauge",
            "tern_nameserver_topics 2",
            "# TYPE tern_nameserver_broker_last_seen_seconds gauge",
            "tern_nameserver_broker_last_seen_seconds{cluster=\"c\\\"1\",broker=\"a\"} 1.5",
            "tern_nameserver_broker_last_seen_seconds{cluster=\"c\\\"1\",broker=\"b\"} 1.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }

        // A broker gone is gone from the next scrape.
        assert!(routes.unregister("a"));
        let text = metrics.scrape(&routes, t0);
        assert!(text.contains("tern_nameserver_brokers 1\n"), "{text}");
        assert!(text.contains("tern_nameserver_topics 1\n"), "{text}");
        assert!(!text.contains("broker=\"a\""), "{text}");
        assert!(text.contains("broker=\"b\"} 0.0\n"), "{text}");
    }
}
