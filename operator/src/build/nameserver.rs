//! The name servers: a StatefulSet behind a headless Service, so each has
//! the stable name `<cluster>-nameserver-<i>.<cluster>-nameserver.<ns>.svc`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{CONFIG_DIR, NAMESERVER_FILE, digest, nameserver_toml};
use super::names::{ANNOTATION_CONFIG_HASH, Component, HTTP_PORT, NAMESERVER_PORT};
use super::{Owner, pod, tls};
use crate::error::Result;

/// The name server ConfigMap, StatefulSet and headless Service.
#[derive(Clone, Debug)]
pub struct NameserverObjects {
    /// `nameserver.toml`.
    pub config_map: ConfigMap,
    /// The pods.
    pub stateful_set: StatefulSet,
    /// The headless Service giving each pod its DNS name.
    pub service: Service,
}

/// Builds the name server objects of `owner`'s cluster.
pub fn build(owner: &Owner<'_>) -> Result<NameserverObjects> {
    let spec = owner.spec;
    let names = &owner.names;
    let name = names.nameserver();
    let labels = names.labels(Component::Nameserver, None);
    let toml = nameserver_toml(spec, names)?;

    let config_map = ConfigMap {
        metadata: owner.meta(&name, labels.clone()),
        data: Some(BTreeMap::from([(NAMESERVER_FILE.to_owned(), toml.clone())])),
        ..ConfigMap::default()
    };

    let mut ports = vec![ContainerPort {
        name: Some("grpc".to_owned()),
        container_port: NAMESERVER_PORT,
        ..ContainerPort::default()
    }];
    if spec.metrics.enabled {
        ports.push(ContainerPort {
            name: Some("http".to_owned()),
            container_port: HTTP_PORT,
            ..ContainerPort::default()
        });
    }
    let mut mounts = pod::base_mounts();
    mounts.extend(tls::mount(spec));
    let mut volumes = pod::base_volumes(&name);
    volumes.extend(tls::volume(spec));
    let container = Container {
        name: "nameserver".to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().to_owned()),
        command: Some(vec![
            "tern".to_owned(),
            "nameserver".to_owned(),
            "--config".to_owned(),
            format!("{CONFIG_DIR}/{NAMESERVER_FILE}"),
        ]),
        ports: Some(ports),
        resources: spec.nameserver.resources.clone(),
        readiness_probe: Some(pod::tcp_probe("grpc", 5, 3)),
        liveness_probe: Some(pod::tcp_probe("grpc", 10, 6)),
        security_context: Some(pod::container_security()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let mut annotations = pod::scrape_annotations(spec);
    annotations.insert(ANNOTATION_CONFIG_HASH.to_owned(), digest(&toml));
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(pod::pod_spec(
            spec,
            &names.service_account(),
            container,
            volumes,
            30,
        )),
    };
    let stateful_set = StatefulSet {
        metadata: owner.meta(&name, labels.clone()),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.nameserver.replicas),
            service_name: Some(name.clone()),
            // Name servers hold no data and do not depend on each other.
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector {
                match_labels: Some(names.selector(Component::Nameserver, None)),
                ..LabelSelector::default()
            },
            template,
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };

    let service = Service {
        metadata: owner.meta(&name, labels),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // Brokers register while the name servers start; their DNS names
            // must resolve before the pods are ready.
            publish_not_ready_addresses: Some(true),
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
    };
    Ok(NameserverObjects {
        config_map,
        stateful_set,
        service,
    })
}
