//! A `BrokerCluster`'s whole life with pods: kube-controller-manager,
//! kube-scheduler and kwok run beside the API server
//! ([`ControlPlane::start_workloads`]), so StatefulSets get pods that kwok
//! reports Running and Ready on a fake node, volume claims bind to
//! pre-created volumes, and the garbage collector deletes what a deleted
//! cluster owned.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

use super::cluster::{cluster, pod_annotation, reason_is, start_operator, wait_status};
use super::harness::{ControlPlane, NODE, eventually};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tern_operator::build::names::ANNOTATION_CONFIG_HASH;
use tern_operator::crd::BrokerCluster;

/// How long pods may take to be scheduled, faked ready, and rolled.
const ROLL: Duration = Duration::from_secs(240);

/// A cluster of one name server and `groups` groups whose volumes follow
/// `on_delete`.
fn with_policy(name: &str, groups: i32, on_delete: &str) -> BrokerCluster {
    let mut c = cluster(name, groups);
    c.spec.broker.storage.on_delete = serde_json::from_value(json!(on_delete)).expect("a policy");
    c
}

/// The pods of cluster `name`, by name.
async fn pods(client: &Client, ns: &str, name: &str) -> BTreeMap<String, Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("app.kubernetes.io/instance={name}");
    api.list(&ListParams::default().labels(&selector))
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
                .collect()
        })
        .unwrap_or_default()
}

fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    c.last_transition_time.as_ref().map(|t| t.0)
}

/// The StatefulSet controller saw the latest spec, and every replica runs
/// it and is ready.
fn settled(s: &StatefulSet) -> bool {
    let Some(status) = s.status.as_ref() else {
        return false;
    };
    status.observed_generation >= s.metadata.generation
        && status.current_revision == status.update_revision
        && status.ready_replicas == Some(1)
        && status.updated_replicas == Some(1)
}

fn created(pod: &Pod) -> Timestamp {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .expect("a creation time")
        .0
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().expect("a UID")
}

/// How many objects of kind `K` in `ns` belong to cluster `name`.
async fn count<K>(client: &Client, ns: &str, name: &str) -> usize
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let selector = format!("app.kubernetes.io/instance={name}");
    api.list(&ListParams::default().labels(&selector))
        .await
        .map_or(usize::MAX, |l| l.items.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_become_ready_a_rollout_goes_group_by_group_and_deletion_follows_the_policy() {
    let Some(mut plane) = ControlPlane::start("the cluster lifecycle test").await else {
        return;
    };
    plane.install_crds().await;
    plane.start_workloads(3).await;
    plane.namespace("mq").await;
    plane.namespace("keep").await;
    let (mut operator, _) = start_operator(&plane, plane.kubeconfig(), &[]);
    let client = plane.client.clone();
    let clusters: Api<BrokerCluster> = Api::namespaced(client.clone(), "mq");
    let kept: Api<BrokerCluster> = Api::namespaced(client.clone(), "keep");
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "mq");
    clusters
        .create(&PostParams::default(), &with_policy("live", 2, "Delete"))
        .await
        .expect("create the cluster");
    kept.create(&PostParams::default(), &with_policy("kept", 1, "Retain"))
        .await
        .expect("create the second cluster");

    // Pods run on the fake node and the cluster becomes Ready.
    let ready = |c: &BrokerCluster| {
        reason_is(c, "Ready", "True", "ClusterReady")
            && reason_is(c, "Progressing", "False", "RolloutComplete")
    };
    let live = eventually("cluster live Ready", ROLL, || async {
        let c = clusters.get("live").await.ok()?;
        let s = c.status.as_ref()?;
        (s.observed_generation == Some(1) && ready(&c)).then_some(c)
    })
    .await;
    let status = live.status.expect("a status");
    assert_eq!(
        (status.ready_nameservers, status.ready_broker_groups),
        (1, 2)
    );
    let running = pods(&client, "mq", "live").await;
    assert_eq!(
        running.keys().map(String::as_str).collect::<Vec<_>>(),
        ["live-broker-0-0", "live-broker-1-0", "live-nameserver-0"]
    );
    for (name, pod) in &running {
        let spec = pod.spec.as_ref().expect("a pod spec");
        assert_eq!(spec.node_name.as_deref(), Some(NODE), "{name}");
        assert!(ready_since(pod).is_some(), "{name} is not ready");
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "mq");
    for g in 0..2 {
        let claim = claims
            .get(&format!("data-live-broker-{g}-0"))
            .await
            .expect("a volume claim per broker");
        assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    }
    eventually("cluster kept Ready", ROLL, || async {
        let c = kept.get("kept").await.ok()?;
        ready(&c).then_some(())
    })
    .await;

    // A broker setting changes: the groups roll one after the other.
    let old: BTreeMap<i32, String> = {
        let mut m = BTreeMap::new();
        for g in 0..2 {
            let s = sts.get(&format!("live-broker-{g}")).await.expect("a group");
            m.insert(g, pod_annotation(&s, ANNOTATION_CONFIG_HASH));
        }
        m
    };
    clusters
        .patch(
            "live",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "broker": { "config": { "retentionHours": 24 } } } })),
        )
        .await
        .expect("change the retention");
    // Polled all along the rollout: never more than one group unsettled.
    let most_unsettled = Cell::new(0);
    eventually("the rollout done", ROLL, || async {
        let mut unsettled = 0;
        for g in 0..2 {
            let s = sts.get(&format!("live-broker-{g}")).await.ok()?;
            unsettled += usize::from(!settled(&s));
        }
        most_unsettled.set(most_unsettled.get().max(unsettled));
        // Done means every group runs the new spec and is ready again, not
        // only that the templates changed.
        if unsettled > 0 {
            return None;
        }
        let c = clusters.get("live").await.ok()?;
        let s = c.status.as_ref()?;
        if s.observed_generation != Some(2) || !ready(&c) {
            return None;
        }
        for (g, hash) in &old {
            let now = sts.get(&format!("live-broker-{g}")).await.ok()?;
            if pod_annotation(&now, ANNOTATION_CONFIG_HASH) == *hash {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(
        most_unsettled.get() <= 1,
        "two broker groups were rolling at once"
    );
    let rolled = pods(&client, "mq", "live").await;
    let group0_ready = ready_since(&rolled["live-broker-0-0"]).expect("group 0 ready");
    let group1_created = created(&rolled["live-broker-1-0"]);
    assert!(
        group1_created >= group0_ready,
        "group 1's pod was replaced at {group1_created}, before group 0's new pod was ready at \
         {group0_ready}"
    );
    // A replaced pod has a new UID (creation times have one-second
    // resolution, and a rollout on kwok can finish within the second).
    assert_ne!(
        uid(&rolled["live-broker-0-0"]),
        uid(&running["live-broker-0-0"]),
        "group 0's pod was replaced"
    );
    assert_eq!(
        uid(&rolled["live-nameserver-0"]),
        uid(&running["live-nameserver-0"]),
        "the name server did not restart for a broker setting"
    );
    let wait_settled = wait_status(&clusters, "live", 2, "settled", ready).await;
    assert!(reason_is(&wait_settled, "Degraded", "False", "AsExpected"));

    // Deleting the clusters: the garbage collector removes every child;
    // volumes follow storage.onDelete.
    let background = DeleteParams::background();
    clusters
        .delete("live", &background)
        .await
        .expect("delete live");
    kept.delete("kept", &background).await.expect("delete kept");
    for (ns, name) in [("mq", "live"), ("keep", "kept")] {
        eventually(&format!("the children of {name} removed"), ROLL, || async {
            let left = count::<StatefulSet>(&client, ns, name).await
                + count::<Service>(&client, ns, name).await
                + count::<ConfigMap>(&client, ns, name).await
                + count::<PodDisruptionBudget>(&client, ns, name).await
                + pods(&client, ns, name).await.len();
            (left == 0).then_some(())
        })
        .await;
    }
    eventually("the Delete policy's claims removed", ROLL, || async {
        let left = claims.list(&ListParams::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    let retained: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "keep");
    // Give the garbage collector the time it took for the other cluster.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        retained
            .get_opt("data-kept-broker-0-0")
            .await
            .expect("get")
            .is_some(),
        "the Retain policy keeps the volume claim\n{}",
        plane.workload_logs()
    );
    operator.assert_running();
}
