//! The Topic and ConsumerGroup sync logic against a real broker: Tern's
//! broker serving its admin API on a loopback port, reached through the
//! operator's admin adapter (tern-client's `AdminClient`). No Kubernetes is
//! involved; the resources are built in memory as the API server would hand
//! them over.

#[path = "support/broker.rs"]
mod broker;

use broker::RunningBroker;
use tern_model::{MessageType, Permission};
use tern_operator::controller::admin::{AdminClients, BrokerAdmin};
use tern_operator::controller::managed::Managed;
use tern_operator::controller::plan::{Action, BrokerGroup, BrokerTopic};
use tern_operator::crd::{ConsumerGroup, Topic};

fn topic(queues: i32) -> Topic {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1",
        "kind": "Topic",
        "metadata": { "name": "orders", "namespace": "mq", "uid": "u-1" },
        "spec": { "clusterRef": { "name": "prod" }, "topicName": "Orders_v1", "queues": queues },
    }))
    .expect("a valid Topic")
}

fn group(max_retries: i32) -> ConsumerGroup {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1",
        "kind": "ConsumerGroup",
        "metadata": { "name": "billing", "namespace": "mq", "uid": "u-2" },
        "spec": { "clusterRef": { "name": "prod" }, "fifo": true, "retryPolicy": { "maxRetries": max_retries } },
    }))
    .expect("a valid ConsumerGroup")
}

#[tokio::test]
async fn a_topic_is_created_kept_in_step_and_deleted() {
    let broker = RunningBroker::start().await;
    let ep = broker.endpoint();
    let admin = AdminClients::default();

    let first = topic(8).sync(&admin, &ep).await.expect("sync");
    assert_eq!(first.action, Action::Create);
    let stored = admin
        .describe_topic(&ep, "Orders_v1")
        .await
        .expect("describe")
        .expect("the topic exists");
    assert_eq!(stored.queues, 8);
    assert_eq!(
        (stored.message_type, stored.permission),
        (MessageType::Normal, Permission::ReadWrite)
    );
    assert_eq!(
        topic(8).sync(&admin, &ep).await.expect("sync").action,
        Action::InSync
    );

    // Someone changes the topic inside the broker: the next sync reverts it.
    let drifted = BrokerTopic {
        permission: Permission::Read,
        ..stored.clone()
    };
    admin
        .update_topic(&ep, &drifted)
        .await
        .expect("a drifting update");
    let fixed = topic(8).sync(&admin, &ep).await.expect("sync");
    assert_eq!(fixed.action, Action::Update(vec!["permission"]));
    let stored = admin
        .describe_topic(&ep, "Orders_v1")
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(stored.permission, Permission::ReadWrite);

    // Growing works; shrinking is refused and the broker keeps its queues.
    assert_eq!(
        topic(16).sync(&admin, &ep).await.expect("sync").action,
        Action::Update(vec!["queues"])
    );
    let shrink = topic(4).sync(&admin, &ep).await.expect("sync");
    let why = shrink.not_supported.expect("the shrink is refused");
    assert!(why.contains("16") && why.contains('4'), "{why}");
    let stored = admin
        .describe_topic(&ep, "Orders_v1")
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(stored.queues, 16);

    topic(16).remove(&admin, &ep).await.expect("delete");
    assert_eq!(
        admin
            .describe_topic(&ep, "Orders_v1")
            .await
            .expect("describe"),
        None
    );
    topic(16)
        .remove(&admin, &ep)
        .await
        .expect("deleting a missing topic succeeds");
    broker.stop().await;
}

#[tokio::test]
async fn a_consumer_group_is_created_kept_in_step_and_deleted() {
    let broker = RunningBroker::start().await;
    let ep = broker.endpoint();
    let admin = AdminClients::default();

    assert_eq!(
        group(3).sync(&admin, &ep).await.expect("sync").action,
        Action::Create
    );
    let stored = admin
        .describe_group(&ep, "billing")
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(
        stored,
        BrokerGroup {
            name: "billing".to_owned(),
            fifo: true,
            max_retries: 3
        }
    );

    admin
        .update_group(
            &ep,
            &BrokerGroup {
                max_retries: 10,
                ..stored
            },
        )
        .await
        .expect("a drifting update");
    let fixed = group(3).sync(&admin, &ep).await.expect("sync");
    assert_eq!(fixed.action, Action::Update(vec!["retryPolicy.maxRetries"]));
    let stored = admin
        .describe_group(&ep, "billing")
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(stored.max_retries, 3);

    group(3).remove(&admin, &ep).await.expect("delete");
    assert_eq!(
        admin
            .describe_group(&ep, "billing")
            .await
            .expect("describe"),
        None
    );
    broker.stop().await;
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error_not_a_missing_topic() {
    // Bind and drop a listener to get a loopback port nobody serves.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("addr")
        .port();
    let admin = AdminClients::default();
    let err = topic(8)
        .sync(&admin, &format!("127.0.0.1:{port}"))
        .await
        .expect_err("nobody listens");
    assert_eq!(err.reason(), "BrokerAdmin", "{err}");
}

#[tokio::test]
async fn an_enforcing_broker_is_reached_through_an_https_endpoint() {
    // What the operator dials for a cluster in TLS mode `Enforcing`: TLS,
    // the broker's generated certificate accepted unchecked.
    let broker = RunningBroker::start_with_tls(tern_tls::TlsMode::Enforcing).await;
    let plain = broker.endpoint();
    let tls = tern_operator::controller::admin::endpoint(&plain, true);
    assert_eq!(tls, format!("https://{plain}"));
    let admin = AdminClients::default();

    assert_eq!(
        topic(4).sync(&admin, &tls).await.expect("sync").action,
        Action::Create
    );
    let stored = admin
        .describe_topic(&tls, "Orders_v1")
        .await
        .expect("describe")
        .expect("the topic exists");
    assert_eq!(stored.queues, 4);
    // Plaintext is refused by the enforcing port.
    let err = admin
        .describe_topic(&plain, "Orders_v1")
        .await
        .expect_err("plaintext is refused");
    assert_eq!(err.reason(), "BrokerAdmin", "{err}");
    broker.stop().await;
}
