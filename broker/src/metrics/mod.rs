//! Prometheus metrics of one broker, in the OpenMetrics text format
//! (`prometheus-client`), and the small HTTP server that serves them
//! (`http`: `/metrics`, `/healthz`, `/readyz`).
//!
//! Counted as things happen: messages and bytes in per topic (each stored
//! message of a SendMessage), messages and bytes out per topic and group
//! (each delivered or pulled message), sends refused by back-pressure, the
//! latency of each send's append (until the flush policy's promise is
//! kept), and the commit log's fsyncs (latency, bytes). Computed at each
//! scrape: the lag of every group per topic (the queues' end minus the
//! group's committed offsets), the commit log's size, messages waiting for
//! an fsync and the disk usage of the data directory.

mod http;

use parking_lot::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry as PromRegistry, Unit};
use tern_store::{Store, StoreListener};

pub use http::{Health, HttpState, serve_http};

use crate::meta::Registry;
use crate::pop::Pop;
use crate::timer::Timer;
use crate::txn::Transactions;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupTopicLabel {
    group: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabel {
    replica: String,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// The broker's metrics. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<PromRegistry>,
    messages_in: Family<TopicLabel, Counter>,
    bytes_in: Family<TopicLabel, Counter>,
    messages_out: Family<GroupTopicLabel, Counter>,
    bytes_out: Family<GroupTopicLabel, Counter>,
    sends_refused: Family<ReasonLabel, Counter>,
    connections: Family<OutcomeLabel, Counter>,
    denials: Family<DenialLabel, Counter>,
    append_latency: Histogram,
    flush_latency: Histogram,
    flushed_bytes: Counter,
    lag: Family<GroupTopicLabel, Gauge>,
    log_bytes: Gauge,
    unflushed_bytes: Gauge,
    disk_usage: F64Gauge,
    delayed: Gauge,
    half: Gauge,
    checks: Gauge,
    defaulted: Gauge,
    /// A replica of a replicated group: 1 while it leads.
    replica_leader: Gauge,
    replica_term: Gauge,
    replica_last_index: Gauge,
    replica_applied_index: Gauge,
    /// On the leader: each replica's log matched up to this index.
    replica_matched_index: Family<ReplicaLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, every one registered under the `tern_` prefix.
    pub fn new() -> Self {
        let mut m = Self {
            registry: Mutex::new(PromRegistry::with_prefix("tern")),
            messages_in: Family::default(),
            bytes_in: Family::default(),
            messages_out: Family::default(),
            bytes_out: Family::default(),
            sends_refused: Family::default(),
            connections: Family::default(),
            denials: Family::default(),
            // 50 us to about 13 s.
            append_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 19)),
            flush_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 19)),
            flushed_bytes: Counter::default(),
            lag: Family::default(),
            log_bytes: Gauge::default(),
            unflushed_bytes: Gauge::default(),
            disk_usage: F64Gauge::default(),
            delayed: Gauge::default(),
            half: Gauge::default(),
            checks: Gauge::default(),
            defaulted: Gauge::default(),
            replica_leader: Gauge::default(),
            replica_term: Gauge::default(),
            replica_last_index: Gauge::default(),
            replica_applied_index: Gauge::default(),
            replica_matched_index: Family::default(),
        };
        let r = m.registry.get_mut();
        r.register(
            "replica_leader",
            "1 while this broker leads its replicated group, 0 otherwise (and when it is not a replica)",
            m.replica_leader.clone(),
        );
        r.register(
            "replica_term",
            "The Raft term (epoch) of this broker's replicated group as it knows it; it rises with every election",
            m.replica_term.clone(),
        );
        r.register(
            "replica_last_index",
            "Index of the last entry in this replica's log",
            m.replica_last_index.clone(),
        );
        r.register(
            "replica_applied_index",
            "Index of the last entry this replica applied to its store",
            m.replica_applied_index.clone(),
        );
        r.register(
            "replica_matched_index",
            "On the leader: the highest index each replica's log is known to match (the leader's last index minus it is that replica's lag in entries)",
            m.replica_matched_index.clone(),
        );
        r.register(
            "connections",
            "Connections accepted on the gRPC port, by outcome: plaintext, tls, refused_plaintext (TLS enforced), handshake_failed, silent (nothing sent in 10 s)",
            m.connections.clone(),
        );
        r.register(
            "auth_denials",
            "Requests refused by authentication (unauthenticated) or authorization (forbidden)",
            m.denials.clone(),
        );
        r.register(
            "messages_in",
            "Messages stored, by topic",
            m.messages_in.clone(),
        );
        r.register_with_unit(
            "message_in",
            "Message bytes (bodies) stored, by topic",
            Unit::Bytes,
            m.bytes_in.clone(),
        );
        r.register(
            "messages_out",
            "Messages delivered to consumers, by group and topic",
            m.messages_out.clone(),
        );
        r.register_with_unit(
            "message_out",
            "Message bytes (bodies) delivered to consumers, by group and topic",
            Unit::Bytes,
            m.bytes_out.clone(),
        );
        r.register(
            "sends_refused",
            "SendMessage calls refused with TOO_MANY_REQUESTS, by reason",
            m.sends_refused.clone(),
        );
        r.register_with_unit(
            "append_latency",
            "Time from a send's append to the store until it is stored as the flush policy promises",
            Unit::Seconds,
            m.append_latency.clone(),
        );
        r.register_with_unit(
            "flush_latency",
            "Duration of each fsync of the commit log",
            Unit::Seconds,
            m.flush_latency.clone(),
        );
        r.register_with_unit(
            "flushed",
            "Commit-log bytes made durable by fsync",
            Unit::Bytes,
            m.flushed_bytes.clone(),
        );
        r.register(
            "consumer_lag",
            "Messages of a topic not yet done by a group (queue ends minus committed offsets), at scrape time",
            m.lag.clone(),
        );
        r.register_with_unit(
            "store_log",
            "Size of the commit log (its end minus its first stored position)",
            Unit::Bytes,
            m.log_bytes.clone(),
        );
        r.register_with_unit(
            "store_unflushed",
            "Commit-log bytes appended but not yet fsynced",
            Unit::Bytes,
            m.unflushed_bytes.clone(),
        );
        r.register(
            "disk_usage_ratio",
            "Share of the data directory's file system in use (0 to 1)",
            m.disk_usage.clone(),
        );
        r.register(
            "delayed_messages",
            "Delayed messages parked until their delivery time",
            m.delayed.clone(),
        );
        r.register(
            "half_messages",
            "Transactional (half) messages waiting for their transaction to end",
            m.half.clone(),
        );
        r.register(
            "transaction_checks",
            "Checks of unresolved transactions pushed to producers since the broker started",
            m.checks.clone(),
        );
        r.register(
            "transactions_defaulted",
            "Transactions ended by the default resolution since the broker started",
            m.defaulted.clone(),
        );
        m
    }

    /// One message of `topic` with a body of `bytes` was stored.
    pub fn stored(&self, topic: &str, bytes: usize) {
        let l = TopicLabel {
            topic: topic.to_owned(),
        };
        self.messages_in.get_or_create(&l).inc();
        self.bytes_in.get_or_create(&l).inc_by(bytes as u64);
    }

    /// One message of `topic` with a body of `bytes` went to `group`.
    pub fn delivered(&self, group: &str, topic: &str, bytes: usize) {
        let l = GroupTopicLabel {
            group: group.to_owned(),
            topic: topic.to_owned(),
        };
        self.messages_out.get_or_create(&l).inc();
        self.bytes_out.get_or_create(&l).inc_by(bytes as u64);
    }

    /// Forgets the series of `topic` (deleted): its messages in, and
    /// what each of `groups` (every group there is) got of it.
    pub fn forget_topic<'a>(&self, topic: &str, groups: impl IntoIterator<Item = &'a str>) {
        let l = TopicLabel {
            topic: topic.to_owned(),
        };
        self.messages_in.remove(&l);
        self.bytes_in.remove(&l);
        for group in groups {
            self.forget_pair(group, topic);
        }
    }

    /// Forgets the series of `group` (deleted): what it got of each of
    /// `topics` (every topic there is).
    pub fn forget_group<'a>(&self, group: &str, topics: impl IntoIterator<Item = &'a str>) {
        for topic in topics {
            self.forget_pair(group, topic);
        }
    }

    fn forget_pair(&self, group: &str, topic: &str) {
        let l = GroupTopicLabel {
            group: group.to_owned(),
            topic: topic.to_owned(),
        };
        self.messages_out.remove(&l);
        self.bytes_out.remove(&l);
        self.lag.remove(&l);
    }

    /// Series with a topic or group label (tests).
    #[cfg(test)]
    pub(crate) fn labelled_series(&self) -> usize {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry.lock())
            .expect("metrics encode");
        out.lines().filter(|l| l.contains("topic=\"")).count()
    }

    /// A send was refused by back-pressure for `reason`.
    pub fn refused(&self, reason: &str) {
        self.sends_refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A request was refused for `reason` (`unauthenticated`,
    /// `forbidden`).
    pub fn denied(&self, reason: &'static str) {
        self.denials.get_or_create(&DenialLabel { reason }).inc();
    }

    /// Sets the replication gauges from a replica's view of its group.
    pub fn replication(&self, status: &tern_replication::GroupStatus) {
        let gauge = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(
            &self.replica_leader,
            u64::from(status.role == tern_replication::Role::Leader),
        );
        gauge(&self.replica_term, status.term);
        gauge(&self.replica_last_index, status.last_index.unwrap_or(0));
        gauge(
            &self.replica_applied_index,
            status.applied_index.unwrap_or(0),
        );
        self.replica_matched_index.clear();
        for (id, matched) in &status.matched {
            let label = ReplicaLabel {
                replica: id.to_string(),
            };
            gauge(
                &self.replica_matched_index.get_or_create(&label),
                matched.unwrap_or(0),
            );
        }
    }

    /// A send's append took `took`.
    pub fn appended(&self, took: Duration) {
        self.append_latency.observe(took.as_secs_f64());
    }

    /// The text exposition, with the scrape-time values read from
    /// `store`, `registry`, `pop` and the parks (delayed and half
    /// messages) first.
    pub fn scrape(
        &self,
        store: &Store,
        registry: &Registry,
        pop: &Pop,
        parked: (&Timer, &Transactions),
    ) -> String {
        let reg = self.registry.lock();
        self.lag.clear();
        for ((group, topic), queues) in pop.all_positions(registry) {
            let lag: u64 = queues
                .iter()
                .map(|(&q, &done)| store.queue_range(&topic, q).1.saturating_sub(done))
                .sum();
            self.lag
                .get_or_create(&GroupTopicLabel { group, topic })
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
        let stats = store.stats();
        self.log_bytes.set(
            i64::try_from(stats.max_offset.saturating_sub(stats.min_offset)).unwrap_or(i64::MAX),
        );
        self.unflushed_bytes
            .set(i64::try_from(store.unflushed_bytes()).unwrap_or(i64::MAX));
        self.disk_usage.set(store.disk_usage());
        let (timer, txn) = parked;
        let gauge = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.delayed, timer.pending() as u64);
        gauge(&self.half, txn.pending_count() as u64);
        gauge(&self.checks, txn.checks_sent_count());
        gauge(&self.defaulted, txn.defaulted_count());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &reg) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}

impl StoreListener for Metrics {
    fn flushed(&self, took: Duration, bytes: u64) {
        self.flush_latency.observe(took.as_secs_f64());
        self.flushed_bytes.inc_by(bytes);
    }
}

impl tern_tls::ConnectionObserver for Metrics {
    fn accepted(&self, outcome: tern_tls::Accepted) {
        self.connections
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tern_replication::{GroupStatus, Role};

    use super::Metrics;

    fn exposition(m: &Metrics) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry.lock())
            .expect("metrics encode");
        out
    }

    #[test]
    fn a_replicas_view_of_its_group_becomes_gauges() {
        let m = Metrics::new();
        let mut status = GroupStatus {
            id: 1,
            role: Role::Leader,
            term: 7,
            leader: Some(1),
            last_index: Some(120),
            applied_index: Some(118),
            matched: BTreeMap::from([(0, Some(120)), (1, Some(120)), (2, Some(90))]),
            millis_since_quorum_ack: Some(3),
        };
        m.replication(&status);
        let text = exposition(&m);
        for line in [
            "tern_replica_leader 1",
            "tern_replica_term 7",
            "tern_replica_last_index 120",
            "tern_replica_applied_index 118",
            "tern_replica_matched_index{replica=\"2\"} 90",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // As a follower it tracks no one.
        status.role = Role::Follower;
        status.matched.clear();
        m.replication(&status);
        let text = exposition(&m);
        assert!(text.contains("tern_replica_leader 0"));
        assert!(!text.contains("tern_replica_matched_index{"));
    }
}
