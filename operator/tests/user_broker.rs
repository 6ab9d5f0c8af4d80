//! The `TernUser` sync against a real broker that checks requests: `tern
//! standalone --auth-enabled` with a bootstrap super user, as a
//! `BrokerCluster` with authentication `Acl` runs its brokers, reached
//! through the operator's admin adapter signing with those credentials.
//! No Kubernetes is involved; the resource is built in memory as the API
//! server would hand it over, and the secret key is what the Secret would
//! hold.
//!
//! Checked as a client pod would see it, with tern-client's
//! `MessagingClient` signing with the user's credentials: the user can
//! send to the topic its rule allows and is refused on another; its rules
//! follow the resource exactly (drift granted or revoked away); a rotated
//! key works and the old one is refused; a deleted user is refused.
//!
//! It needs the `tern` binary (`cargo build -p tern-cli`, or `TERN_BIN`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};

use tern_client::{
    AccessRule, Action as Acl, Credentials, Decision, MessagingClient, OutgoingMessage,
    ResourceKind, TopicName,
};
use tern_harness::TernProcess;
use tern_model::{MessageType, Permission};
use tern_operator::build::auth::{ADMIN_USER, generate_secret_key};
use tern_operator::controller::admin::{AdminClients, BrokerAdmin};
use tern_operator::controller::plan::{Action, BrokerTopic};
use tern_operator::controller::user::{remove_user, sync_user};
use tern_operator::crd::TernUser;

/// The `tern` binary: `TERN_BIN`, else the one beside `tern-operator`,
/// else what `tern_harness::tern_bin` finds.
fn tern_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TERN_BIN") {
        return PathBuf::from(bin);
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_tern-operator")).with_file_name("tern");
    if beside.is_file() {
        return beside;
    }
    tern_harness::tern_bin().expect("a tern binary: run `cargo build -p tern-cli` or set TERN_BIN")
}

fn user(acls: serde_json::Value) -> TernUser {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
        "metadata": { "name": "orders-app", "namespace": "mq", "uid": "u-1" },
        "spec": { "clusterRef": { "name": "prod" }, "acls": acls },
    }))
    .unwrap()
}

fn topic(name: &str) -> BrokerTopic {
    BrokerTopic {
        name: name.to_owned(),
        queues: 2,
        message_type: MessageType::Normal,
        permission: Permission::ReadWrite,
    }
}

/// Whether `user` with `secret_key` can send one message to `topic`.
async fn can_send(endpoint: &str, user: &str, secret_key: &str, topic: &str) -> bool {
    let client = MessagingClient::connect(endpoint)
        .await
        .unwrap()
        .with_credentials(Some(Credentials::new(user, secret_key).unwrap()));
    let message = OutgoingMessage {
        body: b"hello".to_vec(),
        ..OutgoingMessage::default()
    };
    match client
        .send(&TopicName::new(topic).unwrap(), &[message])
        .await
    {
        Ok(outcomes) => outcomes.iter().all(Result::is_ok),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_is_created_kept_to_its_rules_rotated_and_deleted_in_a_checking_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = tern_harness::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let admin_key = generate_secret_key().unwrap();
    let _tern = TernProcess::standalone_with(
        tern_binary(),
        dir.path().join("data"),
        &[
            "--listen",
            &endpoint,
            "--auth-enabled",
            "--auth-bootstrap-access-key",
            ADMIN_USER,
            "--auth-bootstrap-secret-key",
            &admin_key,
        ],
    )
    .unwrap();
    let ep = endpoint.as_str();
    let unsigned = AdminClients::default();
    let admin = unsigned.authenticated(Some(Credentials::new(ADMIN_USER, &admin_key).unwrap()));

    // Unsigned admin calls are refused; the admin credentials work.
    let refused = unsigned.describe_user(ep, "orders-app").await;
    assert!(refused.is_err(), "an unsigned call: {refused:?}");
    assert_eq!(admin.describe_user(ep, "orders-app").await.unwrap(), None);
    for t in ["orders", "payments"] {
        admin.create_topic(ep, &topic(t)).await.unwrap();
    }

    // 1. Created with its rule and the Secret's key: it may send to
    // `orders`, not to `payments`.
    let u = user(serde_json::json!([
        { "resource": { "type": "Topic", "name": "orders" }, "actions": ["Pub"] },
    ]));
    let want = u.wanted();
    let key1 = generate_secret_key().unwrap();
    let p = sync_user(&admin, ep, &want, &key1, true).await.unwrap();
    assert_eq!(p.action(), Action::Create);
    let stored = admin
        .describe_user(ep, "orders-app")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.super_user);
    assert_eq!(stored.rules, want.rules);
    assert!(
        can_send(ep, "orders-app", &key1, "orders").await,
        "allowed topic"
    );
    assert!(
        !can_send(ep, "orders-app", &key1, "payments").await,
        "a topic no rule allows"
    );
    assert!(
        !can_send(ep, "orders-app", "not-the-key", "orders").await,
        "a wrong secret key"
    );
    // In step: nothing to do.
    let p = sync_user(&admin, ep, &want, &key1, false).await.unwrap();
    assert_eq!(p.action(), Action::InSync);

    // 2. A rule added inside the broker is revoked; the spec's grows.
    let extra = AccessRule {
        resource: ResourceKind::Topic,
        pattern: "*".to_owned(),
        actions: vec![Acl::Pub],
        decision: Decision::Allow,
        sources: Vec::new(),
    };
    admin.grant_access(ep, "orders-app", &extra).await.unwrap();
    assert!(can_send(ep, "orders-app", &key1, "payments").await);
    let p = sync_user(&admin, ep, &want, &key1, false).await.unwrap();
    assert_eq!(p.action(), Action::Update(vec!["acls"]));
    assert_eq!(p.acls.revoke, [extra]);
    assert_eq!(
        admin
            .describe_user(ep, "orders-app")
            .await
            .unwrap()
            .unwrap()
            .rules,
        want.rules
    );
    assert!(!can_send(ep, "orders-app", &key1, "payments").await);
    // The spec now allows every topic but denies `payments`: deny wins.
    let u = user(serde_json::json!([
        { "resource": { "type": "Topic", "name": "*" }, "actions": ["Pub", "Sub"] },
        { "resource": { "type": "Topic", "name": "payments" }, "actions": ["Pub"], "decision": "Deny" },
    ]));
    let want = u.wanted();
    let p = sync_user(&admin, ep, &want, &key1, false).await.unwrap();
    assert_eq!(p.acls.grant, want.rules);
    assert_eq!(p.acls.revoke.len(), 1, "the `orders` rule goes");
    let mut have = admin
        .describe_user(ep, "orders-app")
        .await
        .unwrap()
        .unwrap()
        .rules;
    have.sort_by_key(|r| r.pattern.clone());
    assert_eq!(have, want.rules);
    assert!(can_send(ep, "orders-app", &key1, "orders").await);
    assert!(!can_send(ep, "orders-app", &key1, "payments").await);

    // 3. Rotation: the new key works, the old one is refused.
    let key2 = generate_secret_key().unwrap();
    let p = sync_user(&admin, ep, &want, &key2, true).await.unwrap();
    assert_eq!(p.action(), Action::Update(vec!["secretKey"]));
    assert!(can_send(ep, "orders-app", &key2, "orders").await, "new key");
    assert!(
        !can_send(ep, "orders-app", &key1, "orders").await,
        "old key refused"
    );

    // 4. Deleted: refused, and deleting again is fine.
    remove_user(&admin, ep, "orders-app").await.unwrap();
    assert_eq!(admin.describe_user(ep, "orders-app").await.unwrap(), None);
    assert!(!can_send(ep, "orders-app", &key2, "orders").await);
    remove_user(&admin, ep, "orders-app").await.unwrap();

    // A super user needs no rule.
    let su: TernUser = serde_json::from_value(serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
        "metadata": { "name": "ops", "namespace": "mq", "uid": "u-2" },
        "spec": { "clusterRef": { "name": "prod" }, "superUser": true },
    }))
    .unwrap();
    let key3 = generate_secret_key().unwrap();
    let p = sync_user(&admin, ep, &su.wanted(), &key3, true)
        .await
        .unwrap();
    assert_eq!(p.action(), Action::Create);
    assert!(can_send(ep, "ops", &key3, "payments").await);
}
