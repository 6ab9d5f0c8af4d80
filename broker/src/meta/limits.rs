//! How many topics and consumer groups a registry holds at most.
//!
//! Groups are created on first use by any consumer (ReceiveMessage,
//! PullMessage, UpdateOffset name a group that need not exist yet), so
//! without a bound a client could make the broker remember any number
//! of them: registry entries, consumption state, metric series, and a
//! registration with every name server after each. Topics are created by
//! administrators only; their bound guards against runaway automation.
//! Either limit refuses only creation: what exists keeps being served,
//! and a registry opened with more than the limit (a lowered setting)
//! keeps it all.

use crate::error::{BrokerError, Result};

/// The most topics and groups a registry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    /// Topics (dead-letter topics included). Creating one more through
    /// the admin API is refused; the dead-letter topic the broker makes
    /// for a group is not (there is at most one per group). Default
    /// 100 000.
    pub max_topics: usize,
    /// Consumer groups, however created. Default 10 000.
    pub max_groups: usize,
}

impl RegistryLimits {
    /// Default [`RegistryLimits::max_topics`]: the largest registry the
    /// broker is measured with (created one by one in seconds, registered
    /// with name servers in one stream).
    pub const DEFAULT_MAX_TOPICS: usize = 100_000;
    /// Default [`RegistryLimits::max_groups`]: far more than deployments
    /// use, small enough that their consumption state and metric series
    /// stay within a few tens of MiB.
    pub const DEFAULT_MAX_GROUPS: usize = 10_000;

    /// Refuses `adding` topics to a registry holding `held`.
    pub(super) fn check_topics(&self, held: usize, adding: usize, name: &str) -> Result<()> {
        if held.saturating_add(adding) > self.max_topics {
            return Err(BrokerError::LimitReached(format!(
                "cannot create topic {name}: the broker holds {held} topics and its limit ([limits] max_topics) is {}; delete unused topics or raise the limit",
                self.max_topics
            )));
        }
        Ok(())
    }

    /// Refuses one more group in a registry holding `held`.
    pub(super) fn check_group(&self, held: usize, name: &str) -> Result<()> {
        if held >= self.max_groups {
            return Err(BrokerError::LimitReached(format!(
                "cannot create consumer group {name}: the broker holds {held} groups and its limit ([limits] max_groups) is {}; delete unused groups or raise the limit",
                self.max_groups
            )));
        }
        Ok(())
    }
}

impl Default for RegistryLimits {
    fn default() -> Self {
        Self {
            max_topics: Self::DEFAULT_MAX_TOPICS,
            max_groups: Self::DEFAULT_MAX_GROUPS,
        }
    }
}

#[cfg(test)]
mod tests {
    use tern_model::{GroupName, TopicName};

    use super::*;
    use crate::meta::{GroupConfig, MessageType, Permission, Registry, TopicConfig};

    fn topic(name: &str) -> TopicConfig {
        TopicConfig::new(
            TopicName::new(name).unwrap(),
            1,
            MessageType::Normal,
            Permission::ReadWrite,
        )
        .unwrap()
    }

    fn group(name: &str) -> GroupConfig {
        GroupConfig::with_defaults(GroupName::new(name).unwrap()).unwrap()
    }

    fn limited(e: Result<impl std::fmt::Debug>, setting: &str) {
        match e {
            Err(BrokerError::LimitReached(m)) => assert!(m.contains(setting), "{m}"),
            other => panic!("not refused by {setting}: {other:?}"),
        }
    }

    #[test]
    fn creation_stops_at_the_limits_and_what_exists_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path())
            .unwrap()
            .with_limits(RegistryLimits {
                max_topics: 3,
                max_groups: 2,
            });
        r.create_topic(topic("a")).unwrap();
        // A batch is refused whole when it would pass the limit.
        limited(
            r.create_topics(vec![topic("b"), topic("c"), topic("d")]),
            "max_topics",
        );
        r.create_topics(vec![topic("b"), topic("c")]).unwrap();
        limited(r.create_topic(topic("d")), "max_topics");
        // The broker's own dead-letter topics are not refused.
        r.ensure_topic(topic("%DLQ%g1")).unwrap();
        assert_eq!(r.counts(), (4, 0));

        r.ensure_group(group("g1")).unwrap();
        r.create_group(group("g2")).unwrap();
        limited(r.ensure_group(group("g3")), "max_groups");
        limited(r.create_group(group("g3")), "max_groups");
        // Existing groups are still found and served.
        assert_eq!(r.ensure_group(group("g1")).unwrap().name().as_str(), "g1");
        assert!(!r.has_group("g3") && r.has_group("g2"));

        // Room again once something is deleted.
        r.delete_group("g2").unwrap();
        r.ensure_group(group("g3")).unwrap();
        r.delete_topic("a").unwrap();
        r.delete_topic("b").unwrap();
        r.create_topic(topic("d")).unwrap();

        // Reopened under lower limits: everything stays, nothing new.
        drop(r);
        let r = Registry::open(dir.path())
            .unwrap()
            .with_limits(RegistryLimits {
                max_topics: 1,
                max_groups: 1,
            });
        assert_eq!(r.counts(), (3, 2));
        limited(r.create_topic(topic("e")), "max_topics");
        limited(r.ensure_group(group("g4")), "max_groups");
        assert!(r.ensure_group(group("g1")).is_ok());
    }
}
