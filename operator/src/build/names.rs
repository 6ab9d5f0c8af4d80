//! Names, labels and DNS addresses of a cluster's objects.
//!
//! Every child object of a `BrokerCluster` named `c` in namespace `ns` is
//! named from `c`, and every address the pods use is a stable DNS name of a
//! headless Service, never a pod IP.

use std::collections::BTreeMap;

/// Port of the name servers' gRPC service.
pub const NAMESERVER_PORT: i32 = 9876;
/// Port of the brokers' gRPC service (messaging and admin).
pub const BROKER_PORT: i32 = 8081;
/// Port of the HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
pub const HTTP_PORT: i32 = 8080;

/// Label: the application.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Label: the `BrokerCluster` a pod belongs to.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// Label: `broker` or `nameserver`.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Label: who manages the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label: the broker group index of a broker pod.
pub const LABEL_BROKER_GROUP: &str = "tern.dev/broker-group";
/// Pod template annotation: hash of the rendered configuration file, so a
/// configuration change rolls the pods.
pub const ANNOTATION_CONFIG_HASH: &str = "tern.dev/config-hash";
/// StatefulSet annotation: hash of the whole desired pod template, used to
/// roll broker groups one at a time.
pub const ANNOTATION_TEMPLATE_HASH: &str = "tern.dev/template-hash";

/// The two kinds of pods in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// A name server pod.
    Nameserver,
    /// A broker pod.
    Broker,
}

impl Component {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nameserver => "nameserver",
            Self::Broker => "broker",
        }
    }
}

/// The names of one cluster's objects.
#[derive(Clone, Debug)]
pub struct Names {
    cluster: String,
    namespace: String,
}

impl Names {
    /// Names for the cluster `cluster` in `namespace`.
    pub fn new(cluster: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            namespace: namespace.into(),
        }
    }

    /// The `BrokerCluster`'s name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Name server StatefulSet, headless Service, ConfigMap and PDB.
    pub fn nameserver(&self) -> String {
        format!("{}-nameserver", self.cluster)
    }

    /// StatefulSet, headless Service and ConfigMap of broker group `group`.
    pub fn broker_group(&self, group: i32) -> String {
        format!("{}-broker-{group}", self.cluster)
    }

    /// PodDisruptionBudget over all brokers.
    pub fn brokers_pdb(&self) -> String {
        format!("{}-broker", self.cluster)
    }

    /// The client Service.
    pub fn client_service(&self) -> String {
        self.cluster.clone()
    }

    /// The pods' ServiceAccount.
    pub fn service_account(&self) -> String {
        format!("{}-tern", self.cluster)
    }

    /// The Secret with the operator's admin credentials (authentication
    /// `Acl`): `c-tern-admin`.
    pub fn admin_secret(&self) -> String {
        format!("{}-tern-admin", self.cluster)
    }

    /// `host:port` of name server pod `ordinal`.
    pub fn nameserver_address(&self, ordinal: i32) -> String {
        let svc = self.nameserver();
        format!(
            "{svc}-{ordinal}.{svc}.{}.svc:{NAMESERVER_PORT}",
            self.namespace
        )
    }

    /// `host:port` of pod `ordinal` of broker group `group`.
    pub fn broker_address(&self, group: i32, ordinal: i32) -> String {
        let svc = self.broker_group(group);
        format!("{svc}-{ordinal}.{svc}.{}.svc:{BROKER_PORT}", self.namespace)
    }

    /// `host:port` clients use as their endpoint.
    pub fn client_endpoint(&self) -> String {
        format!(
            "{}.{}.svc:{NAMESERVER_PORT}",
            self.client_service(),
            self.namespace
        )
    }

    /// Labels that select the pods of `component` (and of `group`, for a
    /// broker group).
    pub fn selector(&self, component: Component, group: Option<i32>) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (LABEL_NAME.to_owned(), "tern".to_owned()),
            (LABEL_INSTANCE.to_owned(), self.cluster.clone()),
            (LABEL_COMPONENT.to_owned(), component.as_str().to_owned()),
        ]);
        if let Some(g) = group {
            labels.insert(LABEL_BROKER_GROUP.to_owned(), g.to_string());
        }
        labels
    }

    /// Labels of every object: the selector labels plus `managed-by`.
    pub fn labels(&self, component: Component, group: Option<i32>) -> BTreeMap<String, String> {
        let mut labels = self.selector(component, group);
        labels.insert(LABEL_MANAGED_BY.to_owned(), "tern-operator".to_owned());
        labels
    }

    /// Labels of objects that belong to the whole cluster.
    pub fn cluster_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_NAME.to_owned(), "tern".to_owned()),
            (LABEL_INSTANCE.to_owned(), self.cluster.clone()),
            (LABEL_MANAGED_BY.to_owned(), "tern-operator".to_owned()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_stable_dns_names() {
        let n = Names::new("prod", "mq");
        assert_eq!(
            n.nameserver_address(1),
            "prod-nameserver-1.prod-nameserver.mq.svc:9876"
        );
        assert_eq!(
            n.broker_address(2, 0),
            "prod-broker-2-0.prod-broker-2.mq.svc:8081"
        );
        assert_eq!(n.client_endpoint(), "prod.mq.svc:9876");
    }

    #[test]
    fn broker_selector_names_the_group() {
        let n = Names::new("c", "ns");
        let s = n.selector(Component::Broker, Some(3));
        assert_eq!(s[LABEL_BROKER_GROUP], "3");
        assert_eq!(s[LABEL_COMPONENT], "broker");
        assert!(!s.contains_key(LABEL_MANAGED_BY));
        assert_eq!(
            n.labels(Component::Broker, Some(3))[LABEL_MANAGED_BY],
            "tern-operator"
        );
    }
}
