//! `ConsumerGroup`: a consumer group on every broker group of a cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::ClusterRef;

/// Desired state of a consumer group, kept in step with the brokers like a
/// `Topic`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "ConsumerGroup",
    plural = "consumergroups",
    namespaced,
    status = "ConsumerGroupStatus",
    shortname = "tcg",
    category = "tern",
    doc = "A Tern consumer group, kept in step with the brokers of a BrokerCluster by the Tern operator.",
    printcolumn = r#"{"name": "Cluster", "type": "string", "jsonPath": ".spec.clusterRef.name"}"#,
    printcolumn = r#"{"name": "Group", "type": "string", "jsonPath": ".status.groupName"}"#,
    printcolumn = r#"{"name": "FIFO", "type": "boolean", "jsonPath": ".spec.fifo"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.groupName) == has(oldSelf.groupName)").message("groupName cannot be added or removed"))]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupSpec {
    /// The cluster the group lives on.
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,
    /// Name of the group in the brokers, when it differs from
    /// `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 127))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("groupName is immutable"))]
    pub group_name: Option<String>,
    /// Deliver the messages of one message group in order, one at a time.
    /// Default false.
    #[serde(default)]
    pub fifo: bool,
    /// What happens to a message its consumers fail to process.
    #[serde(default)]
    pub retry_policy: RetryPolicy,
}

/// Redelivery settings of a consumer group.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Deliveries after the first before a message goes to the group's
    /// dead-letter queue. Default 16.
    #[serde(default = "default_max_retries")]
    #[schemars(range(min = 1, max = 64))]
    pub max_retries: i32,
}

fn default_max_retries() -> i32 {
    16
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: default_max_retries(),
        }
    }
}

impl ConsumerGroup {
    /// The group's name in the brokers.
    pub fn group_name(&self) -> &str {
        self.spec
            .group_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// Observed state of a `ConsumerGroup`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with reasons as for `Topic`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The group's name in the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Broker groups the consumer group is in step with.
    #[serde(default)]
    pub synced_broker_groups: i32,
}
