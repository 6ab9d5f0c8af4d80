//! The `tern-operator` binary, run as a local process with a kubeconfig,
//! against a real kube-apiserver and etcd (see [`super::harness`]).
//! Everything is checked through the API: the children of a
//! `BrokerCluster` with their owner references and field manager, status
//! conditions and `observedGeneration`, Events, a spec change rolling one
//! broker group at a time, the pause annotation, a refused scale-down, and
//! a deleted child coming back.
//!
//! No kube-controller-manager runs, so no pod is ever created: where a
//! test needs a broker group to become ready it writes the StatefulSet's
//! status itself, as the StatefulSet controller would.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::harness::{ControlPlane, Process, eventually, free_ports};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use tern_operator::build::names::{ANNOTATION_CONFIG_HASH, ANNOTATION_TEMPLATE_HASH};
use tern_operator::controller::PAUSED_ANNOTATION;
use tern_operator::crd::BrokerCluster;

/// How long the operator may take to react to a change.
pub(super) const REACT: Duration = Duration::from_secs(120);

/// Starts `tern-operator` against `plane` with `kubeconfig` and `args`
/// (a resync of 5 s unless `args` set `--resync-secs=N`); returns it and
/// the port of its HTTP endpoint.
pub(super) fn start_operator(
    plane: &ControlPlane,
    kubeconfig: &Path,
    args: &[&str],
) -> (Process, u16) {
    let [http] = free_ports();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern-operator"));
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,tern_operator=debug")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .arg(format!("--http-listen=127.0.0.1:{http}"));
    if !args.iter().any(|a| a.starts_with("--resync-secs")) {
        cmd.arg("--resync-secs=5");
    }
    (Process::spawn("tern-operator", cmd, plane.dir()), http)
}

/// The body of `GET path` on the operator's HTTP endpoint.
pub(super) async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the operator's HTTP endpoint");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("send a request");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("read the answer");
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    answer
}

/// A `BrokerCluster` named `name` with one name server and `groups` groups.
pub(super) fn cluster(name: &str, groups: i32) -> BrokerCluster {
    serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "BrokerCluster",
        "metadata": { "name": name },
        "spec": {
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "broker": { "groups": groups, "storage": { "size": "1Gi" } },
        },
    }))
    .expect("a BrokerCluster")
}

/// Waits until `name` exists in `ns` and returns it.
async fn wait_for<K>(client: &Client, ns: &str, name: &str) -> K
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    eventually(&format!("{} {ns}/{name}", K::kind(&())), REACT, || async {
        api.get_opt(name).await.ok().flatten()
    })
    .await
}

/// Asserts that `meta` belongs to `owner` the way the garbage collector
/// needs, was applied by the operator's field manager, and is labelled.
fn assert_owned(meta: &ObjectMeta, owner: &BrokerCluster, kind: &str) {
    let name = meta.name.clone().unwrap_or_default();
    let refs = meta.owner_references.clone().unwrap_or_default();
    assert_eq!(refs.len(), 1, "{kind} {name}: {refs:?}");
    let r = &refs[0];
    assert_eq!(
        (
            r.api_version.as_str(),
            r.kind.as_str(),
            r.name.as_str(),
            Some(r.uid.as_str())
        ),
        (
            "tern.dev/v1alpha1",
            "BrokerCluster",
            owner.metadata.name.as_deref().unwrap_or_default(),
            owner.metadata.uid.as_deref()
        ),
        "{kind} {name}"
    );
    assert_eq!(r.controller, Some(true), "{kind} {name}");
    assert_eq!(r.block_owner_deletion, Some(true), "{kind} {name}");
    let managers: Vec<(String, String)> = meta
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("tern-operator".to_owned(), "Apply".to_owned())),
        "{kind} {name} managers: {managers:?}"
    );
    let labels = meta.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("tern-operator"),
        "{kind} {name}"
    );
    assert_eq!(
        labels.get("app.kubernetes.io/instance"),
        owner.metadata.name.as_ref(),
        "{kind} {name}"
    );
}

pub(super) fn condition<'a>(c: &'a BrokerCluster, type_: &str) -> Option<&'a Condition> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == type_)
}

/// Waits until the cluster's status was written for `generation` and
/// `check` holds, and returns it.
pub(super) async fn wait_status(
    api: &Api<BrokerCluster>,
    name: &str,
    generation: i64,
    what: &str,
    check: impl Fn(&BrokerCluster) -> bool,
) -> BrokerCluster {
    eventually(what, REACT, || async {
        let c = api.get(name).await.ok()?;
        let seen = c.status.as_ref()?.observed_generation == Some(generation);
        (seen && check(&c)).then_some(c)
    })
    .await
}

pub(super) fn reason_is(c: &BrokerCluster, type_: &str, status: &str, reason: &str) -> bool {
    condition(c, type_).is_some_and(|x| x.status == status && x.reason == reason)
}

pub(super) fn pod_annotation(sts: &StatefulSet, key: &str) -> String {
    sts.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_else(|| panic!("{key} on the pod template"))
}

fn image(sts: &StatefulSet) -> String {
    sts.spec
        .as_ref()
        .expect("a spec")
        .template
        .spec
        .as_ref()
        .expect("a pod spec")
        .containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_creates_owned_children_and_reports_status() {
    let Some(plane) = ControlPlane::start("the operator children test").await else {
        return;
    };
    plane.install_crds().await;
    plane.namespace("mq").await;
    plane.namespace("other").await;
    let (mut operator, http) = start_operator(&plane, plane.kubeconfig(), &[]);
    let client = plane.client.clone();
    let clusters: Api<BrokerCluster> = Api::namespaced(client.clone(), "mq");
    let post = PostParams::default();
    let demo = clusters
        .create(&post, &cluster("demo", 2))
        .await
        .expect("create the cluster");
    // One operator serves many clusters in many namespaces.
    Api::<BrokerCluster>::namespaced(client.clone(), "other")
        .create(&post, &cluster("second", 1))
        .await
        .expect("create a second cluster");

    for name in ["demo-nameserver", "demo-broker-0", "demo-broker-1"] {
        let sts: StatefulSet = wait_for(&client, "mq", name).await;
        assert_owned(&sts.metadata, &demo, "StatefulSet");
    }
    for name in ["demo-nameserver", "demo-broker-0", "demo-broker-1", "demo"] {
        let svc: Service = wait_for(&client, "mq", name).await;
        assert_owned(&svc.metadata, &demo, "Service");
    }
    for name in ["demo-nameserver", "demo-broker-0", "demo-broker-1"] {
        let cm: ConfigMap = wait_for(&client, "mq", name).await;
        assert_owned(&cm.metadata, &demo, "ConfigMap");
    }
    for name in ["demo-nameserver", "demo-broker"] {
        let pdb: PodDisruptionBudget = wait_for(&client, "mq", name).await;
        assert_owned(&pdb.metadata, &demo, "PodDisruptionBudget");
    }
    let sa: ServiceAccount = wait_for(&client, "mq", "demo-tern").await;
    assert_owned(&sa.metadata, &demo, "ServiceAccount");
    assert_eq!(sa.automount_service_account_token, Some(false));

    // The broker's config names the name servers by stable DNS.
    let cm: ConfigMap = wait_for(&client, "mq", "demo-broker-1").await;
    let toml = cm
        .data
        .as_ref()
        .and_then(|d| d.get("broker.toml"))
        .expect("broker.toml");
    assert!(
        toml.contains("demo-nameserver-0.demo-nameserver.mq.svc:9876"),
        "{toml}"
    );
    let second: StatefulSet = wait_for(&client, "other", "second-broker-0").await;
    assert_eq!(
        second.metadata.namespace.as_deref(),
        Some("other"),
        "children live in their cluster's namespace"
    );

    // No pods run here (no controller-manager), so the cluster is not
    // ready and says why.
    let c = wait_status(&clusters, "demo", 1, "the first status", |c| {
        c.status.as_ref().is_some_and(|s| s.broker_groups == 2)
            && reason_is(c, "Ready", "False", "NameserversNotReady")
            && reason_is(c, "Progressing", "True", "RollingOut")
            && reason_is(c, "Degraded", "False", "AsExpected")
    })
    .await;
    let status = c.status.as_ref().expect("a status");
    assert_eq!(status.client_endpoint.as_deref(), Some("demo.mq.svc:9876"));
    assert_eq!(
        (
            status.ready_nameservers,
            status.ready_broker_groups,
            status.broker_groups
        ),
        (0, 0, 2)
    );
    let ready = condition(&c, "Ready").expect("Ready");
    assert_eq!(ready.observed_generation, Some(1));
    assert_eq!(ready.message, "0 of 1 name servers ready");

    let events: Api<Event> = Api::namespaced(client.clone(), "mq");
    eventually("an Event about the cluster", REACT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo")
                    && e.reason.as_deref() == Some("NameserversNotReady")
            })
            .then_some(())
    })
    .await;

    // A deleted child comes back.
    let services: Api<Service> = Api::namespaced(client.clone(), "mq");
    let old_uid = services
        .get("demo")
        .await
        .expect("the client Service")
        .metadata
        .uid;
    services
        .delete("demo", &DeleteParams::default())
        .await
        .expect("delete the client Service");
    eventually("the client Service re-created", REACT, || async {
        let svc = services.get_opt("demo").await.ok().flatten()?;
        (svc.metadata.uid != old_uid).then_some(())
    })
    .await;

    // The operator counts its work.
    let metrics = http_get(http, "/metrics").await;
    let reconciles = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("tern_operator_reconciles_total{controller=\"brokercluster\"} ")
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no brokercluster reconcile count:\n{metrics}"));
    assert!(reconciles >= 2.0, "{metrics}");
    http_get(http, "/readyz").await;

    // Fewer groups: refused, nothing deleted.
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "broker": { "groups": 1 } } })),
        )
        .await
        .expect("lower the group count");
    let c = wait_status(&clusters, "demo", 2, "a refused scale-down", |c| {
        reason_is(c, "Degraded", "True", "ScaleDownRefused")
    })
    .await;
    let degraded = condition(&c, "Degraded").expect("Degraded");
    assert!(
        degraded.message.contains("broker groups 1 still exist"),
        "{}",
        degraded.message
    );
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "mq");
    assert!(
        sts.get_opt("demo-broker-1").await.expect("get").is_some(),
        "the surplus group was kept"
    );
    operator.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn spec_changes_roll_one_group_at_a_time_and_pause_holds() {
    let Some(plane) = ControlPlane::start("the operator rollout test").await else {
        return;
    };
    plane.install_crds().await;
    plane.namespace("mq").await;
    let (mut operator, _) = start_operator(&plane, plane.kubeconfig(), &[]);
    let client = plane.client.clone();
    let clusters: Api<BrokerCluster> = Api::namespaced(client.clone(), "mq");
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "mq");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "mq");
    clusters
        .create(&PostParams::default(), &cluster("roll", 2))
        .await
        .expect("create the cluster");
    wait_status(&clusters, "roll", 1, "the first status", |c| {
        c.status.as_ref().is_some_and(|s| s.broker_groups == 2)
    })
    .await;
    let before: BTreeMap<String, StatefulSet> = {
        let mut m = BTreeMap::new();
        for name in ["roll-nameserver", "roll-broker-0", "roll-broker-1"] {
            m.insert(name.to_owned(), sts.get(name).await.expect("a StatefulSet"));
        }
        m
    };
    let old_hash = |name: &str| pod_annotation(&before[name], ANNOTATION_CONFIG_HASH);

    // A broker setting changes: group 0 (both unready, lowest first) takes
    // the new template; group 1 waits with its old ConfigMap.
    clusters
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "broker": { "config": { "retentionHours": 24 } } } })),
        )
        .await
        .expect("change the retention");
    let c = wait_status(&clusters, "roll", 2, "one group rolling", |c| {
        condition(c, "Progressing").is_some_and(|p| p.message.contains("1 waiting"))
    })
    .await;
    assert!(reason_is(&c, "Progressing", "True", "RollingOut"));
    let group0 = sts.get("roll-broker-0").await.expect("group 0");
    let group1 = sts.get("roll-broker-1").await.expect("group 1");
    assert_ne!(
        pod_annotation(&group0, ANNOTATION_CONFIG_HASH),
        old_hash("roll-broker-0"),
        "group 0 took the new configuration"
    );
    assert_eq!(
        pod_annotation(&group1, ANNOTATION_CONFIG_HASH),
        old_hash("roll-broker-1"),
        "group 1 waits for group 0"
    );
    assert_eq!(
        pod_annotation(
            &sts.get("roll-nameserver").await.expect("name servers"),
            ANNOTATION_CONFIG_HASH
        ),
        old_hash("roll-nameserver"),
        "the name servers' configuration did not change"
    );
    let toml = |cm: ConfigMap| {
        cm.data
            .and_then(|d| d.get("broker.toml").cloned())
            .unwrap_or_default()
    };
    assert!(toml(maps.get("roll-broker-0").await.expect("cm 0")).contains("retention_hours = 24"));
    assert!(toml(maps.get("roll-broker-1").await.expect("cm 1")).contains("retention_hours = 72"));

    // Group 0 becomes ready (written as the StatefulSet controller would):
    // group 1 follows.
    let generation = group0.metadata.generation.expect("a generation");
    sts.patch_status(
        "roll-broker-0",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": {
            "observedGeneration": generation, "replicas": 1, "readyReplicas": 1,
            "updatedReplicas": 1, "currentReplicas": 1, "availableReplicas": 1,
            "currentRevision": "roll-broker-0-1", "updateRevision": "roll-broker-0-1",
        } })),
    )
    .await
    .expect("mark group 0 ready");
    eventually("group 1 rolling after group 0 is ready", REACT, || async {
        let g1 = sts.get("roll-broker-1").await.ok()?;
        (pod_annotation(&g1, ANNOTATION_CONFIG_HASH) != old_hash("roll-broker-1")).then_some(())
    })
    .await;
    assert!(toml(maps.get("roll-broker-1").await.expect("cm 1")).contains("retention_hours = 24"));

    // Paused: a spec change reaches the status, not the children.
    clusters
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: "true" } } })),
        )
        .await
        .expect("pause");
    wait_status(&clusters, "roll", 2, "the paused condition", |c| {
        reason_is(c, "Progressing", "False", "ReconciliationPaused")
    })
    .await;
    let versions = |list: Vec<StatefulSet>| -> BTreeMap<String, (String, String)> {
        list.into_iter()
            .map(|s| {
                let template = s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_TEMPLATE_HASH))
                    .cloned()
                    .unwrap_or_default();
                (
                    s.metadata.name.clone().unwrap_or_default(),
                    (
                        s.metadata.resource_version.clone().unwrap_or_default(),
                        template,
                    ),
                )
            })
            .collect()
    };
    let frozen = versions(sts.list(&ListParams::default()).await.expect("list").items);
    clusters
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "image": "tern:v2" } })),
        )
        .await
        .expect("change the image");
    wait_status(&clusters, "roll", 3, "the paused cluster's status", |c| {
        reason_is(c, "Progressing", "False", "ReconciliationPaused")
    })
    .await;
    // The status is written after the (skipped) apply; give a stray write
    // time to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = sts.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(
        versions(now.clone()),
        frozen,
        "nothing changed while paused"
    );
    assert!(now.iter().all(|s| image(s) == "tern:test"));

    // Unpaused: the image change rolls out (the name servers at once).
    clusters
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: null } } })),
        )
        .await
        .expect("resume");
    eventually("the new image on the name servers", REACT, || async {
        let ns = sts.get("roll-nameserver").await.ok()?;
        (image(&ns) == "tern:v2").then_some(())
    })
    .await;
    wait_status(&clusters, "roll", 3, "progressing again", |c| {
        reason_is(c, "Progressing", "True", "RollingOut")
    })
    .await;
    operator.assert_running();
}
