//! The Topic reconcile end to end, short of a real control plane: the
//! operator's reconcile function runs against a scripted Kubernetes API
//! (finalizer, status and Event requests are recorded) and a real Tern
//! broker on a loopback port, reached through the admin endpoint override
//! as an operator run outside the cluster would.

#[path = "support/api.rs"]
mod api;
#[path = "support/broker.rs"]
mod broker;

use std::sync::Arc;
use std::time::Duration;

use api::{Call, condition, event_reasons, not_found, ok, recorded};
use broker::RunningBroker;
use http::Response;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{reflector, watcher};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tern_model::{MessageType, Permission};
use tern_operator::controller::admin::{AdminClients, BrokerAdmin};
use tern_operator::controller::managed::{self, ManagedContext};
use tern_operator::controller::plan::BrokerTopic;
use tern_operator::controller::{Context, Settings};
use tern_operator::crd::Topic;

const FINALIZER: &str = "tern.dev/topic";

/// A Topic named `name` for the broker-side topic `Orders`, created at
/// second `created` of 2026.
fn topic(name: &str, created: u32, queues: i32, finalizer: bool) -> Topic {
    let finalizers: Vec<&str> = if finalizer {
        vec![FINALIZER]
    } else {
        Vec::new()
    };
    serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1",
        "kind": "Topic",
        "metadata": {
            "name": name, "namespace": "mq", "uid": format!("uid-{name}"), "generation": 2,
            "creationTimestamp": format!("2026-01-01T00:00:{created:02}Z"),
            "finalizers": finalizers,
        },
        "spec": { "clusterRef": { "name": "prod" }, "topicName": "Orders", "queues": queues },
    }))
    .expect("a valid Topic")
}

fn cluster() -> Value {
    json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "BrokerCluster",
        "metadata": { "name": "prod", "namespace": "mq", "uid": "uid-prod" },
        "spec": { "image": "tern:test" },
    })
}

fn answer(topic: &Value, cluster: Option<&Value>, call: &Call) -> Response<Body> {
    let base = "/apis/tern.dev/v1alpha1/namespaces/mq";
    match call.method.as_str() {
        "GET" if call.path == format!("{base}/brokerclusters/prod") => {
            cluster.map_or_else(not_found, ok)
        }
        "PATCH" if call.path.ends_with("/status") => {
            let mut merged = topic.clone();
            merged["status"] = call.body["status"].clone();
            ok(&merged)
        }
        "PATCH" if call.path.starts_with(&format!("{base}/topics/")) => ok(topic),
        "POST" => ok(&call.body),
        _ => not_found(),
    }
}

/// Reconciles `obj` once, with `others` in the controller's cache.
async fn reconcile(
    obj: Topic,
    others: Vec<Topic>,
    cluster_exists: bool,
    endpoint: &str,
) -> Vec<Call> {
    let world_topic = serde_json::to_value(&obj).expect("json");
    let world_cluster = cluster_exists.then(cluster);
    let (client, calls) =
        api::client(move |call| answer(&world_topic, world_cluster.as_ref(), call));
    let (store, mut writer) = reflector::store::<Topic>();
    for t in others.into_iter().chain([obj.clone()]) {
        writer.apply_watcher_event(&watcher::Event::Apply(t));
    }
    let mut registry = Registry::default();
    let base = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "test".to_owned(),
                instance: None,
            },
        ),
        metrics: Arc::new(tern_operator::metrics::Metrics::new(&mut registry)),
        admin: AdminClients::default(),
        settings: Settings {
            admin_endpoint_override: Some(endpoint.to_owned()),
            resync: Duration::from_secs(60),
        },
    });
    let ctx = Arc::new(ManagedContext { base, store });
    let run = managed::reconcile(Arc::new(obj), ctx);
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the reconcile ends")
        .expect("the reconcile succeeds");
    recorded(&calls)
}

fn status(calls: &[Call]) -> Value {
    let patch = calls
        .iter()
        .find(|c| c.method == "PATCH" && c.path.ends_with("/status"))
        .expect("a status patch");
    assert_eq!(patch.body["kind"], "Topic");
    assert!(
        patch.query.contains("fieldManager=tern-operator"),
        "{}",
        patch.query
    );
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    patch.body["status"].clone()
}

async fn stored(admin: &AdminClients, endpoint: &str) -> Option<BrokerTopic> {
    admin
        .describe_topic(endpoint, "Orders")
        .await
        .expect("describe")
}

#[tokio::test]
async fn a_new_topic_gets_its_finalizer_before_anything_else() {
    let broker = RunningBroker::start().await;
    let calls = reconcile(
        topic("orders", 1, 8, false),
        Vec::new(),
        true,
        &broker.endpoint(),
    )
    .await;
    let patch = calls.iter().find(|c| c.method == "PATCH").expect("a patch");
    assert_eq!(
        patch.path,
        "/apis/tern.dev/v1alpha1/namespaces/mq/topics/orders"
    );
    assert_eq!(patch.content_type, "application/json-patch+json");
    assert!(patch.body.to_string().contains(FINALIZER), "{}", patch.body);
    assert_eq!(
        stored(&AdminClients::default(), &broker.endpoint()).await,
        None,
        "nothing in the broker yet"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_topic_is_created_in_the_broker_and_reported_ready() {
    let broker = RunningBroker::start().await;
    let ep = broker.endpoint();
    let calls = reconcile(topic("orders", 1, 6, true), Vec::new(), true, &ep).await;
    let t = stored(&AdminClients::default(), &ep)
        .await
        .expect("the topic exists");
    assert_eq!(
        (t.queues, t.message_type, t.permission),
        (6, MessageType::Normal, Permission::ReadWrite)
    );
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Ready"),
        ("True".to_owned(), "Synced".to_owned())
    );
    assert_eq!(s["observedGeneration"], 2);
    assert_eq!(s["topicName"], "Orders");
    assert_eq!(s["syncedBrokerGroups"], 1);
    assert!(event_reasons(&calls).contains(&"Created".to_owned()));
    broker.stop().await;
}

#[tokio::test]
async fn the_younger_of_two_topics_for_one_name_reports_a_conflict() {
    let broker = RunningBroker::start().await;
    let older = topic("orders-a", 10, 8, true);
    let calls = reconcile(
        topic("orders-b", 20, 4, true),
        vec![older],
        true,
        &broker.endpoint(),
    )
    .await;
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Ready"),
        ("False".to_owned(), "ResourceConflict".to_owned())
    );
    assert!(s.to_string().contains("orders-a"), "{s}");
    assert_eq!(
        stored(&AdminClients::default(), &broker.endpoint()).await,
        None,
        "the loser never touches the broker"
    );
    assert!(event_reasons(&calls).contains(&"ResourceConflict".to_owned()));
    broker.stop().await;
}

#[tokio::test]
async fn a_missing_cluster_is_reported() {
    let broker = RunningBroker::start().await;
    let calls = reconcile(
        topic("orders", 1, 8, true),
        Vec::new(),
        false,
        &broker.endpoint(),
    )
    .await;
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Ready"),
        ("False".to_owned(), "ClusterNotFound".to_owned())
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_shrunk_topic_is_refused_and_the_broker_keeps_its_queues() {
    let broker = RunningBroker::start().await;
    let ep = broker.endpoint();
    let admin = AdminClients::default();
    let existing = BrokerTopic {
        name: "Orders".to_owned(),
        queues: 8,
        message_type: MessageType::Normal,
        permission: Permission::ReadWrite,
    };
    admin.create_topic(&ep, &existing).await.expect("create");
    let calls = reconcile(topic("orders", 1, 4, true), Vec::new(), true, &ep).await;
    let s = status(&calls);
    assert_eq!(
        condition(&s, "Ready"),
        ("False".to_owned(), "NotSupported".to_owned())
    );
    assert_eq!(stored(&admin, &ep).await.map(|t| t.queues), Some(8));
    broker.stop().await;
}

#[tokio::test]
async fn deleting_a_topic_deletes_it_from_the_broker_then_drops_the_finalizer() {
    let broker = RunningBroker::start().await;
    let ep = broker.endpoint();
    let admin = AdminClients::default();
    let existing = BrokerTopic {
        name: "Orders".to_owned(),
        queues: 8,
        message_type: MessageType::Normal,
        permission: Permission::ReadWrite,
    };
    admin.create_topic(&ep, &existing).await.expect("create");
    let mut deleting = topic("orders", 1, 8, true);
    deleting.metadata.deletion_timestamp = deleting.metadata.creation_timestamp.clone();
    let calls = reconcile(deleting, Vec::new(), true, &ep).await;
    assert_eq!(
        stored(&admin, &ep).await,
        None,
        "the topic is gone from the broker"
    );
    let patch = calls
        .iter()
        .find(|c| c.method == "PATCH")
        .expect("the finalizer removal");
    assert_eq!(patch.content_type, "application/json-patch+json");
    assert!(patch.body.to_string().contains("remove"), "{}", patch.body);
    assert!(event_reasons(&calls).contains(&"Deleted".to_owned()));
    broker.stop().await;
}
