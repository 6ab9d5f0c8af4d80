//! Pieces every pod of a cluster shares: security settings, scheduling,
//! the configuration volume and probes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, HTTPGetAction,
    PodSecurityContext, PodSpec, Probe, SeccompProfile, SecurityContext, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::CONFIG_DIR;
use super::names::HTTP_PORT;
use crate::crd::cluster::BrokerClusterSpec;

/// User and group the containers run as (not root).
pub const RUN_AS: i64 = 65532;

/// Pod-level security: non-root, a fixed uid/gid that owns the volume, the
/// runtime's default seccomp profile.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// Container-level security: read-only root filesystem, no privilege
/// escalation, no capabilities.
pub fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// The volumes every pod has: its configuration and a writable `/tmp`.
pub fn base_volumes(config_map: &str) -> Vec<Volume> {
    vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.to_owned(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ]
}

/// Mounts of [`base_volumes`].
pub fn base_mounts() -> Vec<VolumeMount> {
    vec![
        VolumeMount {
            name: "config".to_owned(),
            mount_path: CONFIG_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        },
    ]
}

/// A probe of an HTTP path on the pod's HTTP port.
pub fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

/// A probe that connects to the named port.
pub fn tcp_probe(port: &str, period: i32, failures: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.to_owned()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

/// Annotations that tell a Prometheus scraping by annotation where the
/// metrics are, when metrics are enabled.
pub fn scrape_annotations(spec: &BrokerClusterSpec) -> BTreeMap<String, String> {
    if !spec.metrics.enabled {
        return BTreeMap::new();
    }
    BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), HTTP_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ])
}

/// A pod spec around `container`, with the cluster's scheduling, image pull
/// secrets and security settings.
pub fn pod_spec(
    spec: &BrokerClusterSpec,
    service_account: &str,
    container: Container,
    volumes: Vec<Volume>,
    grace_secs: i64,
) -> PodSpec {
    let sched = &spec.scheduling;
    PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        service_account_name: Some(service_account.to_owned()),
        automount_service_account_token: Some(false),
        security_context: Some(pod_security()),
        termination_grace_period_seconds: Some(grace_secs),
        affinity: sched.affinity.clone(),
        tolerations: (!sched.tolerations.is_empty()).then(|| sched.tolerations.clone()),
        node_selector: (!sched.node_selector.is_empty()).then(|| sched.node_selector.clone()),
        topology_spread_constraints: (!sched.topology_spread_constraints.is_empty())
            .then(|| sched.topology_spread_constraints.clone()),
        priority_class_name: sched.priority_class_name.clone(),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty())
            .then(|| spec.image_pull_secrets.clone()),
        ..PodSpec::default()
    }
}
