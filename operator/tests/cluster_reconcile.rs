//! The `BrokerCluster` reconcile against a scripted Kubernetes API: the
//! kube client talks to an in-process tower service that records every
//! request and answers like an API server would (lists, 404s, echoed
//! server-side applies). It checks which objects are applied, with which
//! field manager, what status is written, and that pause, rolling updates
//! and refused scale-downs behave. `control_plane/` runs the same against a
//! real API server.

#[path = "support/api.rs"]
mod api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::{Call, condition, event_reasons, not_found, ok, recorded};
use http::Response;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tern_operator::build;
use tern_operator::build::names::ANNOTATION_TEMPLATE_HASH;
use tern_operator::controller::admin::AdminClients;
use tern_operator::controller::{Context, PAUSED_ANNOTATION, Settings, cluster};
use tern_operator::crd::{BrokerCluster, BrokerClusterSpec};
use tern_operator::metrics::Metrics;

/// What the scripted API server knows.
struct World {
    cluster: Value,
    stateful_sets: Vec<StatefulSet>,
}

fn sample(groups: i32) -> BrokerCluster {
    let spec: BrokerClusterSpec =
        serde_json::from_value(json!({ "image": "tern:test", "broker": { "groups": groups } }))
            .expect("a valid spec");
    let mut c = BrokerCluster::new("prod", spec);
    c.metadata.namespace = Some("mq".to_owned());
    c.metadata.uid = Some("uid-1".to_owned());
    c.metadata.generation = Some(3);
    c
}

fn answer(world: &World, call: &Call) -> Response<Body> {
    let sts_prefix = "/apis/apps/v1/namespaces/mq/statefulsets";
    match call.method.as_str() {
        "GET" if call.path == sts_prefix => ok(&json!({
            "apiVersion": "apps/v1", "kind": "StatefulSetList", "metadata": {},
            "items": world.stateful_sets,
        })),
        "GET" if call.path.starts_with(sts_prefix) => {
            let name = call.path.rsplit('/').next().unwrap_or_default();
            match world
                .stateful_sets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
            {
                Some(s) => ok(&serde_json::to_value(s).expect("json")),
                None => not_found(),
            }
        }
        "PATCH" if call.path.ends_with("/status") => {
            let mut merged = world.cluster.clone();
            merged["status"] = call.body["status"].clone();
            ok(&merged)
        }
        // Server-side apply and Event creation answer with the object.
        "PATCH" | "POST" => ok(&call.body),
        _ => not_found(),
    }
}

/// Runs one reconcile of `cluster` against a world holding
/// `stateful_sets`, and returns every request made.
async fn reconcile(cluster: BrokerCluster, stateful_sets: Vec<StatefulSet>) -> Vec<Call> {
    let world = World {
        cluster: serde_json::to_value(&cluster).expect("json"),
        stateful_sets,
    };
    let (client, calls) = api::client(move |call| answer(&world, call));
    let mut registry = Registry::default();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "test".to_owned(),
                instance: None,
            },
        ),
        metrics: Arc::new(Metrics::new(&mut registry)),
        admin: AdminClients::default(),
        settings: Settings::default(),
    });
    let reconcile = cluster::reconcile(Arc::new(cluster), ctx);
    let action = tokio::time::timeout(Duration::from_secs(20), reconcile)
        .await
        .expect("the reconcile ends");
    action.expect("the reconcile succeeds");
    recorded(&calls)
}

fn applied(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "PATCH" && !c.path.ends_with("/status"))
        .map(|c| c.path.clone())
        .collect()
}

fn status(calls: &[Call]) -> Value {
    let patch = calls
        .iter()
        .find(|c| c.path.ends_with("/brokerclusters/prod/status"))
        .expect("a status patch");
    patch.body["status"].clone()
}

/// A broker StatefulSet as the API server would return it: owned by the
/// cluster, with the given template hash, ready or not.
fn existing_group(group: i32, template_hash: &str, ready: bool) -> StatefulSet {
    let cluster = sample(group + 1);
    let desired = build::desired(&cluster).expect("builds");
    let mut sts = desired.groups[usize::try_from(group).expect("small")]
        .stateful_set
        .clone();
    sts.metadata.generation = Some(1);
    sts.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_TEMPLATE_HASH.to_owned(),
        template_hash.to_owned(),
    )]));
    let n = i32::from(ready);
    sts.status = Some(StatefulSetStatus {
        observed_generation: Some(1),
        replicas: 1,
        ready_replicas: Some(n),
        updated_replicas: Some(n),
        ..StatefulSetStatus::default()
    });
    sts
}

#[tokio::test]
async fn a_new_cluster_applies_every_child_and_reports_progress() {
    let calls = reconcile(sample(2), Vec::new()).await;
    let paths = applied(&calls);
    let ns = "/namespaces/mq";
    for want in [
        format!("/api/v1{ns}/serviceaccounts/prod-tern"),
        format!("/api/v1{ns}/configmaps/prod-nameserver"),
        format!("/api/v1{ns}/services/prod-nameserver"),
        format!("/apis/apps/v1{ns}/statefulsets/prod-nameserver"),
        format!("/api/v1{ns}/configmaps/prod-broker-0"),
        format!("/api/v1{ns}/services/prod-broker-0"),
        format!("/apis/apps/v1{ns}/statefulsets/prod-broker-0"),
        format!("/apis/apps/v1{ns}/statefulsets/prod-broker-1"),
        format!("/api/v1{ns}/services/prod"),
        format!("/apis/policy/v1{ns}/poddisruptionbudgets/prod-nameserver"),
        format!("/apis/policy/v1{ns}/poddisruptionbudgets/prod-broker"),
    ] {
        assert!(
            paths.contains(&want),
            "{want} was not applied; applied: {paths:#?}"
        );
    }
    for c in calls.iter().filter(|c| c.method == "PATCH") {
        assert!(
            c.query.contains("fieldManager=tern-operator"),
            "{}?{}",
            c.path,
            c.query
        );
        assert!(c.query.contains("force=true"), "{}?{}", c.path, c.query);
        assert_eq!(c.content_type, "application/apply-patch+yaml", "{}", c.path);
    }
    assert!(
        !calls.iter().any(|c| c.method == "DELETE"),
        "the operator deletes nothing"
    );

    let s = status(&calls);
    assert_eq!(s["observedGeneration"], 3);
    assert_eq!(s["clientEndpoint"], "prod.mq.svc:9876");
    assert_eq!(s["readyBrokerGroups"], 0);
    // The groups created in this pass count as existing at once.
    assert_eq!(s["brokerGroups"], 2);
    assert_eq!(
        condition(&s, "Ready"),
        ("False".to_owned(), "NameserversNotReady".to_owned())
    );
    assert_eq!(
        condition(&s, "Progressing"),
        ("True".to_owned(), "RollingOut".to_owned())
    );
    assert_eq!(
        condition(&s, "Degraded"),
        ("False".to_owned(), "AsExpected".to_owned())
    );
    assert!(event_reasons(&calls).contains(&"NameserversNotReady".to_owned()));
}

#[tokio::test]
async fn a_paused_cluster_gets_status_but_no_changes() {
    let mut cluster = sample(1);
    cluster.metadata.annotations = Some(BTreeMap::from([(
        PAUSED_ANNOTATION.to_owned(),
        "true".to_owned(),
    )]));
    let calls = reconcile(cluster, Vec::new()).await;
    assert_eq!(applied(&calls), Vec::<String>::new());
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Progressing"),
        ("False".to_owned(), "ReconciliationPaused".to_owned())
    );
    assert_eq!(s["brokerGroups"], 0, "nothing was created while paused");
}

#[tokio::test]
async fn a_spec_change_rolls_one_broker_group_at_a_time() {
    let existing = vec![
        existing_group(0, "old", true),
        existing_group(1, "old", true),
    ];
    let calls = reconcile(sample(2), existing).await;
    let paths = applied(&calls);
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("/statefulsets/prod-broker-0")),
        "{paths:#?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("/statefulsets/prod-broker-1")),
        "group 1 must wait: {paths:#?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("/configmaps/prod-broker-1")),
        "its file waits too: {paths:#?}"
    );
    assert!(event_reasons(&calls).contains(&"RollingBrokerGroup".to_owned()));
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Progressing"),
        ("True".to_owned(), "RollingOut".to_owned())
    );
}

#[tokio::test]
async fn lowering_the_group_count_is_refused_and_deletes_nothing() {
    let cluster = sample(1);
    let hash = build::desired(&cluster).expect("builds").groups[0]
        .template_hash
        .clone();
    let existing = vec![
        existing_group(0, &hash, true),
        existing_group(1, &hash, true),
        existing_group(2, &hash, true),
    ];
    let calls = reconcile(cluster, existing).await;
    assert!(!calls.iter().any(|c| c.method == "DELETE"));
    let paths = applied(&calls);
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("prod-broker-1") || p.ends_with("prod-broker-2")),
        "{paths:#?}"
    );
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Degraded"),
        ("True".to_owned(), "ScaleDownRefused".to_owned())
    );
    assert_eq!(s["brokerGroups"], 3);
    assert!(event_reasons(&calls).contains(&"ScaleDownRefused".to_owned()));
}
