//! Unit tests of the builders: a `BrokerCluster` in, objects out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::names::{ANNOTATION_CONFIG_HASH, ANNOTATION_TEMPLATE_HASH, LABEL_BROKER_GROUP};
use super::*;
use crate::crd::cluster::{ServiceType, VolumePolicy};

/// A spec with every default and an image.
pub(crate) fn sample_spec() -> BrokerClusterSpec {
    serde_json::from_value(serde_json::json!({ "image": "tern:test" })).expect("a valid spec")
}

/// A cluster as the API server would hand it over: name, namespace, uid.
pub(crate) fn sample_cluster(spec: BrokerClusterSpec) -> BrokerCluster {
    let mut c = BrokerCluster::new("prod", spec);
    c.metadata.namespace = Some("mq".to_owned());
    c.metadata.uid = Some("1234-uid".to_owned());
    c.metadata.generation = Some(1);
    c
}

fn pod(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> &PodSpec {
    let spec = sts.spec.as_ref().expect("a spec");
    spec.template.spec.as_ref().expect("a pod spec")
}

fn container(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> &Container {
    &pod(sts).containers[0]
}

fn pod_annotation(sts: &k8s_openapi::api::apps::v1::StatefulSet, key: &str) -> String {
    let spec = sts.spec.as_ref().expect("a spec");
    let meta = spec.template.metadata.as_ref().expect("template metadata");
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn every_child_is_owned_by_the_cluster() {
    let d = desired(&sample_cluster(sample_spec())).expect("builds");
    let mut metas = vec![
        &d.service_account.metadata,
        &d.nameserver.config_map.metadata,
        &d.nameserver.stateful_set.metadata,
        &d.nameserver.service.metadata,
        &d.client_service.metadata,
    ];
    metas.extend(d.budgets.iter().map(|b| &b.metadata));
    for g in &d.groups {
        metas.extend([
            &g.config_map.metadata,
            &g.service.metadata,
            &g.stateful_set.metadata,
        ]);
    }
    assert_eq!(metas.len(), 10);
    for m in metas {
        let owners = m.owner_references.as_ref().expect("owner references");
        assert_eq!(owners.len(), 1, "{:?}", m.name);
        assert_eq!(owners[0].kind, "BrokerCluster");
        assert_eq!(owners[0].uid, "1234-uid");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        assert_eq!(m.namespace.as_deref(), Some("mq"));
    }
}

#[test]
fn a_cluster_without_uid_is_refused() {
    let mut c = sample_cluster(sample_spec());
    c.metadata.uid = None;
    let err = desired(&c).expect_err("no owner reference without a uid");
    assert!(err.to_string().contains("metadata.uid"), "{err}");
}

#[test]
fn nameservers_run_behind_a_headless_service() {
    let mut spec = sample_spec();
    spec.nameserver.replicas = 3;
    let d = desired(&sample_cluster(spec)).expect("builds");
    let sts = &d.nameserver.stateful_set;
    let s = sts.spec.as_ref().expect("spec");
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.service_name.as_deref(), Some("prod-nameserver"));
    let svc = d.nameserver.service.spec.as_ref().expect("spec");
    assert_eq!(svc.cluster_ip.as_deref(), Some("None"));
    assert_eq!(svc.selector, s.selector.match_labels);
    let c = container(sts);
    assert_eq!(
        c.command.as_deref(),
        Some(
            &[
                "tern",
                "nameserver",
                "--config",
                "/etc/tern/nameserver.toml"
            ]
            .map(String::from)[..]
        )
    );
    let ready = c
        .readiness_probe
        .as_ref()
        .and_then(|p| p.tcp_socket.as_ref())
        .expect("tcp probe");
    assert_eq!(ready.port, IntOrString::String("grpc".to_owned()));
    assert!(
        d.nameserver
            .config_map
            .data
            .as_ref()
            .expect("data")
            .contains_key("nameserver.toml")
    );
}

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn each_broker_group_is_a_stateful_set_with_its_own_volume() {
    let mut spec = sample_spec();
    spec.broker.groups = 3;
    spec.broker.storage.size = Quantity("50Gi".to_owned());
    spec.broker.storage.storage_class_name = Some("fast".to_owned());
    spec.broker.storage.on_delete = VolumePolicy::Delete;
    let d = desired(&sample_cluster(spec)).expect("builds");
    assert_eq!(d.groups.len(), 3);
    for (i, g) in d.groups.iter().enumerate() {
        let name = format!("prod-broker-{i}");
        assert_eq!(g.stateful_set.metadata.name.as_deref(), Some(name.as_str()));
        let s = g.stateful_set.spec.as_ref().expect("spec");
        assert_eq!(s.service_name.as_deref(), Some(name.as_str()));
        assert_eq!(s.replicas, Some(1));
        let labels = s.selector.match_labels.as_ref().expect("labels");
        assert_eq!(labels[LABEL_BROKER_GROUP], i.to_string());
        let claim = &s.volume_claim_templates.as_ref().expect("claims")[0];
        let claim_spec = claim.spec.as_ref().expect("claim spec");
        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast"));
        let requests = claim_spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .expect("requests");
        assert_eq!(requests["storage"], Quantity("50Gi".to_owned()));
        let policy = s
            .persistent_volume_claim_retention_policy
            .as_ref()
            .expect("policy");
        assert_eq!(policy.when_deleted.as_deref(), Some("Delete"));
        assert_eq!(policy.when_scaled.as_deref(), Some("Retain"));
        let toml = &g.config_map.data.as_ref().expect("data")["broker.toml"];
        assert!(
            toml.contains(&format!(
                "advertised_address = \"{name}-0.{name}.mq.svc:8081\""
            )),
            "{toml}"
        );
        let mounts = container(&g.stateful_set)
            .volume_mounts
            .as_ref()
            .expect("mounts");
        assert!(
            mounts
                .iter()
                .any(|m| m.name == "data" && m.mount_path == "/var/lib/tern")
        );
    }
}

#[test]
fn brokers_are_probed_on_their_http_port() {
    let d = desired(&sample_cluster(sample_spec())).expect("builds");
    let c = container(&d.groups[0].stateful_set);
    let ready = c
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("http probe");
    assert_eq!(ready.path.as_deref(), Some("/readyz"));
    assert_eq!(ready.port, IntOrString::String("http".to_owned()));
    let live = c
        .liveness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("http probe");
    assert_eq!(live.path.as_deref(), Some("/healthz"));
    let ports: Vec<_> = c
        .ports
        .as_ref()
        .expect("ports")
        .iter()
        .map(|p| (p.name.clone(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        [
            (Some("grpc".to_owned()), 8081),
            (Some("http".to_owned()), 8080)
        ]
    );
    assert_eq!(
        c.command.as_deref(),
        Some(&["tern", "broker", "--config", "/etc/tern/broker.toml"].map(String::from)[..])
    );
}

#[test]
fn pods_run_as_non_root_with_a_read_only_root_filesystem() {
    let d = desired(&sample_cluster(sample_spec())).expect("builds");
    for sts in [&d.nameserver.stateful_set, &d.groups[0].stateful_set] {
        let p = pod(sts);
        assert_eq!(
            p.security_context.as_ref().and_then(|s| s.run_as_non_root),
            Some(true)
        );
        assert_eq!(p.automount_service_account_token, Some(false));
        assert_eq!(p.service_account_name.as_deref(), Some("prod-tern"));
        let sc = p.containers[0]
            .security_context
            .as_ref()
            .expect("security context");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let mounts = p.containers[0].volume_mounts.as_ref().expect("mounts");
        assert!(
            mounts.iter().any(|m| m.mount_path == "/tmp"),
            "a writable /tmp"
        );
    }
    assert_eq!(
        d.service_account.automount_service_account_token,
        Some(false)
    );
}

#[test]
fn a_config_change_changes_the_pod_template_hashes() {
    let base = desired(&sample_cluster(sample_spec())).expect("builds");
    let mut spec = sample_spec();
    spec.broker.config.retention_hours = 12;
    let changed = desired(&sample_cluster(spec)).expect("builds");
    let (a, b) = (&base.groups[0], &changed.groups[0]);
    assert_ne!(
        pod_annotation(&a.stateful_set, ANNOTATION_CONFIG_HASH),
        pod_annotation(&b.stateful_set, ANNOTATION_CONFIG_HASH)
    );
    assert_ne!(a.template_hash, b.template_hash);
    let sts_hash = b
        .stateful_set
        .metadata
        .annotations
        .as_ref()
        .expect("annotations");
    assert_eq!(sts_hash[ANNOTATION_TEMPLATE_HASH], b.template_hash);
    // The same spec gives the same hashes: nothing rolls without a change.
    let again = desired(&sample_cluster(sample_spec())).expect("builds");
    assert_eq!(again.groups[0].template_hash, a.template_hash);

    let mut spec = sample_spec();
    spec.image = "tern:next".to_owned();
    let new_image = desired(&sample_cluster(spec)).expect("builds");
    let c = &new_image.groups[0];
    assert_eq!(
        pod_annotation(&c.stateful_set, ANNOTATION_CONFIG_HASH),
        pod_annotation(&a.stateful_set, ANNOTATION_CONFIG_HASH),
        "the image is not part of the configuration file"
    );
    assert_ne!(
        c.template_hash, a.template_hash,
        "but it is part of the pod template"
    );
}

#[test]
fn the_client_service_leads_to_the_name_servers() {
    let mut spec = sample_spec();
    spec.service.type_ = ServiceType::LoadBalancer;
    spec.service.annotations = BTreeMap::from([("lb".to_owned(), "internal".to_owned())]);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let svc = &d.client_service;
    assert_eq!(svc.metadata.name.as_deref(), Some("prod"));
    assert_eq!(
        svc.metadata.annotations.as_ref().map(|a| a["lb"].as_str()),
        Some("internal")
    );
    let s = svc.spec.as_ref().expect("spec");
    assert_eq!(s.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        s.selector,
        d.nameserver
            .stateful_set
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
    );
    assert_eq!(s.ports.as_ref().expect("ports")[0].port, 9876);
}

#[test]
fn scheduling_reaches_every_pod() {
    let mut spec = sample_spec();
    spec.scheduling.node_selector = BTreeMap::from([("disk".to_owned(), "ssd".to_owned())]);
    spec.scheduling.tolerations = vec![Toleration {
        key: Some("dedicated".to_owned()),
        operator: Some("Exists".to_owned()),
        ..Toleration::default()
    }];
    let d = desired(&sample_cluster(spec)).expect("builds");
    for sts in [&d.nameserver.stateful_set, &d.groups[0].stateful_set] {
        let p = pod(sts);
        assert_eq!(
            p.node_selector.as_ref().map(|n| n["disk"].as_str()),
            Some("ssd")
        );
        assert_eq!(p.tolerations.as_ref().map(Vec::len), Some(1));
        assert_eq!(p.topology_spread_constraints, None);
    }
}

#[test]
fn metrics_off_drops_scrape_annotations_and_metrics_ports() {
    let mut spec = sample_spec();
    spec.metrics.enabled = false;
    let d = desired(&sample_cluster(spec)).expect("builds");
    assert_eq!(
        pod_annotation(&d.groups[0].stateful_set, "prometheus.io/scrape"),
        ""
    );
    let ports = d.groups[0]
        .service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .expect("ports");
    assert_eq!(ports.len(), 1);
    // The broker still serves HTTP for its probes.
    assert!(
        container(&d.groups[0].stateful_set)
            .readiness_probe
            .is_some()
    );
    let on = desired(&sample_cluster(sample_spec())).expect("builds");
    assert_eq!(
        pod_annotation(&on.groups[0].stateful_set, "prometheus.io/scrape"),
        "true"
    );
}

#[test]
fn budgets_allow_one_disruption_per_component() {
    let d = desired(&sample_cluster(sample_spec())).expect("builds");
    let names: Vec<_> = d
        .budgets
        .iter()
        .filter_map(|b| b.metadata.name.clone())
        .collect();
    assert_eq!(names, ["prod-nameserver", "prod-broker"]);
    for b in &d.budgets {
        assert_eq!(
            b.spec.as_ref().and_then(|s| s.max_unavailable.clone()),
            Some(IntOrString::Int(1))
        );
    }
}

// TLS: the certificate Secret's volume and the rendered `[tls]` keys.

use crate::crd::cluster::TlsMode;

fn tls_spec(mode: TlsMode, secret: Option<&str>, client_auth: bool) -> BrokerClusterSpec {
    let mut spec = sample_spec();
    spec.tls.mode = mode;
    spec.tls.certificate_secret = secret.map(str::to_owned);
    spec.tls.client_authentication = client_auth;
    spec
}

/// The rendered `nameserver.toml` and group 0's `broker.toml`.
fn rendered(d: &Desired) -> (toml::Table, toml::Table) {
    let file = |cm: &k8s_openapi::api::core::v1::ConfigMap, key: &str| -> toml::Table {
        cm.data.as_ref().expect("data")[key]
            .parse()
            .expect("valid TOML")
    };
    (
        file(&d.nameserver.config_map, "nameserver.toml"),
        file(&d.groups[0].config_map, "broker.toml"),
    )
}

fn tls_table(file: &toml::Table) -> &toml::Table {
    file["tls"].as_table().expect("a [tls] table")
}

/// The keys of `table`, sorted.
fn keys(table: &toml::Table) -> Vec<&str> {
    table.keys().map(String::as_str).collect()
}

fn tls_volumes(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> Vec<(String, Option<String>)> {
    pod(sts)
        .volumes
        .as_ref()
        .expect("volumes")
        .iter()
        .filter(|v| v.name == "tls")
        .map(|v| {
            let secret = v.secret.as_ref().expect("a Secret volume");
            (v.name.clone(), secret.secret_name.clone())
        })
        .collect()
}

fn tls_mounts(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> Vec<(String, Option<bool>)> {
    container(sts)
        .volume_mounts
        .as_ref()
        .expect("mounts")
        .iter()
        .filter(|m| m.name == "tls")
        .map(|m| (m.mount_path.clone(), m.read_only))
        .collect()
}

const NAMESERVER_KEYS: [&str; 3] = [
    "nameservers_ca_file",
    "nameservers_insecure_skip_verify",
    "nameservers_tls",
];

#[test]
fn without_tls_settings_the_ports_are_permissive_with_generated_certificates() {
    let spec = sample_spec();
    assert_eq!(spec.tls.mode, TlsMode::Permissive);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    for file in [&ns, &broker] {
        let tls = tls_table(file);
        assert_eq!(keys(tls), ["mode"], "{tls}");
        assert_eq!(tls["mode"].as_str(), Some("permissive"));
    }
    for key in NAMESERVER_KEYS {
        assert!(!broker.contains_key(key), "{key} in {broker}");
    }
    for sts in [&d.nameserver.stateful_set, &d.groups[0].stateful_set] {
        assert_eq!(tls_volumes(sts), []);
        assert_eq!(tls_mounts(sts), []);
    }
}

#[test]
fn a_certificate_secret_is_mounted_and_its_files_rendered() {
    let spec = tls_spec(TlsMode::Permissive, Some("prod-tls"), false);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    for file in [&ns, &broker] {
        let tls = tls_table(file);
        assert_eq!(keys(tls), ["cert_file", "key_file", "mode"], "{tls}");
        assert_eq!(tls["mode"].as_str(), Some("permissive"));
        assert_eq!(tls["cert_file"].as_str(), Some("/etc/tern/tls/tls.crt"));
        assert_eq!(tls["key_file"].as_str(), Some("/etc/tern/tls/tls.key"));
    }
    // Permissive name servers take plaintext: brokers dial as before.
    for key in NAMESERVER_KEYS {
        assert!(!broker.contains_key(key), "{key} in {broker}");
    }
    for sts in [&d.nameserver.stateful_set, &d.groups[0].stateful_set] {
        assert_eq!(
            tls_volumes(sts),
            [("tls".to_owned(), Some("prod-tls".to_owned()))]
        );
        assert_eq!(tls_mounts(sts), [("/etc/tern/tls".to_owned(), Some(true))]);
        let volume = pod(sts)
            .volumes
            .as_ref()
            .and_then(|v| v.iter().find(|v| v.name == "tls"))
            .and_then(|v| v.secret.as_ref())
            .expect("the Secret volume");
        // The whole Secret, readable by the pods' group only; no items, so
        // a missing optional ca.crt does not stop the pod.
        assert_eq!(volume.default_mode, Some(0o440));
        assert_eq!(volume.items, None);
        assert!(
            container(sts)
                .volume_mounts
                .as_ref()
                .expect("mounts")
                .iter()
                .all(|m| m.sub_path.is_none()),
            "a subPath mount would not see a renewed Secret"
        );
    }
}

#[test]
fn enforcing_brokers_dial_the_name_servers_with_tls() {
    // With a Secret: its CA checks the name servers' certificates.
    let spec = tls_spec(TlsMode::Enforcing, Some("prod-tls"), false);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    assert_eq!(tls_table(&ns)["mode"].as_str(), Some("enforcing"));
    assert_eq!(tls_table(&broker)["mode"].as_str(), Some("enforcing"));
    assert_eq!(broker["nameservers_tls"].as_bool(), Some(true));
    assert_eq!(
        broker["nameservers_ca_file"].as_str(),
        Some("/etc/tern/tls/ca.crt")
    );
    assert!(!broker.contains_key("nameservers_insecure_skip_verify"));
    // The name servers dial nobody.
    for key in NAMESERVER_KEYS {
        assert!(!ns.contains_key(key), "{key} in {ns}");
    }

    // Without: generated certificates cannot be checked.
    let spec = tls_spec(TlsMode::Enforcing, None, false);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    assert_eq!(keys(tls_table(&ns)), ["mode"]);
    assert_eq!(broker["nameservers_tls"].as_bool(), Some(true));
    assert_eq!(
        broker["nameservers_insecure_skip_verify"].as_bool(),
        Some(true)
    );
    assert!(!broker.contains_key("nameservers_ca_file"));
    assert_eq!(tls_volumes(&d.groups[0].stateful_set), []);
}

#[test]
fn client_authentication_checks_client_certificates_against_the_secret_ca() {
    let spec = tls_spec(TlsMode::Permissive, Some("prod-tls"), true);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    for file in [&ns, &broker] {
        let tls = tls_table(file);
        assert_eq!(
            keys(tls),
            ["cert_file", "client_ca_file", "key_file", "mode"],
            "{tls}"
        );
        assert_eq!(tls["client_ca_file"].as_str(), Some("/etc/tern/tls/ca.crt"));
    }
    // Without a Secret (which the CRD refuses) nothing checks clients.
    let spec = tls_spec(TlsMode::Permissive, None, true);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    assert_eq!(keys(tls_table(&ns)), ["mode"]);
    assert_eq!(keys(tls_table(&broker)), ["mode"]);
}

#[test]
fn disabled_tls_mounts_and_renders_no_certificate() {
    // `tern` refuses certificate files on a disabled port: a Secret left
    // in the spec is ignored rather than breaking the pods.
    let spec = tls_spec(TlsMode::Disabled, Some("prod-tls"), true);
    let d = desired(&sample_cluster(spec)).expect("builds");
    let (ns, broker) = rendered(&d);
    for file in [&ns, &broker] {
        let tls = tls_table(file);
        assert_eq!(keys(tls), ["mode"], "{tls}");
        assert_eq!(tls["mode"].as_str(), Some("disabled"));
    }
    for key in NAMESERVER_KEYS {
        assert!(!broker.contains_key(key), "{key} in {broker}");
    }
    for sts in [&d.nameserver.stateful_set, &d.groups[0].stateful_set] {
        assert_eq!(tls_volumes(sts), []);
        assert_eq!(tls_mounts(sts), []);
    }
}

/// The pod templates of the name servers and of group 0, serialized, and
/// group 0's template hash.
fn templates(spec: BrokerClusterSpec) -> (String, String, String) {
    let d = desired(&sample_cluster(spec)).expect("builds");
    let template = |sts: &k8s_openapi::api::apps::v1::StatefulSet| {
        serde_json::to_string(&sts.spec.as_ref().expect("spec").template).expect("serializes")
    };
    (
        template(&d.nameserver.stateful_set),
        template(&d.groups[0].stateful_set),
        d.groups[0].template_hash.clone(),
    )
}

#[test]
fn a_renewed_secret_rolls_nothing_but_a_new_mode_or_secret_name_does() {
    let base = tls_spec(TlsMode::Permissive, Some("prod-tls"), false);
    let (ns, broker, hash) = templates(base.clone());
    // A Secret renewed in place (cert-manager) is the same spec: the pod
    // templates, which name the Secret and never hold its content, stay
    // the same, and the pods re-read the files themselves.
    assert_eq!(
        templates(base.clone()),
        (ns.clone(), broker.clone(), hash.clone())
    );
    assert!(broker.contains("prod-tls") && ns.contains("prod-tls"));

    let changes = [
        (
            "mode",
            tls_spec(TlsMode::Enforcing, Some("prod-tls"), false),
        ),
        (
            "Secret name",
            tls_spec(TlsMode::Permissive, Some("prod-tls-2"), false),
        ),
        ("no Secret", tls_spec(TlsMode::Permissive, None, false)),
        (
            "client authentication",
            tls_spec(TlsMode::Permissive, Some("prod-tls"), true),
        ),
    ];
    for (what, spec) in changes {
        let (ns2, broker2, hash2) = templates(spec);
        assert_ne!(ns2, ns, "a new {what} rolls the name servers");
        assert_ne!(broker2, broker, "a new {what} rolls the brokers");
        assert_ne!(hash2, hash, "a new {what} changes the template hash");
    }
    // A mode change reaches the pods through the configuration hash.
    let d = desired(&sample_cluster(base)).expect("builds");
    let e = desired(&sample_cluster(tls_spec(
        TlsMode::Enforcing,
        Some("prod-tls"),
        false,
    )))
    .expect("builds");
    for (a, b) in [
        (&d.nameserver.stateful_set, &e.nameserver.stateful_set),
        (&d.groups[0].stateful_set, &e.groups[0].stateful_set),
    ] {
        assert_ne!(
            pod_annotation(a, ANNOTATION_CONFIG_HASH),
            pod_annotation(b, ANNOTATION_CONFIG_HASH)
        );
    }
}

#[test]
fn the_tls_spec_reads_as_documented() {
    let spec: BrokerClusterSpec = serde_json::from_value(serde_json::json!({
        "image": "tern:test",
        "tls": { "mode": "Enforcing", "certificateSecret": "prod-tls", "clientAuthentication": false },
    }))
    .expect("a valid spec");
    assert_eq!(spec.tls.mode, TlsMode::Enforcing);
    assert_eq!(spec.tls.certificate_secret.as_deref(), Some("prod-tls"));
    let spec: BrokerClusterSpec =
        serde_json::from_value(serde_json::json!({ "image": "tern:test", "tls": {} }))
            .expect("a valid spec");
    assert_eq!(spec.tls, sample_spec().tls);
    assert!(!spec.tls.client_authentication);
    assert!(
        serde_json::from_value::<BrokerClusterSpec>(serde_json::json!({
            "image": "tern:test", "tls": { "mode": "enforcing" },
        }))
        .is_err(),
        "modes are spelt like the CRD's other enums"
    );
}

fn acl_spec() -> BrokerClusterSpec {
    let mut spec = sample_spec();
    spec.authentication.type_ = crate::crd::cluster::AuthenticationType::Acl;
    spec
}

#[test]
fn acl_brokers_check_requests_with_the_admin_secret_as_bootstrap_user() {
    let d = desired(&sample_cluster(acl_spec())).expect("builds");
    let (ns_file, broker_file) = rendered(&d);
    let auth_table = broker_file["auth"].as_table().expect("an [auth] table");
    assert_eq!(auth_table["enabled"].as_bool(), Some(true));
    // Only `enabled`: no key reaches the ConfigMap.
    assert_eq!(keys(auth_table), ["enabled"]);
    assert!(!ns_file.contains_key("auth"), "name servers check nothing");
    let env = container(&d.groups[0].stateful_set)
        .env
        .as_ref()
        .expect("the broker has variables");
    let refs: Vec<(&str, &str, &str)> = env
        .iter()
        .map(|e| {
            assert_eq!(e.value, None, "{}: no literal value", e.name);
            let r = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .expect("from a Secret");
            (e.name.as_str(), r.name.as_str(), r.key.as_str())
        })
        .collect();
    assert_eq!(
        refs,
        [
            (
                "TERN_AUTH_BOOTSTRAP_ACCESS_KEY",
                "prod-tern-admin",
                "accessKey"
            ),
            (
                "TERN_AUTH_BOOTSTRAP_SECRET_KEY",
                "prod-tern-admin",
                "secretKey"
            ),
        ]
    );
    assert_eq!(container(&d.nameserver.stateful_set).env, None);
    // Without authentication: no table, no variables.
    let d = desired(&sample_cluster(sample_spec())).expect("builds");
    let (_, broker_file) = rendered(&d);
    assert!(!broker_file.contains_key("auth"));
    assert_eq!(container(&d.groups[0].stateful_set).env, None);
}

#[test]
fn turning_acl_on_rolls_the_brokers_only() {
    let (ns_before, broker_before, hash_before) = templates(sample_spec());
    let (ns_after, broker_after, hash_after) = templates(acl_spec());
    assert_eq!(ns_before, ns_after, "the name servers are not restarted");
    assert_ne!(broker_before, broker_after);
    assert_ne!(hash_before, hash_after);
    let config_hash = |spec| {
        let d = desired(&sample_cluster(spec)).expect("builds");
        pod_annotation(&d.groups[0].stateful_set, ANNOTATION_CONFIG_HASH)
    };
    assert_ne!(config_hash(sample_spec()), config_hash(acl_spec()));
}

#[test]
fn the_admin_secret_is_owned_by_the_cluster_and_holds_the_operator_user() {
    let cluster = sample_cluster(acl_spec());
    let owner = Owner::new(&cluster).expect("an owner");
    let key = auth::generate_secret_key().expect("random bytes");
    let s = auth::admin_secret(&owner, &key);
    assert_eq!(s.metadata.name.as_deref(), Some("prod-tern-admin"));
    assert_eq!(s.metadata.namespace.as_deref(), Some("mq"));
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let o = &s.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (o.kind.as_str(), o.uid.as_str()),
        ("BrokerCluster", "1234-uid")
    );
    assert_eq!(
        auth::secret_value(&s, "accessKey").as_deref(),
        Some("tern-operator")
    );
    assert_eq!(auth::secret_value(&s, "secretKey"), Some(key.clone()));
    let creds = auth::credentials_of(&s).expect("usable credentials");
    assert_eq!(creds.access_key(), "tern-operator");
    // Keys: 40 letters and digits, different every time.
    assert_eq!(key.len(), auth::SECRET_KEY_LEN);
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "{key}");
    assert_ne!(key, auth::generate_secret_key().expect("random bytes"));
}
