//! `TernUser`: a user of a `BrokerCluster` with authentication `Acl`, its
//! secret key in a Secret, its access rules in every broker.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::ClusterRef;

/// Set this annotation to a new value (a date, a counter) to give the user
/// a new secret key: the Secret is rewritten and the brokers take the new
/// key; the old one is refused from then on.
pub const ROTATE_ANNOTATION: &str = "tern.dev/rotate-secret";

/// Desired state of a user. The resource is the truth: the operator
/// creates the user on every broker group, keeps its access rules exactly
/// as listed, writes its credentials to a Secret and deletes the user from
/// the brokers when the resource is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "TernUser",
    plural = "ternusers",
    namespaced,
    status = "TernUserStatus",
    shortname = "tu",
    category = "tern",
    doc = "A user of a Tern BrokerCluster with authentication Acl: its credentials in a Secret, its access rules in the brokers, kept by the Tern operator.",
    printcolumn = r#"{"name": "Cluster", "type": "string", "jsonPath": ".spec.clusterRef.name"}"#,
    printcolumn = r#"{"name": "User", "type": "string", "jsonPath": ".status.userName"}"#,
    printcolumn = r#"{"name": "Secret", "type": "string", "jsonPath": ".status.secretName"}"#,
    printcolumn = r#"{"name": "Super", "type": "boolean", "jsonPath": ".spec.superUser"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.userName) == has(oldSelf.userName)").message("userName cannot be added or removed"))]
#[serde(rename_all = "camelCase")]
pub struct TernUserSpec {
    /// The cluster the user belongs to (authentication `Acl`).
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,
    /// The user's name in the brokers (its access key), when it differs
    /// from `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 127))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("userName is immutable"))]
    pub user_name: Option<String>,
    /// A super user may do everything, its rules aside. Default false.
    #[serde(default)]
    pub super_user: bool,
    /// The access rules; the brokers get exactly these. A request no rule
    /// allows is refused; a matching `Deny` wins over any `Allow`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<AclRule>,
    /// The Secret the credentials are written to (`accessKey`,
    /// `secretKey`), in the same namespace. Default: `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
}

/// One access rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// The topics or groups the rule is about.
    pub resource: AclResource,
    /// What it allows or denies.
    #[schemars(length(min = 1))]
    pub actions: Vec<AclAction>,
    /// `Allow` (default) or `Deny`.
    #[serde(default)]
    pub decision: AclDecision,
    /// Client addresses or networks (`10.0.0.0/8`) the rule applies to;
    /// none: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// The resources a rule is about.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AclResource {
    /// `Topic` or `Group`.
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// A name, `prefix*`, or `*` for all.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
}

/// The kind of resource of a rule.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclResourceType {
    /// Topics.
    Topic,
    /// Consumer groups.
    Group,
}

/// An action a rule allows or denies.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclAction {
    /// Send to a topic.
    Pub,
    /// Receive from a topic (on the topic) as a group (on the group).
    Sub,
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
    /// Describe, see lag, look up messages.
    Get,
    /// List (needs a rule on the pattern `*`).
    List,
}

/// Allow or deny.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AclDecision {
    /// Allow.
    #[default]
    Allow,
    /// Deny; wins over any allow.
    Deny,
}

impl TernUser {
    /// The user's name in the brokers (its access key).
    pub fn user_name(&self) -> &str {
        self.spec
            .user_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// The Secret holding the credentials.
    pub fn secret_name(&self) -> &str {
        self.spec
            .secret_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// The value of the rotation annotation, if set.
    pub fn rotation(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ROTATE_ANNOTATION))
            .map(String::as_str)
    }
}

/// Observed state of a `TernUser`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TernUserStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with reasons such as `Synced`, `ResourceConflict`,
    /// `ClusterNotFound`, `AuthenticationDisabled`, `BrokerUnavailable`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The user's name in the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The Secret holding its credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Broker groups the user is in step with.
    #[serde(default)]
    pub synced_broker_groups: i32,
    /// A digest of the secret key every broker group has (never the key):
    /// when the Secret's key differs, the brokers are given it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<String>,
    /// The last value of the `tern.dev/rotate-secret` annotation acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_for: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_default_and_read_the_crd_names() {
        let user: TernUser = serde_json::from_value(serde_json::json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
            "metadata": { "name": "orders-app", "namespace": "mq" },
            "spec": {
                "clusterRef": { "name": "prod" },
                "acls": [{ "resource": { "type": "Topic", "name": "orders*" }, "actions": ["Pub", "Sub"] }],
            },
        }))
        .expect("a valid TernUser");
        assert_eq!(user.user_name(), "orders-app");
        assert_eq!(user.secret_name(), "orders-app");
        assert!(!user.spec.super_user);
        let rule = &user.spec.acls[0];
        assert_eq!(rule.decision, AclDecision::Allow);
        assert_eq!(rule.resource.type_, AclResourceType::Topic);
        assert_eq!(rule.actions, [AclAction::Pub, AclAction::Sub]);
        assert_eq!(user.rotation(), None);
    }
}
