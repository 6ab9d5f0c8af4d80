//! The route registry: what each live broker serves, and which brokers
//! serve each topic.
//!
//! Pure and synchronous: every call that depends on time takes `now`, so
//! tests drive expiry without waiting. A broker's registration replaces
//! its whole table; heartbeats keep it alive; [`Registry::expire`] drops
//! brokers not heard from for longer than the expiry window, with their
//! routes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tern_model::{GroupName, MessageType, Permission, TopicName};
use tern_protocol::settings::GroupPolicy;

/// One topic as a broker serves it. Built by the gRPC edge from validated
/// values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicEntry {
    pub name: TopicName,
    /// At least 1.
    pub queues: u32,
    /// Never `Unspecified`.
    pub message_type: MessageType,
    /// Never `Unspecified`.
    pub permission: Permission,
}

impl TopicEntry {
    /// Whether clients may receive from the topic's queues.
    pub fn readable(&self) -> bool {
        self.permission.readable()
    }
}

/// One consumer group as a broker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: GroupName,
    pub fifo: bool,
    pub max_retries: u32,
}

/// Everything one broker registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTable {
    pub cluster: String,
    /// Unique name; a registration replaces the previous one of that name.
    pub name: String,
    /// `host:port` addresses where clients reach the broker.
    pub endpoints: Vec<String>,
    pub version: u64,
    pub topics: Vec<TopicEntry>,
    pub groups: Vec<GroupEntry>,
}

/// One broker's part of a topic's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRoute {
    pub broker: String,
    pub endpoints: Vec<String>,
    pub topic: TopicEntry,
}

/// A live broker, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSummary {
    pub cluster: String,
    pub name: String,
    pub endpoints: Vec<String>,
    pub version: u64,
    pub topics: usize,
    pub groups: usize,
    /// Time since the last registration or heartbeat.
    pub last_seen: Duration,
}

#[derive(Debug)]
struct BrokerState {
    cluster: String,
    endpoints: Vec<String>,
    version: u64,
    topics: HashMap<String, TopicEntry>,
    groups: HashMap<String, GroupEntry>,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    brokers: BTreeMap<String, BrokerState>,
    /// Topic name -> names of the brokers that serve it.
    topic_index: HashMap<String, BTreeSet<String>>,
}

impl Inner {
    fn unindex(&mut self, broker: &str) -> Option<BrokerState> {
        let old = self.brokers.remove(broker)?;
        for topic in old.topics.keys() {
            if let Some(set) = self.topic_index.get_mut(topic) {
                set.remove(broker);
                if set.is_empty() {
                    self.topic_index.remove(topic);
                }
            }
        }
        Some(old)
    }
}

/// The registry of live brokers. Thread-safe.
#[derive(Debug)]
pub struct Registry {
    expiry: Duration,
    inner: RwLock<Inner>,
}

impl Registry {
    /// An empty registry whose brokers expire `expiry` after they were last
    /// heard from.
    pub fn new(expiry: Duration) -> Self {
        Self {
            expiry,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The expiry window.
    pub fn expiry(&self) -> Duration {
        self.expiry
    }

    /// Replaces everything known about `table.name` with `table`.
    pub fn register(&self, table: BrokerTable, now: Instant) {
        let mut inner = self.write();
        inner.unindex(&table.name);
        for t in &table.topics {
            inner
                .topic_index
                .entry(t.name.as_str().to_owned())
                .or_default()
                .insert(table.name.clone());
        }
        let state = BrokerState {
            cluster: table.cluster,
            endpoints: table.endpoints,
            version: table.version,
            topics: table
                .topics
                .into_iter()
                .map(|t| (t.name.as_str().to_owned(), t))
                .collect(),
            groups: table
                .groups
                .into_iter()
                .map(|g| (g.name.as_str().to_owned(), g))
                .collect(),
            last_seen: now,
        };
        inner.brokers.insert(table.name, state);
    }

    /// Records a heartbeat of broker `name` at table version `version`.
    /// Returns whether the broker must register its table again: it is
    /// unknown (never registered, expired, or this registry is new) or
    /// the registered table has another version.
    pub fn heartbeat(&self, name: &str, version: u64, now: Instant) -> bool {
        let mut inner = self.write();
        match inner.brokers.get_mut(name) {
            Some(b) if !self.expired(b, now) => {
                b.last_seen = now;
                b.version != version
            }
            _ => true,
        }
    }

    /// Drops broker `name` and its routes; returns whether it was
    /// registered.
    pub fn unregister(&self, name: &str) -> bool {
        self.write().unindex(name).is_some()
    }

    /// Drops the brokers not heard from for longer than the expiry window,
    /// with their routes, and returns their names.
    pub fn expire(&self, now: Instant) -> Vec<String> {
        let mut inner = self.write();
        let gone: Vec<String> = inner
            .brokers
            .iter()
            .filter(|(_, b)| self.expired(b, now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &gone {
            inner.unindex(name);
        }
        gone
    }

    /// The live brokers that serve `topic`, by broker name.
    pub fn route(&self, topic: &str, now: Instant) -> Vec<BrokerRoute> {
        let inner = self.read();
        let Some(names) = inner.topic_index.get(topic) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|name| {
                let b = inner.brokers.get(name)?;
                if self.expired(b, now) {
                    return None;
                }
                Some(BrokerRoute {
                    broker: name.clone(),
                    endpoints: b.endpoints.clone(),
                    topic: b.topics.get(topic)?.clone(),
                })
            })
            .collect()
    }

    /// The policy of consumer group `group` as the first live broker (by
    /// name) that knows it registered it.
    pub fn group(&self, group: &str, now: Instant) -> Option<GroupPolicy> {
        let inner = self.read();
        inner
            .brokers
            .values()
            .filter(|b| !self.expired(b, now))
            .find_map(|b| b.groups.get(group))
            .map(|g| GroupPolicy {
                fifo: g.fifo,
                max_retries: g.max_retries,
            })
    }

    /// Every live broker, by name.
    pub fn brokers(&self, now: Instant) -> Vec<BrokerSummary> {
        let inner = self.read();
        inner
            .brokers
            .iter()
            .filter(|(_, b)| !self.expired(b, now))
            .map(|(name, b)| BrokerSummary {
                cluster: b.cluster.clone(),
                name: name.clone(),
                endpoints: b.endpoints.clone(),
                version: b.version,
                topics: b.topics.len(),
                groups: b.groups.len(),
                last_seen: now.saturating_duration_since(b.last_seen),
            })
            .collect()
    }

    /// Topics served by at least one registered broker (expired ones
    /// count until [`Registry::expire`] drops them).
    pub fn topic_count(&self) -> usize {
        self.read().topic_index.len()
    }

    fn expired(&self, b: &BrokerState, now: Instant) -> bool {
        now.saturating_duration_since(b.last_seen) > self.expiry
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn topic(name: &str, queues: u32) -> TopicEntry {
        TopicEntry {
            name: TopicName::new(name).unwrap(),
            queues,
            message_type: MessageType::Normal,
            permission: Permission::ReadWrite,
        }
    }

    fn table(name: &str, version: u64, topics: &[(&str, u32)]) -> BrokerTable {
        BrokerTable {
            cluster: "c".to_owned(),
            name: name.to_owned(),
            endpoints: vec![format!("{name}.local:8081")],
            version,
            topics: topics.iter().map(|&(t, q)| topic(t, q)).collect(),
            groups: vec![GroupEntry {
                name: GroupName::new(format!("{name}-group")).unwrap(),
                fifo: true,
                max_retries: 3,
            }],
        }
    }

    fn brokers_of(r: &Registry, topic: &str, now: Instant) -> Vec<(String, u32)> {
        r.route(topic, now)
            .into_iter()
            .map(|b| (b.broker, b.topic.queues))
            .collect()
    }

    #[test]
    fn routes_merge_across_brokers_and_registration_replaces() {
        let r = Registry::new(Duration::from_secs(120));
        let now = Instant::now();
        r.register(table("b", 1, &[("orders", 4), ("audit", 1)]), now);
        r.register(table("a", 1, &[("orders", 8)]), now);
        assert_eq!(
            brokers_of(&r, "orders", now),
            [("a".to_owned(), 8), ("b".to_owned(), 4)]
        );
        assert_eq!(brokers_of(&r, "audit", now), [("b".to_owned(), 1)]);
        assert!(r.route("nope", now).is_empty());
        let route = r.route("audit", now);
        assert_eq!(route[0].endpoints, ["b.local:8081"]);

        // b re-registers without audit and with orders grown.
        r.register(table("b", 2, &[("orders", 16)]), now);
        assert!(r.route("audit", now).is_empty());
        assert_eq!(
            brokers_of(&r, "orders", now),
            [("a".to_owned(), 8), ("b".to_owned(), 16)]
        );
        let listed: Vec<_> = r
            .brokers(now)
            .into_iter()
            .map(|b| (b.name, b.version, b.topics, b.groups))
            .collect();
        assert_eq!(
            listed,
            [("a".to_owned(), 1, 1, 1), ("b".to_owned(), 2, 1, 1)]
        );
        assert_eq!(
            r.group("a-group", now),
            Some(GroupPolicy {
                fifo: true,
                max_retries: 3
            })
        );
        assert_eq!(r.group("other", now), None);
    }

    #[test]
    fn heartbeats_keep_brokers_alive_and_silence_expires_them() {
        let expiry = Duration::from_millis(300);
        let r = Registry::new(expiry);
        let t0 = Instant::now();
        r.register(table("a", 1, &[("orders", 4)]), t0);
        r.register(table("b", 1, &[("orders", 2)]), t0);

        // a heartbeats, b stays silent.
        let t1 = t0 + Duration::from_millis(200);
        assert!(!r.heartbeat("a", 1, t1));
        let t2 = t0 + Duration::from_millis(400);
        // Past b's expiry: it no longer routes even before expire() runs.
        assert_eq!(brokers_of(&r, "orders", t2), [("a".to_owned(), 4)]);
        assert_eq!(r.expire(t2), ["b"]);
        assert!(r.expire(t2).is_empty());
        assert_eq!(r.brokers(t2).len(), 1);
        assert_eq!(r.group("b-group", t2), None);

        // b's next heartbeat is told to register again; then it is back.
        assert!(r.heartbeat("b", 1, t2));
        r.register(table("b", 1, &[("orders", 2)]), t2);
        assert!(!r.heartbeat("b", 1, t2));
        assert_eq!(brokers_of(&r, "orders", t2).len(), 2);

        // A broker that says goodbye leaves at once.
        assert!(r.unregister("b"));
        assert!(!r.unregister("b"));
        assert_eq!(brokers_of(&r, "orders", t2), [("a".to_owned(), 4)]);

        // Expiry while nobody calls expire(): a late heartbeat is refused.
        let t3 = t2 + expiry + Duration::from_millis(1);
        assert!(r.heartbeat("a", 1, t3));
        assert!(r.route("orders", t3).is_empty());
    }

    #[test]
    fn version_change_and_restart_ask_for_registration() {
        let r = Registry::new(Duration::from_secs(120));
        let now = Instant::now();
        r.register(table("a", 7, &[("orders", 4)]), now);
        assert!(!r.heartbeat("a", 7, now));
        // The broker's table changed since it registered.
        assert!(r.heartbeat("a", 8, now));
        r.register(table("a", 8, &[("orders", 4)]), now);
        assert!(!r.heartbeat("a", 8, now));

        // A new registry (a restarted name server) knows nobody.
        let restarted = Registry::new(Duration::from_secs(120));
        assert!(restarted.heartbeat("a", 8, now));
    }

    #[test]
    fn a_hundred_thousand_topics() {
        let r = Registry::new(Duration::from_secs(120));
        let now = Instant::now();
        let names: Vec<String> = (0..100_000).map(|i| format!("topic-{i:06}")).collect();
        let topics: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 2)).collect();
        r.register(table("a", 1, &topics), now);
        r.register(table("b", 1, &topics[..10]), now);
        assert_eq!(brokers_of(&r, "topic-099999", now), [("a".to_owned(), 2)]);
        assert_eq!(brokers_of(&r, "topic-000009", now).len(), 2);
        // Re-registering the big table replaces it, without leftovers.
        r.register(table("a", 2, &topics[..5]), now);
        assert!(r.route("topic-099999", now).is_empty());
        assert_eq!(r.read().topic_index.len(), 10);
    }
}
