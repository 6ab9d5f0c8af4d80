//! Authentication end to end: a `BrokerCluster` with authentication `Acl`
//! and `TernUser`s in a real kube-apiserver (with kube-controller-manager,
//! for the garbage collector), the real `tern-operator` binary, and a real
//! `tern standalone --auth-enabled` broker on a loopback port, reached by
//! the operator through `--admin-endpoint`.
//!
//! The operator creates the cluster's admin Secret; the broker is started
//! with it as its bootstrap super user, as the broker pods are (their
//! environment reads the same Secret); the operator then signs its admin
//! calls with it: Topics reach the broker, and each `TernUser` becomes a
//! user with its rules and a Secret of its own. A client holding a user's
//! Secret (as a pod mounting it would) can send where its rules allow and
//! is refused elsewhere; the rotation annotation issues a new key (the
//! old one refused); deleting the `TernUser` removes the user from the
//! broker and its Secret with it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tern_client::{Credentials, MessagingClient, OutgoingMessage, TopicName};
use tern_harness::TernProcess;
use tern_operator::crd::{BrokerCluster, TernUser, Topic};

use super::broker::tern_binary;
use super::cluster::{REACT, start_operator};
use super::harness::{ControlPlane, eventually, free_ports};

/// The text of `key` in `secret`.
fn value(secret: &Secret, key: &str) -> String {
    let bytes = &secret.data.as_ref().expect("data")[key];
    String::from_utf8(bytes.0.clone()).expect("UTF-8")
}

/// Whether `access` / `secret` can send one message to `topic`.
async fn can_send(endpoint: &str, access: &str, secret: &str, topic: &str) -> bool {
    let Ok(client) = MessagingClient::connect(endpoint).await else {
        return false;
    };
    let client = client.with_credentials(Some(
        Credentials::new(access, secret).expect("valid credentials"),
    ));
    let message = OutgoingMessage {
        body: b"hello".to_vec(),
        ..OutgoingMessage::default()
    };
    let topic = TopicName::new(topic).expect("a topic name");
    client
        .send(&topic, &[message])
        .await
        .is_ok_and(|outcomes| outcomes.iter().all(Result::is_ok))
}

/// Waits until the Secret `name` exists and returns its (accessKey,
/// secretKey), once `accept` takes them.
async fn wait_secret(
    secrets: &Api<Secret>,
    name: &str,
    accept: impl Fn(&(String, String)) -> bool,
) -> (Secret, (String, String)) {
    eventually(&format!("the Secret {name}"), REACT, || async {
        let s = secrets.get_opt(name).await.ok()??;
        let keys = (value(&s, "accessKey"), value(&s, "secretKey"));
        accept(&keys).then_some((s, keys))
    })
    .await
}

fn user(name: &str, topic: &str) -> TernUser {
    serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
        "metadata": { "name": name },
        "spec": {
            "clusterRef": { "name": "demo" },
            "acls": [{ "resource": { "type": "Topic", "name": topic }, "actions": ["Pub"] }],
        },
    }))
    .expect("a TernUser")
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_clusters_get_an_admin_secret_and_users_their_credentials_rules_and_rotation() {
    let Some(mut plane) = ControlPlane::start("the authentication test").await else {
        return;
    };
    plane.install_crds().await;
    plane.namespace("mq").await;
    // The garbage collector removes a deleted TernUser's Secret.
    plane.start_workloads(0).await;
    let client = plane.client.clone();
    let post = PostParams::default();

    let [port] = free_ports();
    let endpoint = format!("127.0.0.1:{port}");
    let admin_endpoint = format!("--admin-endpoint={endpoint}");
    let (mut operator, _http) = start_operator(
        &plane,
        plane.kubeconfig(),
        &[admin_endpoint.as_str(), "--resync-secs=2"],
    );

    // 1. A cluster with authentication Acl gets its admin Secret, owned by
    // the cluster; the broker pods read it through their environment.
    let mut demo: BrokerCluster = super::cluster::cluster("demo", 1);
    demo.spec.authentication.type_ = tern_operator::crd::cluster::AuthenticationType::Acl;
    let demo = Api::<BrokerCluster>::namespaced(client.clone(), "mq")
        .create(&post, &demo)
        .await
        .expect("create the cluster");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "mq");
    let (admin_secret, (admin_access, admin_key)) =
        wait_secret(&secrets, "demo-tern-admin", |_| true).await;
    assert_eq!(admin_access, "tern-operator");
    assert!(admin_key.len() >= 32, "a long random key");
    let owner = &admin_secret
        .metadata
        .owner_references
        .as_ref()
        .expect("owned")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        (
            "BrokerCluster",
            demo.metadata.uid.as_deref().unwrap_or_default()
        )
    );
    let sts: StatefulSet = eventually("the broker StatefulSet", REACT, || async {
        Api::<StatefulSet>::namespaced(client.clone(), "mq")
            .get_opt("demo-broker-0")
            .await
            .ok()?
    })
    .await;
    let pod = sts.spec.expect("spec").template.spec.expect("pod spec");
    let env: BTreeMap<String, (String, String)> = pod.containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            let r = e.value_from?.secret_key_ref?;
            Some((e.name, (r.name, r.key)))
        })
        .collect();
    assert_eq!(
        env["TERN_AUTH_BOOTSTRAP_SECRET_KEY"],
        ("demo-tern-admin".to_owned(), "secretKey".to_owned())
    );

    // The broker, started as a pod would be: checks on, the Secret's user
    // as its bootstrap super user.
    let data = plane.dir().join("auth-broker-data");
    let mut tern = TernProcess::standalone_with(
        tern_binary(),
        &data,
        &[
            "--listen",
            endpoint.as_str(),
            "--auth-enabled",
            "--auth-bootstrap-access-key",
            admin_access.as_str(),
            "--auth-bootstrap-secret-key",
            admin_key.as_str(),
        ],
    )
    .unwrap_or_else(|e| panic!("starting tern standalone on {endpoint}: {e}"));

    // 2. The operator's admin calls are signed: Topics reach the broker.
    let topics: Api<Topic> = Api::namespaced(client.clone(), "mq");
    for name in ["orders", "payments"] {
        let t: Topic = serde_json::from_value(json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
            "metadata": { "name": name },
            "spec": { "clusterRef": { "name": "demo" }, "queues": 2 },
        }))
        .expect("a Topic");
        topics.create(&post, &t).await.expect("create a Topic");
    }

    // 3. TernUsers get their Secrets; a client with one can send where its
    // rules allow, and is refused elsewhere.
    let users: Api<TernUser> = Api::namespaced(client.clone(), "mq");
    users
        .create(&post, &user("orders-app", "orders"))
        .await
        .expect("create a TernUser");
    users
        .create(&post, &user("payments-app", "payments"))
        .await
        .expect("create a TernUser");
    let (secret, (access, key1)) = wait_secret(&secrets, "orders-app", |_| true).await;
    assert_eq!(access, "orders-app");
    assert!(key1.len() >= 32);
    let owner = &secret.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("TernUser", "orders-app")
    );
    let (_, (_, other_key)) = wait_secret(&secrets, "payments-app", |_| true).await;
    eventually("orders-app Ready, Synced", REACT, || async {
        let u = users.get("orders-app").await.ok()?;
        let s = u.status?;
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "True" && ready.reason == "Synced" && s.observed_generation == Some(1))
            .then_some(())
    })
    .await;
    eventually("orders-app sends to orders", REACT, || async {
        can_send(&endpoint, "orders-app", &key1, "orders")
            .await
            .then_some(())
    })
    .await;
    assert!(!can_send(&endpoint, "orders-app", &key1, "payments").await);
    eventually("payments-app sends to payments", REACT, || async {
        can_send(&endpoint, "payments-app", &other_key, "payments")
            .await
            .then_some(())
    })
    .await;
    assert!(
        !can_send(&endpoint, "payments-app", &other_key, "orders").await,
        "another user's credentials do not reach orders"
    );

    // 4. Rotation: a new key in the Secret, accepted; the old one refused.
    users
        .patch(
            "orders-app",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { "tern.dev/rotate-secret": "1" } } }),
            ),
        )
        .await
        .expect("annotate");
    let (_, (_, key2)) = wait_secret(&secrets, "orders-app", |(_, k)| *k != key1).await;
    eventually("the new key accepted", REACT, || async {
        can_send(&endpoint, "orders-app", &key2, "orders")
            .await
            .then_some(())
    })
    .await;
    assert!(
        !can_send(&endpoint, "orders-app", &key1, "orders").await,
        "the old key"
    );
    // No second rotation for the same value.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, (_, still)) = wait_secret(&secrets, "orders-app", |_| true).await;
    assert_eq!(still, key2);

    // 5. Deleting the TernUser removes the user from the broker, then the
    // garbage collector removes its Secret.
    users
        .delete("orders-app", &DeleteParams::default())
        .await
        .expect("delete the TernUser");
    eventually("the TernUser and its Secret gone", REACT, || async {
        let user_gone = users.get_opt("orders-app").await.ok()?.is_none();
        let secret_gone = secrets.get_opt("orders-app").await.ok()?.is_none();
        (user_gone && secret_gone).then_some(())
    })
    .await;
    assert!(!can_send(&endpoint, "orders-app", &key2, "orders").await);
    assert!(can_send(&endpoint, "payments-app", &other_key, "payments").await);
    operator.assert_running();
    assert!(
        tern.try_wait().expect("poll tern").is_none(),
        "tern standalone exited:\n{}",
        tern.log().unwrap_or_default()
    );
}
