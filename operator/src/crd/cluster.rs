//! `BrokerCluster`: a Tern cluster of name servers and broker groups.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a Tern cluster: name servers, broker groups, their
/// storage, configuration, scheduling and how clients reach them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "BrokerCluster",
    plural = "brokerclusters",
    namespaced,
    status = "BrokerClusterStatus",
    shortname = "tbc",
    validation = Rule::new("size(self.metadata.name) <= 40").message("a BrokerCluster name has at most 40 characters, so that the names of its StatefulSets and pods stay within Kubernetes limits"),
    category = "tern",
    doc = "A Tern cluster: name servers and broker groups, run as StatefulSets by the Tern operator.",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name": "Groups", "type": "integer", "jsonPath": ".status.readyBrokerGroups", "description": "Broker groups that are ready"}"#,
    printcolumn = r#"{"name": "Nameservers", "type": "integer", "jsonPath": ".status.readyNameservers", "description": "Name servers that are ready"}"#,
    printcolumn = r#"{"name": "Endpoint", "type": "string", "jsonPath": ".status.clientEndpoint", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BrokerClusterSpec {
    /// Container image holding the `tern` binary, e.g. `registry.example/tern:0.1.0`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// When the kubelet pulls the image. Default `IfNotPresent`.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// Secrets used to pull the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// The name servers: where clients and brokers find routes.
    #[serde(default)]
    pub nameserver: NameserverSpec,
    /// The broker groups: where messages are stored.
    #[serde(default)]
    pub broker: BrokerSpec,
    /// How clients reach the cluster.
    #[serde(default)]
    pub service: ClientServiceSpec,
    /// Where the pods may run; applies to name servers and brokers.
    #[serde(default)]
    pub scheduling: SchedulingSpec,
    /// Prometheus metrics of the brokers and name servers.
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// Client authentication: `None` (default) or `Acl` (every request
    /// signed by a user, checked against its access rules; users are
    /// `TernUser` resources).
    #[serde(default)]
    pub authentication: AuthenticationSpec,
    /// TLS on the gRPC ports of the brokers and name servers. Default
    /// `Permissive` with certificates the pods generate.
    #[serde(default)]
    pub tls: TlsSpec,
}

/// When the kubelet pulls the container image.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull on every start.
    Always,
    /// Pull only when the image is not on the node.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// The name servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NameserverSpec {
    /// Number of name server pods. Default 2.
    #[serde(default = "default_nameservers")]
    #[schemars(range(min = 1, max = 9))]
    pub replicas: i32,
    /// CPU and memory of each name server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_nameservers() -> i32 {
    2
}

impl Default for NameserverSpec {
    fn default() -> Self {
        Self {
            replicas: default_nameservers(),
            resources: None,
        }
    }
}

/// The broker groups. Each group is one StatefulSet with its own volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerSpec {
    /// Number of broker groups. Topics are spread over all groups.
    /// Lowering it is refused (condition `Degraded`, reason
    /// `ScaleDownRefused`) until draining a group is implemented. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 64))]
    pub groups: i32,
    /// Broker pods per group. Replication inside a group comes later; only
    /// 1 is accepted in v1alpha1.
    #[serde(default = "one")]
    #[x_kube(validation = Rule::new("self == 1").message("replication inside a broker group is not supported yet: replicasPerGroup must be 1"))]
    pub replicas_per_group: i32,
    /// CPU and memory of each broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The persistent volume of each broker.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Broker settings, rendered into each broker's `broker.toml`.
    #[serde(default)]
    pub config: BrokerConfigSpec,
}

fn one() -> i32 {
    1
}

impl Default for BrokerSpec {
    fn default() -> Self {
        Self {
            groups: 1,
            replicas_per_group: 1,
            resources: None,
            storage: StorageSpec::default(),
            config: BrokerConfigSpec::default(),
        }
    }
}

/// A broker's persistent volume and what happens to it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each broker's volume. Default `10Gi`.
    #[serde(default = "default_size")]
    pub size: Quantity,
    /// Storage class of the volumes; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// What happens to the volumes when the `BrokerCluster` is deleted.
    /// Default `Retain`: data is never deleted unless asked for.
    #[serde(default)]
    pub on_delete: VolumePolicy,
    /// What happens to a broker's volume when its pod is removed by a scale
    /// down. Default `Retain`.
    #[serde(default)]
    pub on_scale_down: VolumePolicy,
}

fn default_size() -> Quantity {
    Quantity("10Gi".to_owned())
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_size(),
            storage_class_name: None,
            on_delete: VolumePolicy::Retain,
            on_scale_down: VolumePolicy::Retain,
        }
    }
}

/// Whether a volume outlives its pod.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VolumePolicy {
    /// Keep the PersistentVolumeClaim (and so the data).
    #[default]
    Retain,
    /// Delete the PersistentVolumeClaim.
    Delete,
}

impl VolumePolicy {
    /// The spelling of StatefulSet's `persistentVolumeClaimRetentionPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retain => "Retain",
            Self::Delete => "Delete",
        }
    }
}

/// Broker settings. Every field has the broker's own default.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.diskHighWater <= self.diskHardLimit").message("diskHighWater must not be above diskHardLimit"))]
pub struct BrokerConfigSpec {
    /// `Async` (fsync in the background, the default) or `Sync` (a send is
    /// answered once its message is on disk).
    #[serde(default)]
    pub flush: FlushPolicy,
    /// Hours a message is kept. Default 72.
    #[serde(default = "default_retention_hours")]
    #[schemars(range(min = 1))]
    pub retention_hours: i32,
    /// Size of one commit-log segment file. Default 1 GiB.
    #[serde(default = "default_segment_bytes")]
    #[schemars(range(min = 4096))]
    pub segment_bytes: i64,
    /// Fraction of the volume in use above which the oldest data is deleted
    /// early. Default 0.85.
    #[serde(default = "default_high_water")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub disk_high_water: f64,
    /// Fraction of the volume in use at which sends are refused. Default 0.95.
    #[serde(default = "default_hard_limit")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub disk_hard_limit: f64,
    /// Largest message body accepted, in bytes. Default 4 MiB.
    #[serde(default = "default_max_body")]
    #[schemars(range(min = 1))]
    pub max_body_bytes: i64,
    /// Seconds between a broker's registrations with the name servers.
    /// Default 30.
    #[serde(default = "default_heartbeat")]
    #[schemars(range(min = 1, max = 3600))]
    pub heartbeat_interval_secs: i32,
}

fn default_retention_hours() -> i32 {
    72
}
fn default_segment_bytes() -> i64 {
    1 << 30
}
fn default_high_water() -> f64 {
    0.85
}
fn default_hard_limit() -> f64 {
    0.95
}
fn default_max_body() -> i64 {
    4 * 1024 * 1024
}
fn default_heartbeat() -> i32 {
    30
}

impl Default for BrokerConfigSpec {
    fn default() -> Self {
        Self {
            flush: FlushPolicy::Async,
            retention_hours: default_retention_hours(),
            segment_bytes: default_segment_bytes(),
            disk_high_water: default_high_water(),
            disk_hard_limit: default_hard_limit(),
            max_body_bytes: default_max_body(),
            heartbeat_interval_secs: default_heartbeat(),
        }
    }
}

/// When a stored message counts as written.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Answer the send once the message is in the page cache.
    #[default]
    Async,
    /// Answer the send once the message is fsynced.
    Sync,
}

/// The Service clients connect to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientServiceSpec {
    /// Service type. Default `ClusterIP`. Note that brokers advertise their
    /// in-cluster DNS names, so clients outside the cluster cannot yet follow
    /// the routes they receive.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations for the Service, e.g. for a cloud load balancer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service types the client Service may have.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    /// A cluster-internal virtual IP.
    #[default]
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// A cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Pod placement, copied to every name server and broker pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Node and pod affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Labels a node must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// How pods spread over zones or nodes. The pods carry the labels
    /// `app.kubernetes.io/instance=<cluster>` and
    /// `app.kubernetes.io/component=broker|nameserver` to select on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Priority class of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Metrics settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Expose `/metrics` for Prometheus (a `metrics` port and scrape
    /// annotations). Brokers serve their HTTP port either way, for probes.
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Client authentication settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSpec {
    /// `None`: clients are not authenticated. `Acl`: the brokers check
    /// every request (signature and access rules); the operator keeps an
    /// admin super user in the Secret `<cluster>-tern-admin`.
    #[serde(default, rename = "type")]
    pub type_: AuthenticationType,
}

/// Authentication modes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthenticationType {
    /// No authentication.
    #[default]
    None,
    /// Requests are signed by users (access key, secret key) and checked
    /// against their ACL 2.0-style rules.
    Acl,
}

/// TLS on the gRPC ports of the brokers and name servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.clientAuthentication || has(self.certificateSecret)").message("clientAuthentication needs a certificateSecret: its ca.crt is the CA client certificates are checked against"))]
#[x_kube(validation = Rule::new("!self.clientAuthentication || self.mode != 'Enforcing'").message("clientAuthentication is not supported with mode Enforcing yet: neither the brokers (towards the name servers) nor the operator (towards the brokers) present a client certificate; use Permissive"))]
pub struct TlsSpec {
    /// `Disabled` (plaintext only), `Permissive` (TLS and plaintext on the
    /// same port, the default) or `Enforcing` (TLS only: brokers then dial
    /// the name servers, and the operator the brokers, with TLS).
    #[serde(default)]
    pub mode: TlsMode,
    /// Name of a Secret of type `kubernetes.io/tls` in the cluster's
    /// namespace (`tls.crt`, `tls.key`, and `ca.crt` for `Enforcing` or
    /// `clientAuthentication`), e.g. one cert-manager keeps renewed. It is
    /// mounted at `/etc/tern/tls` and re-read in place when it changes.
    /// Without it every pod generates its own certificate, which clients
    /// cannot verify. Ignored under `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub certificate_secret: Option<String>,
    /// Require client certificates signed by the Secret's `ca.crt` on TLS
    /// connections (mutual TLS; plaintext connections are still served under
    /// `Permissive`). Needs `certificateSecret`. Default false.
    #[serde(default)]
    pub client_authentication: bool,
}

/// Which connections the gRPC ports serve.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext only.
    Disabled,
    /// TLS and plaintext on the same port, told apart by the first byte.
    #[default]
    Permissive,
    /// TLS only: plaintext calls are refused.
    Enforcing,
}

impl TlsMode {
    /// The spelling of the `[tls] mode` key in `tern`'s configuration files.
    pub fn as_config(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Permissive => "permissive",
            Self::Enforcing => "enforcing",
        }
    }
}

/// Observed state of a `BrokerCluster`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, with a CamelCase reason.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Name server pods that are ready.
    #[serde(default)]
    pub ready_nameservers: i32,
    /// Broker groups whose pods are all ready and up to date.
    #[serde(default)]
    pub ready_broker_groups: i32,
    /// Broker groups that exist (may be above `spec.broker.groups` while a
    /// scale down is refused).
    #[serde(default)]
    pub broker_groups: i32,
    /// `host:port` clients use as their endpoint (access point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_endpoint: Option<String>,
}
