//! `Topic`: a topic on every broker group of a `BrokerCluster`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::ClusterRef;

/// Desired state of a topic. The resource is the truth: the operator
/// creates the topic on every broker group, reverts changes made inside the
/// brokers and deletes the topic when the resource is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "Topic",
    plural = "topics",
    namespaced,
    status = "TopicStatus",
    shortname = "ttopic",
    category = "tern",
    doc = "A Tern topic, kept in step with the brokers of a BrokerCluster by the Tern operator.",
    printcolumn = r#"{"name": "Cluster", "type": "string", "jsonPath": ".spec.clusterRef.name"}"#,
    printcolumn = r#"{"name": "Topic", "type": "string", "jsonPath": ".status.topicName"}"#,
    printcolumn = r#"{"name": "Queues", "type": "integer", "jsonPath": ".spec.queues"}"#,
    printcolumn = r#"{"name": "Type", "type": "string", "jsonPath": ".spec.messageType"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.topicName) == has(oldSelf.topicName)").message("topicName cannot be added or removed"))]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// The cluster the topic lives on.
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,
    /// Name of the topic in the brokers, when it differs from
    /// `metadata.name` (broker topic names allow upper case and `_`).
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 127))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("topicName is immutable"))]
    pub topic_name: Option<String>,
    /// Queues per broker group. May grow, never shrink. Default 8.
    #[serde(default = "default_queues")]
    #[schemars(range(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("queues cannot be lowered"))]
    pub queues: i32,
    /// Kind of messages the topic accepts. Default `Normal`.
    #[serde(default)]
    pub message_type: MessageType,
    /// Whether clients may send and receive. Default `ReadWrite`.
    #[serde(default)]
    pub permission: Permission,
}

fn default_queues() -> i32 {
    8
}

/// Kind of messages a topic accepts.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageType {
    /// Plain messages.
    #[default]
    Normal,
    /// Ordered within a message group.
    Fifo,
    /// Delivered at a given time.
    Delay,
    /// Two-phase transactional messages.
    Transaction,
    /// Any of the above.
    Mixed,
}

/// Whether clients may send to and receive from a topic.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Permission {
    /// Send and receive.
    #[default]
    ReadWrite,
    /// Receive only.
    Read,
    /// Send only.
    Write,
}

impl Topic {
    /// The topic's name in the brokers.
    pub fn topic_name(&self) -> &str {
        self.spec
            .topic_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// Observed state of a `Topic`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with reasons such as `ResourceConflict`, `NotSupported`,
    /// `ClusterNotFound`, `BrokerUnavailable`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The topic's name in the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Broker groups the topic is in step with.
    #[serde(default)]
    pub synced_broker_groups: i32,
}
