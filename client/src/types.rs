//! The plain Rust values the admin client takes and returns.
//!
//! Conversions from protobuf live here, next to the types, and check what
//! they convert: an unknown enum value or a negative count is an error,
//! never a silent default. (The enums themselves, [`MessageType`] and
//! [`Permission`], are `tern-model`'s, converted by
//! `tern_protocol::convert`.)

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use tern_model::{GroupName, MessageType, Permission, TopicName};
use tern_protocol::admin as pb;
use tern_protocol::convert;

use crate::ClientError;

/// A topic's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topic {
    /// The topic's name.
    pub name: TopicName,
    /// Number of queues.
    pub queues: u32,
    /// Which messages it accepts.
    #[serde(serialize_with = "as_text")]
    pub message_type: MessageType,
    /// Who may send and receive.
    #[serde(serialize_with = "as_text")]
    pub permission: Permission,
}

/// Serializes an enum as its command-line name (`fifo`, `read-write`),
/// the spelling the CLI's JSON output has always used, rather than the
/// metadata spelling of its own serde implementation.
fn as_text<T: fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// A topic to create or an update to one: `None` means the broker's
/// default (create) or the current value (update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: TopicName,
    /// Number of queues; must be at least 1 when given.
    pub queues: Option<u32>,
    /// Which messages it accepts.
    pub message_type: Option<MessageType>,
    /// Who may send and receive.
    pub permission: Option<Permission>,
}

impl TopicSpec {
    /// A spec naming `name` and leaving everything else unset.
    pub fn new(name: TopicName) -> Self {
        Self {
            name,
            queues: None,
            message_type: None,
            permission: None,
        }
    }

    pub(crate) fn to_pb(&self) -> Result<pb::Topic, ClientError> {
        let queue_count = match self.queues {
            None => 0,
            Some(0) => {
                return Err(ClientError::InvalidArgument(
                    "a topic needs at least 1 queue".into(),
                ));
            }
            Some(n) => i32::try_from(n).map_err(|_| {
                ClientError::InvalidArgument(format!("{n} queues is more than a topic can have"))
            })?,
        };
        Ok(pb::Topic {
            name: self.name.to_string(),
            queue_count,
            message_type: self
                .message_type
                .map_or(0, |t| pb::MessageType::from(t) as i32),
            permission: self
                .permission
                .map_or(0, |p| pb::Permission::from(p) as i32),
        })
    }
}

/// The stored range of one queue of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueRange {
    /// The queue's id.
    pub queue_id: u32,
    /// Offset of the oldest message still stored.
    pub min_offset: u64,
    /// Offset the next message will get.
    pub max_offset: u64,
}

/// A topic and its queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicDetails {
    /// The topic's settings.
    pub topic: Topic,
    /// Its queues, by id.
    pub queues: Vec<QueueRange>,
}

/// A consumer group's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The group's name.
    pub name: GroupName,
    /// Messages of one message group are delivered in order, one at a time.
    pub fifo: bool,
    /// Redeliveries before a message goes to the dead-letter queue.
    pub max_retries: u32,
}

/// A group to create or an update to one: `None` means the broker's default
/// (create) or the current value (update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The group's name.
    pub name: GroupName,
    /// FIFO delivery.
    pub fifo: Option<bool>,
    /// Redeliveries before dead-lettering; must be at least 1 when given.
    pub max_retries: Option<u32>,
}

impl GroupSpec {
    /// A spec naming `name` and leaving everything else unset.
    pub fn new(name: GroupName) -> Self {
        Self {
            name,
            fifo: None,
            max_retries: None,
        }
    }
}

/// A group's progress in one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueLag {
    /// The queue's id.
    pub queue_id: u32,
    /// Offset the next message stored in the queue will get.
    pub broker_offset: u64,
    /// The group's committed offset, if it ever committed one here.
    pub consumer_offset: Option<u64>,
    /// Messages stored and not yet consumed by the group.
    pub lag: u64,
    /// Messages received by the group and not yet acknowledged.
    pub inflight: u64,
    /// Messages a FIFO group has read but holds back until the earlier
    /// messages of their message group are done.
    pub held: u64,
}

/// A group's progress in the queues of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicLag {
    /// The topic.
    pub topic: TopicName,
    /// One entry per queue.
    pub queues: Vec<QueueLag>,
}

/// A group and its progress in every topic it consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDetails {
    /// The group's settings.
    pub group: Group,
    /// One entry per topic, sorted by name.
    pub topics: Vec<TopicLag>,
}

impl GroupDetails {
    /// The group's total lag over every topic and queue.
    pub fn total_lag(&self) -> u64 {
        self.topics
            .iter()
            .flat_map(|t| &t.queues)
            .map(|q| q.lag)
            .sum()
    }
}

/// Storage figures of one broker; offsets are byte positions in its
/// commit log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StoreStats {
    /// First byte still stored.
    pub min_offset: u64,
    /// End of the written data.
    pub max_offset: u64,
    /// End of the data known to be on disk.
    pub flushed_offset: u64,
    /// Share of the store's file system in use, 0.0 to 1.0.
    pub disk_usage: f64,
    /// The disk is past its hard limit: sends are refused.
    pub disk_full: bool,
}

/// One broker of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokerStatus {
    /// The broker's name.
    pub name: String,
    /// Where clients reach it, as `host:port`.
    pub endpoints: Vec<String>,
    /// Topics it serves.
    pub topic_count: u32,
    /// Its storage, if it reported it.
    pub store: Option<StoreStats>,
    /// Its view of its replicated group, if it is a replica of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaStatus>,
}

/// A replica's view of its replicated group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// Its id in the group.
    pub id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `stopped`.
    pub role: String,
    /// The Raft term (epoch) it is in.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Index of the last entry in its log.
    pub last_index: u64,
    /// Index of the last entry applied to its store.
    pub applied_index: u64,
    /// On the leader: every replica's progress.
    pub replicas: Vec<ReplicaProgress>,
}

/// One replica's progress, as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaProgress {
    pub id: u64,
    /// Its replication address.
    pub address: String,
    /// The highest index known to match the leader's log.
    pub matched_index: Option<u64>,
}

/// The brokers of a cluster as the endpoint sees them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    /// Every broker.
    pub brokers: Vec<BrokerStatus>,
}

/// A message as a broker stored it, found by
/// [`AdminClient::get_message`](crate::AdminClient::get_message) or
/// [`AdminClient::query_messages`](crate::AdminClient::query_messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The id the producer gave it.
    pub message_id: String,
    /// Its topic.
    pub topic: TopicName,
    /// Its queue.
    pub queue_id: u32,
    /// Its offset in the queue.
    pub queue_offset: u64,
    /// When the broker stored it, in milliseconds since the Unix epoch.
    pub store_timestamp_ms: i64,
    /// When the producer created it, in milliseconds since the Unix epoch.
    pub born_timestamp_ms: i64,
    /// Its tag, if any.
    pub tag: Option<String>,
    /// Its keys.
    pub keys: Vec<String>,
    /// Its user properties.
    pub properties: BTreeMap<String, String>,
    /// Its body.
    pub body: Vec<u8>,
    /// Byte position of its record in the broker's commit log.
    pub commit_log_offset: u64,
}

/// What [`AdminClient::query_messages`](crate::AdminClient::query_messages)
/// looks for in one topic: messages with a key, stored in a time range, or
/// both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    /// The topic to search.
    pub topic: TopicName,
    /// Only messages carrying this key; the newest ones are returned.
    pub key: Option<String>,
    /// Only messages stored at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only messages stored before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Most messages to return, 1 to 1024; `None` means the broker's
    /// default (32).
    pub max_messages: Option<u32>,
}

impl MessageQuery {
    /// A query for any message of `topic` (the oldest ones are returned).
    pub fn new(topic: TopicName) -> Self {
        Self {
            topic,
            key: None,
            since_ms: None,
            until_ms: None,
            max_messages: None,
        }
    }

    /// The request, checked: an empty key, an empty time range or a
    /// maximum outside 1..=1024 is refused before anything is sent.
    pub(crate) fn to_pb(&self) -> Result<pb::QueryMessagesRequest, ClientError> {
        if self.key.as_deref() == Some("") {
            return Err(ClientError::InvalidArgument("the key is empty".into()));
        }
        if let (Some(since), Some(until)) = (self.since_ms, self.until_ms)
            && until <= since
        {
            return Err(ClientError::InvalidArgument(
                "the end of the time range must be later than its start".into(),
            ));
        }
        let max_messages = match self.max_messages {
            None => 0,
            Some(n @ 1..=1024) => n,
            Some(n) => {
                return Err(ClientError::InvalidArgument(format!(
                    "at most 1 to 1024 messages can be asked for, not {n}"
                )));
            }
        };
        Ok(pb::QueryMessagesRequest {
            topic: self.topic.to_string(),
            key: self.key.clone(),
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            max_messages,
        })
    }
}

/// The answer to a [`MessageQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQueryResult {
    /// The messages found, oldest first.
    pub messages: Vec<StoredMessage>,
    /// More messages matched than were returned.
    pub truncated: bool,
}

// ---------------------------------------------------------------------------
// From protobuf, checked
// ---------------------------------------------------------------------------

fn count(what: &str, value: i32) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{what} is negative ({value})"))
}

pub(crate) fn topic_from(t: pb::Topic) -> Result<Topic, String> {
    Ok(Topic {
        name: TopicName::new(t.name).map_err(|e| e.to_string())?,
        queues: count("queue count", t.queue_count)?,
        message_type: convert::message_type(t.message_type)
            .ok()
            .flatten()
            .ok_or_else(|| format!("unknown message type {}", t.message_type))?,
        permission: convert::permission(t.permission)
            .ok()
            .flatten()
            .ok_or_else(|| format!("unknown permission {}", t.permission))?,
    })
}

pub(crate) fn queue_range_from(q: &pb::TopicQueue) -> Result<QueueRange, String> {
    Ok(QueueRange {
        queue_id: count("queue id", q.queue_id)?,
        min_offset: q.min_offset,
        max_offset: q.max_offset,
    })
}

pub(crate) fn group_from(g: pb::Group) -> Result<Group, String> {
    Ok(Group {
        name: GroupName::new(g.name).map_err(|e| e.to_string())?,
        fifo: g.fifo,
        max_retries: count("max retries", g.max_retries)?,
    })
}

pub(crate) fn group_to_pb(spec: &GroupSpec) -> Result<pb::Group, ClientError> {
    let max_retries = match spec.max_retries {
        None => 0,
        Some(0) => {
            return Err(ClientError::InvalidArgument(
                "max retries must be at least 1".into(),
            ));
        }
        Some(n) => i32::try_from(n)
            .map_err(|_| ClientError::InvalidArgument(format!("max retries {n} is too large")))?,
    };
    Ok(pb::Group {
        name: spec.name.to_string(),
        fifo: spec.fifo.unwrap_or(false),
        max_retries,
    })
}

pub(crate) fn topic_lag_from(t: pb::TopicLag) -> Result<TopicLag, String> {
    let queues = t
        .queues
        .iter()
        .map(|q| {
            Ok(QueueLag {
                queue_id: count("queue id", q.queue_id)?,
                broker_offset: q.broker_offset,
                consumer_offset: q.consumer_offset,
                lag: q.lag,
                inflight: q.inflight,
                held: q.held,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(TopicLag {
        topic: TopicName::new(t.topic).map_err(|e| e.to_string())?,
        queues,
    })
}

pub(crate) fn broker_from(b: pb::BrokerStatus) -> Result<BrokerStatus, String> {
    Ok(BrokerStatus {
        name: b.name,
        endpoints: b.endpoints,
        topic_count: count("topic count", b.topic_count)?,
        store: b.store.map(|s| StoreStats {
            min_offset: s.min_offset,
            max_offset: s.max_offset,
            flushed_offset: s.flushed_offset,
            disk_usage: s.disk_usage,
            disk_full: s.disk_full,
        }),
        replica: b.replica.map(|r| ReplicaStatus {
            id: r.id,
            role: r.role,
            term: r.term,
            leader: r.leader,
            last_index: r.last_index,
            applied_index: r.applied_index,
            replicas: r
                .replicas
                .into_iter()
                .map(|p| ReplicaProgress {
                    id: p.id,
                    address: p.address,
                    matched_index: p.matched_index,
                })
                .collect(),
        }),
    })
}

pub(crate) fn stored_message_from(m: pb::StoredMessage) -> Result<StoredMessage, String> {
    Ok(StoredMessage {
        message_id: m.message_id,
        topic: TopicName::new(m.topic).map_err(|e| e.to_string())?,
        queue_id: count("queue id", m.queue_id)?,
        queue_offset: m.queue_offset,
        store_timestamp_ms: m.store_timestamp_ms,
        born_timestamp_ms: m.born_timestamp_ms,
        tag: m.tag,
        keys: m.keys,
        properties: m.properties.into_iter().collect(),
        body: m.body,
        commit_log_offset: m.commit_log_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_read_as_the_cli_writes_them() {
        let topic = Topic {
            name: TopicName::new("orders").unwrap(),
            queues: 4,
            message_type: MessageType::Fifo,
            permission: Permission::ReadWrite,
        };
        let json = serde_json::to_string(&topic).unwrap();
        assert_eq!(
            json,
            r#"{"name":"orders","queues":4,"message_type":"fifo","permission":"read-write"}"#
        );
        for unset in [0, 99] {
            let bad = pb::Topic {
                name: "orders".into(),
                queue_count: 4,
                message_type: unset,
                permission: 1,
            };
            let err = topic_from(bad).unwrap_err();
            assert_eq!(err, format!("unknown message type {unset}"));
        }
    }

    #[test]
    fn specs_check_their_numbers() {
        let name = TopicName::new("orders").unwrap();
        let mut spec = TopicSpec::new(name);
        let pb = spec.to_pb().unwrap();
        assert_eq!((pb.queue_count, pb.message_type, pb.permission), (0, 0, 0));
        spec.queues = Some(0);
        assert!(spec.to_pb().is_err());
        spec.queues = Some(u32::MAX);
        assert!(spec.to_pb().is_err());
        spec.queues = Some(4);
        spec.message_type = Some(MessageType::Fifo);
        let pb = spec.to_pb().unwrap();
        assert_eq!(pb.queue_count, 4);
        assert_eq!(pb.message_type, pb::MessageType::Fifo as i32);

        let mut g = GroupSpec::new(GroupName::new("billing").unwrap());
        assert_eq!(group_to_pb(&g).unwrap().max_retries, 0);
        g.max_retries = Some(0);
        assert!(group_to_pb(&g).is_err());
    }

    #[test]
    fn responses_are_checked() {
        let bad = pb::Topic {
            name: "orders".into(),
            queue_count: -1,
            message_type: 1,
            permission: 1,
        };
        assert!(topic_from(bad).unwrap_err().contains("negative"));
        let bad_name = pb::Group {
            name: "no spaces".into(),
            fifo: false,
            max_retries: 3,
        };
        assert!(group_from(bad_name).is_err());
    }

    #[test]
    fn message_queries_check_their_bounds() {
        let mut q = MessageQuery::new(TopicName::new("orders").unwrap());
        assert_eq!(q.to_pb().unwrap().max_messages, 0);
        q.max_messages = Some(0);
        assert!(q.to_pb().is_err());
        q.max_messages = Some(1025);
        assert!(q.to_pb().is_err());
        q.max_messages = Some(1024);
        q.since_ms = Some(2_000);
        q.until_ms = Some(2_000);
        assert!(q.to_pb().is_err());
        q.until_ms = Some(2_001);
        q.key = Some(String::new());
        assert!(q.to_pb().is_err());
        q.key = Some("k".into());
        let pb = q.to_pb().unwrap();
        assert_eq!(
            (pb.key.as_deref(), pb.since_ms, pb.until_ms, pb.max_messages),
            (Some("k"), Some(2_000), Some(2_001), 1024)
        );
        let bad = pb::StoredMessage {
            topic: "orders".into(),
            queue_id: -3,
            ..Default::default()
        };
        assert!(stored_message_from(bad).unwrap_err().contains("negative"));
    }
}
