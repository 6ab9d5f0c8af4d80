//! The CRDs against a real kube-apiserver (see [`super::harness`]):
//! they install and become Established, every manifest under
//! `examples/kubernetes/` passes a server-side dry run, and the CEL rules
//! compile in the API server and refuse what they should.

use std::path::{Path, PathBuf};

use super::harness::{ControlPlane, TEST_MANAGER};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};
use tern_operator::crd::{BrokerCluster, TernUser, Topic};

/// Every YAML document under `examples/kubernetes/`, with its file.
fn example_documents() -> Vec<(PathBuf, Value)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("read examples/kubernetes")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read an example");
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).expect("a YAML document");
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

/// Asserts that every field of `sent` is in `back` with the same value.
fn assert_contains(back: &Value, sent: &Value, what: &str) {
    match (sent, back) {
        (Value::Object(sent), Value::Object(back)) => {
            for (key, value) in sent {
                let inner = back
                    .get(key)
                    .unwrap_or_else(|| panic!("{what}: the API server dropped {key}"));
                assert_contains(inner, value, &format!("{what}.{key}"));
            }
        }
        (Value::Array(sent), Value::Array(back)) if sent.len() == back.len() => {
            for (i, (s, b)) in sent.iter().zip(back).enumerate() {
                assert_contains(b, s, &format!("{what}[{i}]"));
            }
        }
        _ => assert_eq!(back, sent, "{what} changed"),
    }
}

/// The API resource of a manifest, found through discovery.
async fn resource_of(client: &Client, doc: &Value) -> (ApiResource, Scope) {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let kind = doc["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovering {api_version} {kind}: {e}"));
    (resource, caps.scope)
}

#[tokio::test(flavor = "multi_thread")]
async fn crds_install_and_every_example_passes_a_server_side_dry_run() {
    let Some(plane) = ControlPlane::start("the CRD and examples test").await else {
        return;
    };
    let installed = plane.install_crds().await;
    let names: Vec<String> = installed
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "brokerclusters.tern.dev",
            "consumergroups.tern.dev",
            "ternusers.tern.dev",
            "topics.tern.dev"
        ]
    );

    plane.namespace("examples").await;
    let docs = example_documents();
    assert!(
        docs.len() >= 8,
        "examples/kubernetes holds the clusters, topics, groups and client: {} documents",
        docs.len()
    );
    let dry_run = PatchParams::apply(TEST_MANAGER).dry_run();
    for (file, doc) in &docs {
        let (resource, scope) = resource_of(&plane.client, doc).await;
        let api: Api<DynamicObject> = match scope {
            Scope::Namespaced => Api::namespaced_with(plane.client.clone(), "examples", &resource),
            Scope::Cluster => Api::all_with(plane.client.clone(), &resource),
        };
        let name = doc["metadata"]["name"].as_str().expect("metadata.name");
        let answer = api
            .patch(name, &dry_run, &Patch::Apply(doc))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the API server refused {} {name} from {}: {e}\n{}",
                    resource.kind,
                    file.display(),
                    plane.logs()
                )
            });
        // Nothing was pruned: the schema knows every field the examples
        // use (built-in kinds are left out, since the server rewrites
        // quantities in canonical form).
        if resource.group == "tern.dev" {
            assert_contains(
                &answer.data["spec"],
                &doc["spec"],
                &format!("{} {name}", resource.kind),
            );
        }
        // A dry run stores nothing.
        assert!(
            api.get_opt(name).await.expect("get").is_none(),
            "{} {name} was stored by a dry run",
            resource.kind
        );
    }
}

/// The message of a refused request, or a panic if it was accepted.
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>, what: &str) -> String {
    match result {
        Ok(v) => panic!("the API server accepted {what}: {v:?}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{what}: {status:?}");
            status.message
        }
        Err(e) => panic!("{what}: unexpected error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_enforces_the_cel_rules() {
    let Some(plane) = ControlPlane::start("the CEL rules test").await else {
        return;
    };
    plane.install_crds().await;
    plane.namespace("cel").await;
    let clusters: Api<BrokerCluster> = Api::namespaced(plane.client.clone(), "cel");
    let topics: Api<Topic> = Api::namespaced(plane.client.clone(), "cel");
    let post = PostParams::default();
    let cluster = |name: &str, broker: Value| -> BrokerCluster {
        serde_json::from_value(json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "BrokerCluster",
            "metadata": { "name": name },
            "spec": { "image": "tern:test", "broker": broker },
        }))
        .expect("a BrokerCluster")
    };

    // Defaults are applied by the API server from the schema.
    let created = clusters
        .create(&post, &cluster("ok", json!({})))
        .await
        .unwrap_or_else(|e| panic!("a minimal cluster is refused: {e}\n{}", plane.logs()));
    assert_eq!(created.spec.broker.groups, 1);
    assert_eq!(created.spec.nameserver.replicas, 2);

    let message = refusal(
        clusters
            .create(&post, &cluster("repl", json!({ "replicasPerGroup": 2 })))
            .await,
        "two replicas per group",
    );
    assert!(message.contains("replicasPerGroup must be 1"), "{message}");

    let long = "a".repeat(41);
    let message = refusal(
        clusters.create(&post, &cluster(&long, json!({}))).await,
        "a 41-character cluster name",
    );
    assert!(message.contains("at most 40 characters"), "{message}");

    let message = refusal(
        clusters
            .create(
                &post,
                &cluster(
                    "disk",
                    json!({ "config": { "diskHighWater": 0.99, "diskHardLimit": 0.9 } }),
                ),
            )
            .await,
        "a high water mark above the hard limit",
    );
    assert!(
        message.contains("diskHighWater must not be above diskHardLimit"),
        "{message}"
    );

    let message = refusal(
        clusters
            .create(&post, &cluster("groups", json!({ "groups": 65 })))
            .await,
        "65 broker groups",
    );
    assert!(message.contains("spec.broker.groups"), "{message}");

    // Transition rules: queues only grow, clusterRef is immutable.
    let topic: Topic = serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
        "metadata": { "name": "orders" },
        "spec": { "clusterRef": { "name": "ok" }, "queues": 8 },
    }))
    .expect("a Topic");
    topics.create(&post, &topic).await.expect("create a topic");
    let apply = PatchParams::apply(TEST_MANAGER).force();
    let with = |spec: Value| {
        Patch::Apply(json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
            "metadata": { "name": "orders" }, "spec": spec,
        }))
    };
    let grown = topics
        .patch(
            "orders",
            &apply,
            &with(json!({ "clusterRef": { "name": "ok" }, "queues": 16 })),
        )
        .await
        .expect("growing the queues is allowed");
    assert_eq!(grown.spec.queues, 16);
    let message = refusal(
        topics
            .patch(
                "orders",
                &apply,
                &with(json!({ "clusterRef": { "name": "ok" }, "queues": 4 })),
            )
            .await,
        "fewer queues",
    );
    assert!(message.contains("queues cannot be lowered"), "{message}");
    let message = refusal(
        topics
            .patch(
                "orders",
                &apply,
                &with(json!({ "clusterRef": { "name": "other" }, "queues": 16 })),
            )
            .await,
        "another cluster",
    );
    assert!(message.contains("clusterRef is immutable"), "{message}");
    let message = refusal(
        topics
            .patch(
                "orders",
                &apply,
                &with(
                    json!({ "clusterRef": { "name": "ok" }, "queues": 16, "topicName": "Orders" }),
                ),
            )
            .await,
        "adding a topicName",
    );
    assert!(
        message.contains("topicName cannot be added or removed"),
        "{message}"
    );

    // TernUser: defaults, required actions, immutable cluster and name.
    let users: Api<TernUser> = Api::namespaced(plane.client.clone(), "cel");
    let user_with = |spec: Value| {
        Patch::Apply(json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
            "metadata": { "name": "app" }, "spec": spec,
        }))
    };
    let rule = json!([{ "resource": { "type": "Topic", "name": "orders*" }, "actions": ["Pub"] }]);
    let created = users
        .patch(
            "app",
            &apply,
            &user_with(json!({ "clusterRef": { "name": "ok" }, "userName": "App", "acls": rule })),
        )
        .await
        .expect("a TernUser");
    assert!(!created.spec.super_user);
    assert_eq!(
        created.spec.acls[0].decision,
        tern_operator::crd::user::AclDecision::Allow
    );
    let message = refusal(
        users
            .patch(
                "app",
                &apply,
                &user_with(json!({ "clusterRef": { "name": "other" }, "userName": "App" })),
            )
            .await,
        "a user moved to another cluster",
    );
    assert!(message.contains("clusterRef is immutable"), "{message}");
    let message = refusal(
        users
            .patch(
                "app",
                &apply,
                &user_with(json!({ "clusterRef": { "name": "ok" }, "userName": "Other" })),
            )
            .await,
        "a renamed user",
    );
    assert!(message.contains("userName is immutable"), "{message}");
    let message = refusal(
        users
            .patch(
                "app",
                &apply,
                &user_with(json!({ "clusterRef": { "name": "ok" } })),
            )
            .await,
        "a removed userName",
    );
    assert!(
        message.contains("userName cannot be added or removed"),
        "{message}"
    );
    let message = refusal(
        users
            .patch(
                "app",
                &apply,
                &user_with(json!({
                    "clusterRef": { "name": "ok" }, "userName": "App",
                    "acls": [{ "resource": { "type": "Topic", "name": "x" }, "actions": [] }],
                })),
            )
            .await,
        "a rule without actions",
    );
    assert!(message.contains("actions"), "{message}");
}
