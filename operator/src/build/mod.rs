//! Builders: pure functions from a `BrokerCluster` to the Kubernetes
//! objects that run it. No I/O; the controller applies what they return.

pub mod auth;
pub mod broker;
pub mod config;
pub mod names;
pub mod nameserver;
pub mod pod;
pub mod shared;
pub mod tls;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::crd::{BrokerCluster, BrokerClusterSpec};
use crate::error::{Error, Result};
pub use broker::GroupObjects;
use names::Names;
pub use nameserver::NameserverObjects;

/// The cluster whose objects are built, with the owner reference every
/// child carries so the garbage collector removes it with the cluster.
#[derive(Debug)]
pub struct Owner<'a> {
    /// The cluster's spec.
    pub spec: &'a BrokerClusterSpec,
    /// The names of its objects.
    pub names: Names,
    owner_ref: OwnerReference,
}

impl<'a> Owner<'a> {
    /// Reads name, namespace and uid from `cluster`.
    pub fn new(cluster: &'a BrokerCluster) -> Result<Self> {
        let missing = |field| Error::MissingField {
            kind: "BrokerCluster",
            field,
        };
        let name = cluster
            .metadata
            .name
            .as_deref()
            .ok_or_else(|| missing("metadata.name"))?;
        let namespace = cluster
            .metadata
            .namespace
            .as_deref()
            .ok_or_else(|| missing("metadata.namespace"))?;
        // blockOwnerDeletion: a foreground deletion of the cluster waits
        // for its children (the chart's ClusterRole grants the
        // `brokerclusters/finalizers` update this needs).
        let owner_ref = OwnerReference {
            block_owner_deletion: Some(true),
            ..cluster
                .controller_owner_ref(&())
                .ok_or_else(|| missing("metadata.uid"))?
        };
        Ok(Self {
            spec: &cluster.spec,
            names: Names::new(name, namespace),
            owner_ref,
        })
    }

    /// Metadata of a child object named `name`.
    pub fn meta(&self, name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.names.namespace().to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![self.owner_ref.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// Every object a `BrokerCluster` should have.
#[derive(Clone, Debug)]
pub struct Desired {
    /// The pods' ServiceAccount.
    pub service_account: ServiceAccount,
    /// The name servers.
    pub nameserver: NameserverObjects,
    /// The broker groups, by index.
    pub groups: Vec<GroupObjects>,
    /// The client Service.
    pub client_service: Service,
    /// Disruption budgets of name servers and brokers.
    pub budgets: Vec<PodDisruptionBudget>,
}

/// Builds every object of `cluster`.
pub fn desired(cluster: &BrokerCluster) -> Result<Desired> {
    let owner = Owner::new(cluster)?;
    let groups = (0..cluster.spec.broker.groups)
        .map(|g| broker::build(&owner, g))
        .collect::<Result<Vec<_>>>()?;
    Ok(Desired {
        service_account: shared::service_account(&owner),
        nameserver: nameserver::build(&owner)?,
        groups,
        client_service: shared::client_service(&owner),
        budgets: shared::disruption_budgets(&owner),
    })
}

#[cfg(test)]
pub(crate) mod tests;
