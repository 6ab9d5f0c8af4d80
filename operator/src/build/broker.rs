//! One broker group: a StatefulSet with a volume claim template, its
//! headless Service and its `broker.toml`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodTemplateSpec, Service, ServicePort, ServiceSpec, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{BROKER_FILE, CONFIG_DIR, DATA_DIR, broker_toml, digest};
use super::names::{
    ANNOTATION_CONFIG_HASH, ANNOTATION_TEMPLATE_HASH, BROKER_PORT, Component, HTTP_PORT,
};
use super::{Owner, auth, pod, tls};
use crate::error::Result;

/// Name of the data volume (and of its claim template).
const DATA_VOLUME: &str = "data";

/// The objects of one broker group.
#[derive(Clone, Debug)]
pub struct GroupObjects {
    /// Index of the group, from 0.
    pub group: i32,
    /// `broker.toml`.
    pub config_map: ConfigMap,
    /// The group's headless Service.
    pub service: Service,
    /// The group's pods and volumes.
    pub stateful_set: StatefulSet,
    /// Digest of the desired pod template, also set as the StatefulSet's
    /// `tern.dev/template-hash` annotation.
    pub template_hash: String,
}

/// Builds broker group `group` of `owner`'s cluster.
pub fn build(owner: &Owner<'_>, group: i32) -> Result<GroupObjects> {
    let spec = owner.spec;
    let names = &owner.names;
    let name = names.broker_group(group);
    let labels = names.labels(Component::Broker, Some(group));
    let selector = names.selector(Component::Broker, Some(group));
    let toml = broker_toml(spec, names, group)?;

    let config_map = ConfigMap {
        metadata: owner.meta(&name, labels.clone()),
        data: Some(BTreeMap::from([(BROKER_FILE.to_owned(), toml.clone())])),
        ..ConfigMap::default()
    };

    let mut mounts = pod::base_mounts();
    mounts.push(VolumeMount {
        name: DATA_VOLUME.to_owned(),
        mount_path: DATA_DIR.to_owned(),
        ..VolumeMount::default()
    });
    mounts.extend(tls::mount(spec));
    let container = Container {
        name: "broker".to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().to_owned()),
        command: Some(vec![
            "tern".to_owned(),
            "broker".to_owned(),
            "--config".to_owned(),
            format!("{CONFIG_DIR}/{BROKER_FILE}"),
        ]),
        env: Some(auth::broker_env(spec, names)).filter(|e| !e.is_empty()),
        ports: Some(vec![
            ContainerPort {
                name: Some("grpc".to_owned()),
                container_port: BROKER_PORT,
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("http".to_owned()),
                container_port: HTTP_PORT,
                ..ContainerPort::default()
            },
        ]),
        resources: spec.broker.resources.clone(),
        // Ready once the gRPC listener serves; restarted only if the
        // process stops answering altogether (recovery may take a while).
        readiness_probe: Some(pod::http_probe("/readyz", 5, 3)),
        liveness_probe: Some(pod::http_probe("/healthz", 10, 6)),
        security_context: Some(pod::container_security()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let mut volumes = pod::base_volumes(&name);
    volumes.extend(tls::volume(spec));
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
            // Time to flush and checkpoint on SIGTERM.
            60,
        )),
    };
    let template_hash = digest(&serde_json::to_string(&template)?);

    let storage = &spec.broker.storage;
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(selector.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    storage.size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    let mut meta = owner.meta(&name, labels.clone());
    meta.annotations = Some(BTreeMap::from([(
        ANNOTATION_TEMPLATE_HASH.to_owned(),
        template_hash.clone(),
    )]));
    let stateful_set = StatefulSet {
        metadata: meta,
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.broker.replicas_per_group),
            service_name: Some(name.clone()),
            pod_management_policy: Some("OrderedReady".to_owned()),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            template,
            volume_claim_templates: Some(vec![claim]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(storage.on_delete.as_str().to_owned()),
                    when_scaled: Some(storage.on_scale_down.as_str().to_owned()),
                },
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };

    let mut ports = vec![ServicePort {
        name: Some("grpc".to_owned()),
        port: BROKER_PORT,
        target_port: Some(IntOrString::String("grpc".to_owned())),
        ..ServicePort::default()
    }];
    if spec.metrics.enabled {
        ports.push(ServicePort {
            name: Some("metrics".to_owned()),
            port: HTTP_PORT,
            target_port: Some(IntOrString::String("http".to_owned())),
            ..ServicePort::default()
        });
    }
    let service = Service {
        metadata: owner.meta(&name, labels),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // The broker advertises its DNS name as soon as it starts.
            publish_not_ready_addresses: Some(true),
            selector: Some(selector),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    Ok(GroupObjects {
        group,
        config_map,
        service,
        stateful_set,
        template_hash,
    })
}
