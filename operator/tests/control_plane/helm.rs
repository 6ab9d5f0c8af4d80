//! The Helm chart against the test API server: `helm lint` passes, `helm
//! install` creates the CRDs, the Deployment and the RBAC objects, and the
//! operator, run locally as the chart's ServiceAccount (through
//! impersonation, so only the chart's ClusterRole and Role authorize it),
//! can do its whole job: leader election, children, status, Events, and a
//! Topic's finalizer and status.

use std::path::Path;
use std::process::Command;

use super::cluster::{REACT, cluster, reason_is, start_operator, wait_status};
use super::harness::{ControlPlane, eventually};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tern_operator::crd::{BrokerCluster, TernUser, Topic};

/// Runs helm with `args`, its state kept in the run's folder; panics with
/// its output if it fails, else returns its standard output.
fn helm(plane: &ControlPlane, args: &[&str]) -> String {
    let home = plane.dir().join("helm");
    let out = Command::new(plane.tool("helm"))
        .args(args)
        .env("KUBECONFIG", plane.kubeconfig())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "helm {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_installs_the_chart_and_its_rbac_is_all_the_operator_needs() {
    let Some(plane) = ControlPlane::start("the Helm chart test").await else {
        return;
    };
    let chart = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/tern-operator")
        .display()
        .to_string();
    let lint = helm(&plane, &["lint", &chart]);
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    // `helm template` renders every object of the chart offline.
    let rendered = helm(
        &plane,
        &[
            "template",
            "tern-operator",
            &chart,
            "--namespace",
            "tern-system",
        ],
    );
    for kind in [
        "kind: Deployment",
        "kind: ServiceAccount",
        "kind: ClusterRole",
        "kind: ClusterRoleBinding",
        "kind: Role",
    ] {
        assert!(rendered.contains(kind), "no `{kind}` in:\n{rendered}");
    }
    helm(
        &plane,
        &[
            "install",
            "tern-operator",
            &chart,
            "--namespace",
            "tern-system",
            "--create-namespace",
            "--set",
            "image.tag=test",
        ],
    );

    // The chart's CRDs, Deployment and RBAC.
    let crds: Api<CustomResourceDefinition> = Api::all(plane.client.clone());
    let mut installed = Vec::new();
    for name in [
        "brokerclusters.tern.dev",
        "topics.tern.dev",
        "consumergroups.tern.dev",
        "ternusers.tern.dev",
    ] {
        installed.push(crds.get(name).await.expect("helm installed the CRD"));
    }
    plane.wait_crds_served(&installed).await;
    let client = plane.client.clone();
    let deployment = Api::<Deployment>::namespaced(client.clone(), "tern-system")
        .get("tern-operator")
        .await
        .expect("the operator's Deployment");
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("a pod template");
    assert_eq!(pod.service_account_name.as_deref(), Some("tern-operator"));
    assert_eq!(pod.containers[0].image.as_deref(), Some("tern:test"));
    Api::<ServiceAccount>::namespaced(client.clone(), "tern-system")
        .get("tern-operator")
        .await
        .expect("the ServiceAccount");
    Api::<ClusterRole>::all(client.clone())
        .get("tern-operator")
        .await
        .expect("the ClusterRole");
    Api::<ClusterRoleBinding>::all(client.clone())
        .get("tern-operator")
        .await
        .expect("the ClusterRoleBinding");
    let roles: Vec<String> = Api::<Role>::namespaced(client.clone(), "tern-system")
        .list(&Default::default())
        .await
        .expect("list Roles")
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    assert!(!roles.is_empty(), "a Role for the leader-election Lease");
    assert!(
        !Api::<RoleBinding>::namespaced(client.clone(), "tern-system")
            .list(&Default::default())
            .await
            .expect("list RoleBindings")
            .items
            .is_empty()
    );

    // The operator as the chart's ServiceAccount.
    let kubeconfig = plane.impersonating_kubeconfig(
        "operator-kubeconfig",
        "system:serviceaccount:tern-system:tern-operator",
    );
    let (mut operator, _) = start_operator(
        &plane,
        &kubeconfig,
        &[
            "--leader-election",
            "--lease-namespace=tern-system",
            "--identity=local-test",
        ],
    );
    plane.namespace("apps").await;
    let clusters: Api<BrokerCluster> = Api::namespaced(client.clone(), "apps");
    // With authentication, so the admin Secret is created and read, and a
    // TernUser's Secret applied, under the chart's RBAC too.
    let mut rbac = cluster("rbac", 1);
    rbac.spec.authentication.type_ = tern_operator::crd::cluster::AuthenticationType::Acl;
    clusters
        .create(&PostParams::default(), &rbac)
        .await
        .expect("create a cluster");
    let user: TernUser = serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
        "metadata": { "name": "app" },
        "spec": { "clusterRef": { "name": "rbac" } },
    }))
    .expect("a TernUser");
    let users: Api<TernUser> = Api::namespaced(client.clone(), "apps");
    users
        .create(&PostParams::default(), &user)
        .await
        .expect("create a user");
    let topic: Topic = serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
        "metadata": { "name": "orders" },
        "spec": { "clusterRef": { "name": "rbac" } },
    }))
    .expect("a Topic");
    let topics: Api<Topic> = Api::namespaced(client.clone(), "apps");
    topics
        .create(&PostParams::default(), &topic)
        .await
        .expect("create a topic");

    let lease = eventually("the leader Lease", REACT, || async {
        Api::<Lease>::namespaced(client.clone(), "tern-system")
            .get_opt("tern-operator")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("local-test")
    );
    wait_status(&clusters, "rbac", 1, "the cluster's status", |c| {
        c.status.as_ref().is_some_and(|s| s.broker_groups == 1)
            && reason_is(c, "Ready", "False", "NameserversNotReady")
    })
    .await;
    Api::<StatefulSet>::namespaced(client.clone(), "apps")
        .get("rbac-broker-0")
        .await
        .expect("the broker StatefulSet");
    // No broker runs, so the topic cannot be synced, but the operator may
    // add its finalizer and say why in the status.
    let synced = eventually("the topic's finalizer and status", REACT, || async {
        let t = topics.get("orders").await.ok()?;
        let has_finalizer = t
            .metadata
            .finalizers
            .as_ref()?
            .iter()
            .any(|f| f == "tern.dev/topic");
        let ready = t
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        has_finalizer.then_some(ready)
    })
    .await;
    assert_eq!(synced.status, "False");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "apps");
    for name in ["rbac-tern-admin", "app"] {
        eventually(&format!("the Secret {name}"), REACT, || async {
            secrets.get_opt(name).await.ok().flatten()
        })
        .await;
    }
    let user_status = eventually("the user's finalizer and status", REACT, || async {
        let u = users.get("app").await.ok()?;
        let has_finalizer = u
            .metadata
            .finalizers
            .as_ref()?
            .iter()
            .any(|f| f == "tern.dev/user");
        let ready = u
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        has_finalizer.then_some(ready)
    })
    .await;
    assert_eq!(
        (user_status.status.as_str(), user_status.reason.as_str()),
        ("False", "BrokerUnavailable")
    );
    let log = operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{log}"
    );
    operator.assert_running();
}
