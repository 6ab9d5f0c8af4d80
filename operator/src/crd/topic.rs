//! `Topic`: a topic on every broker group of a `BrokerCluster`.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use tern_model::{MessageType, Permission};

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
    #[serde(default, with = "crd_name")]
    #[schemars(with = "CrdEnum<MessageType>")]
    pub message_type: MessageType,
    /// Whether clients may send and receive. Default `ReadWrite`.
    #[serde(default, with = "crd_name")]
    #[schemars(with = "CrdEnum<Permission>")]
    pub permission: Permission,
}

fn default_queues() -> i32 {
    8
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

/// A `tern-model` enum as a `Topic` spells it: by its variant name
/// (`Normal`, `ReadWrite`), as Kubernetes resources write enum values.
/// (The model's own serde spelling, `NORMAL`, is the broker's files'.)
trait CrdName: Copy + PartialEq + 'static {
    /// The schema's name for the enum.
    const SCHEMA_NAME: &'static str;
    /// Every value's name, in the model's `ALL` order.
    const NAMES: &'static [&'static str];
    /// Every value.
    fn all() -> &'static [Self];
    /// This value's name.
    fn crd_name(self) -> &'static str;
}

impl CrdName for MessageType {
    const SCHEMA_NAME: &'static str = "MessageType";
    const NAMES: &'static [&'static str] = &["Normal", "Fifo", "Delay", "Transaction", "Mixed"];

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    fn crd_name(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Fifo => "Fifo",
            Self::Delay => "Delay",
            Self::Transaction => "Transaction",
            Self::Mixed => "Mixed",
        }
    }
}

impl CrdName for Permission {
    const SCHEMA_NAME: &'static str = "Permission";
    const NAMES: &'static [&'static str] = &["ReadWrite", "Read", "Write"];

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    fn crd_name(self) -> &'static str {
        match self {
            Self::ReadWrite => "ReadWrite",
            Self::Read => "Read",
            Self::Write => "Write",
        }
    }
}

/// serde `with` module for [`CrdName`] fields.
mod crd_name {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::CrdName;

    pub fn serialize<T: CrdName, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.crd_name())
    }

    pub fn deserialize<'de, T: CrdName, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let name = String::deserialize(d)?;
        T::all()
            .iter()
            .copied()
            .find(|v| v.crd_name() == name)
            .ok_or_else(|| D::Error::unknown_variant(&name, T::NAMES))
    }
}

/// The schema of a [`CrdName`] field: a string, one of the names.
struct CrdEnum<T>(PhantomData<T>);

impl<T: CrdName> JsonSchema for CrdEnum<T> {
    fn schema_name() -> Cow<'static, str> {
        T::SCHEMA_NAME.into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": T::NAMES })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<T: CrdName>() -> Vec<&'static str> {
        T::all().iter().map(|v| v.crd_name()).collect()
    }

    #[test]
    fn the_names_list_every_value() {
        assert_eq!(names::<MessageType>(), MessageType::NAMES);
        assert_eq!(names::<Permission>(), Permission::NAMES);
    }

    #[test]
    fn specs_read_and_write_the_crd_names() {
        let spec: TopicSpec = serde_json::from_value(serde_json::json!({
            "clusterRef": { "name": "prod" }, "messageType": "Fifo", "permission": "Read",
        }))
        .expect("a valid spec");
        assert_eq!(
            (spec.message_type, spec.permission, spec.queues),
            (MessageType::Fifo, Permission::Read, 8)
        );
        let json = serde_json::to_value(&spec).expect("json");
        assert_eq!(
            (&json["messageType"], &json["permission"]),
            (&"Fifo".into(), &"Read".into())
        );
        let defaults: TopicSpec =
            serde_json::from_value(serde_json::json!({ "clusterRef": { "name": "prod" } }))
                .expect("a valid spec");
        assert_eq!(
            (defaults.message_type, defaults.permission),
            (MessageType::Normal, Permission::ReadWrite)
        );
        let err = serde_json::from_value::<TopicSpec>(serde_json::json!({
            "clusterRef": { "name": "prod" }, "messageType": "NORMAL",
        }))
        .expect_err("the metadata spelling is not the CRD's");
        assert!(
            err.to_string().contains("expected one of `Normal`"),
            "{err}"
        );
    }
}
