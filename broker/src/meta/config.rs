//! Topic and group configurations, valid by construction.

use serde::{Deserialize, Serialize};
use tern_model::{GroupName, TopicName};
/// A topic's message type and permission, defined in `tern-model` (their
/// serde spelling, `NORMAL` or `READ_WRITE`, is the metadata files').
pub use tern_model::{MessageType, Permission};

use crate::error::{BrokerError, Result};

/// A topic's configuration, valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTopic")]
pub struct TopicConfig {
    name: TopicName,
    queues: u32,
    message_type: MessageType,
    permission: Permission,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    name: TopicName,
    queues: u32,
    message_type: MessageType,
    permission: Permission,
}

impl TryFrom<RawTopic> for TopicConfig {
    type Error = BrokerError;
    fn try_from(r: RawTopic) -> Result<Self> {
        Self::new(r.name, r.queues, r.message_type, r.permission)
    }
}

impl TopicConfig {
    /// Most queues one topic may have.
    pub const MAX_QUEUES: u32 = 1024;

    /// Validates and builds a topic config: `queues` must be in
    /// `1..=MAX_QUEUES`, and the name must not be a park's system topic
    /// (`%PARK%...`, see `crate::park`).
    pub fn new(
        name: TopicName,
        queues: u32,
        message_type: MessageType,
        permission: Permission,
    ) -> Result<Self> {
        if name.as_str().starts_with(PARK_PREFIX) {
            return Err(BrokerError::Invalid(format!(
                "topic names starting with {PARK_PREFIX} are reserved for the broker"
            )));
        }
        if !(1..=Self::MAX_QUEUES).contains(&queues) {
            return Err(BrokerError::Invalid(format!(
                "topic {name}: queue count {queues} is outside 1..={}",
                Self::MAX_QUEUES
            )));
        }
        Ok(Self {
            name,
            queues,
            message_type,
            permission,
        })
    }

    pub fn name(&self) -> &TopicName {
        &self.name
    }

    pub fn queues(&self) -> u32 {
        self.queues
    }

    /// The queue a key (a message group, or a message id) maps to: a
    /// stable hash (FNV-1a, as tags), so a key keeps its queue across
    /// sends and restarts while the queue count stays.
    pub fn queue_of(&self, key: &str) -> u32 {
        let h = tern_model::tag_hash(key) % u64::from(self.queues.max(1));
        u32::try_from(h).unwrap_or(0)
    }

    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    pub fn permission(&self) -> Permission {
        self.permission
    }
}

/// A consumer group's configuration, valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGroup")]
pub struct GroupConfig {
    name: GroupName,
    fifo: bool,
    max_retries: u32,
    /// Derived from the name.
    #[serde(skip_serializing)]
    dlq: TopicName,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: GroupName,
    fifo: bool,
    max_retries: u32,
}

impl TryFrom<RawGroup> for GroupConfig {
    type Error = BrokerError;
    fn try_from(r: RawGroup) -> Result<Self> {
        Self::new(r.name, r.fifo, r.max_retries)
    }
}

impl GroupConfig {
    /// Redeliveries after the first delivery, unless configured.
    pub const DEFAULT_MAX_RETRIES: u32 = 16;
    /// Highest `max_retries` accepted.
    pub const MAX_RETRIES_LIMIT: u32 = 64;
    /// Longest group name accepted: short enough that `%RETRY%<group>` and
    /// `%DLQ%<group>` are valid topic names.
    pub const MAX_NAME_LEN: usize = TopicName::MAX_LEN - RETRY_PREFIX.len();

    /// Validates and builds a group config.
    pub fn new(name: GroupName, fifo: bool, max_retries: u32) -> Result<Self> {
        if name.as_str().len() > Self::MAX_NAME_LEN {
            return Err(BrokerError::Invalid(format!(
                "group name {name} is {} characters; the limit is {}",
                name.as_str().len(),
                Self::MAX_NAME_LEN
            )));
        }
        if max_retries > Self::MAX_RETRIES_LIMIT {
            return Err(BrokerError::Invalid(format!(
                "group {name}: max retries {max_retries} is above {}",
                Self::MAX_RETRIES_LIMIT
            )));
        }
        Ok(Self {
            dlq: dlq_topic_name(name.as_str())?,
            name,
            fifo,
            max_retries,
        })
    }

    /// A non-FIFO group with the default retry limit.
    pub fn with_defaults(name: GroupName) -> Result<Self> {
        Self::new(name, false, Self::DEFAULT_MAX_RETRIES)
    }

    pub fn name(&self) -> &GroupName {
        &self.name
    }

    pub fn fifo(&self) -> bool {
        self.fifo
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Deliveries of one message before it goes to the dead-letter queue
    /// (the first one plus `max_retries` redeliveries).
    pub fn max_deliveries(&self) -> u32 {
        self.max_retries + 1
    }

    /// The group's dead-letter topic, `%DLQ%<group>`.
    pub fn dlq_topic(&self) -> &TopicName {
        &self.dlq
    }
}

const RETRY_PREFIX: &str = "%RETRY%";
const DLQ_PREFIX: &str = "%DLQ%";
/// The prefix of the system topics holding parked (delayed and half)
/// messages.
pub(crate) const PARK_PREFIX: &str = "%PARK%";

/// `%DLQ%<group>`, the dead-letter topic of a group.
pub fn dlq_topic_name(group: &str) -> Result<TopicName> {
    Ok(TopicName::new(format!("{DLQ_PREFIX}{group}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_at_construction() {
        let n = TopicName::new("t").unwrap();
        for q in [0, 1025] {
            assert!(matches!(
                TopicConfig::new(n.clone(), q, MessageType::Fifo, Permission::Read),
                Err(BrokerError::Invalid(_))
            ));
        }
        assert!(TopicConfig::new(n, 1024, MessageType::Fifo, Permission::Read).is_ok());
        let park = TopicName::new("%PARK%TIMER").unwrap();
        assert!(matches!(
            TopicConfig::new(park, 1, MessageType::Normal, Permission::ReadWrite),
            Err(BrokerError::Invalid(_))
        ));
        let g = GroupName::new("g").unwrap();
        assert!(GroupConfig::new(g.clone(), false, 65).is_err());
        assert_eq!(GroupConfig::new(g, true, 64).unwrap().max_deliveries(), 65);
        let long = GroupName::new("g".repeat(121)).unwrap();
        assert!(GroupConfig::with_defaults(long).is_err());
        let longest = GroupConfig::with_defaults(GroupName::new("g".repeat(120)).unwrap()).unwrap();
        assert_eq!(longest.dlq_topic().as_str().len(), 125);
    }

    #[test]
    fn json_is_validated_too() {
        let bad = r#"{"name":"t","queues":0,"message_type":"NORMAL","permission":"READ"}"#;
        assert!(serde_json::from_str::<TopicConfig>(bad).is_err());
        let good = r#"{"name":"t","queues":4,"message_type":"MIXED","permission":"READ_WRITE"}"#;
        let t: TopicConfig = serde_json::from_str(good).unwrap();
        assert_eq!((t.queues(), t.message_type()), (4, MessageType::Mixed));
        let bad = r#"{"name":"g","fifo":false,"max_retries":100}"#;
        assert!(serde_json::from_str::<GroupConfig>(bad).is_err());
    }
}
