//! Objects that belong to the whole cluster: the client Service, the pods'
//! ServiceAccount and the PodDisruptionBudgets.

use k8s_openapi::api::core::v1::{Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Owner;
use super::names::{Component, NAMESERVER_PORT};

/// The Service clients use as their endpoint. It leads to the name
/// servers, which answer route queries with the brokers' addresses.
pub fn client_service(owner: &Owner<'_>) -> Service {
    let names = &owner.names;
    let svc = &owner.spec.service;
    let mut meta = owner.meta(&names.client_service(), names.cluster_labels());
    meta.annotations = (!svc.annotations.is_empty()).then(|| svc.annotations.clone());
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(svc.type_.as_str().to_owned()),
            selector: Some(names.selector(Component::Nameserver, None)),
            ports: Some(vec![ServicePort {
                name: Some("grpc".to_owned()),
                port: NAMESERVER_PORT,
                target_port: Some(IntOrString::String("grpc".to_owned())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The pods' ServiceAccount. Tern's pods never call the Kubernetes API, so
/// it has no role and its token is not mounted.
pub fn service_account(owner: &Owner<'_>) -> ServiceAccount {
    let names = &owner.names;
    ServiceAccount {
        metadata: owner.meta(&names.service_account(), names.cluster_labels()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// One budget for the name servers and one for the brokers: a voluntary
/// disruption (a node drain) takes at most one pod of each at a time.
pub fn disruption_budgets(owner: &Owner<'_>) -> Vec<PodDisruptionBudget> {
    let names = &owner.names;
    let budget = |name: String, component: Component| PodDisruptionBudget {
        metadata: owner.meta(&name, names.labels(component, None)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector(component, None)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    };
    vec![
        budget(names.nameserver(), Component::Nameserver),
        budget(names.brokers_pdb(), Component::Broker),
    ]
}
