//! The gRPC services over real TCP: the server in-process on 127.0.0.1:0,
//! the generated tonic clients on the other side.
#![allow(clippy::unwrap_used)]

mod grpc_support;

use std::collections::HashSet;
use std::time::Duration;

use grpc_support::*;
use tern_protocol::admin::{ClusterStatusRequest, DescribeTopicRequest, ListTopicsRequest};
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::settings::PubSub;
use tern_protocol::v2::telemetry_command::Command;
use tern_protocol::v2::*;
use tonic::Request;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routes_settings_send_receive_ack() {
    let server = Server::start().await;
    server.create_topic("orders", 4).await;
    let mut c = server.client().await;

    // Routes: one queue per queue id, the dialled endpoints echoed.
    let dialled = Endpoints {
        scheme: AddressScheme::DomainName as i32,
        addresses: vec![Address {
            host: "tern.example".into(),
            port: 8081,
        }],
    };
    let route = c
        .query_route(req(QueryRouteRequest {
            topic: res("orders"),
            endpoints: Some(dialled.clone()),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(route.status.as_ref()), Code::Ok as i32);
    assert_eq!(route.message_queues.len(), 4);
    for (i, q) in route.message_queues.iter().enumerate() {
        assert_eq!(q.id, i32::try_from(i).unwrap());
        assert_eq!(q.permission, Permission::ReadWrite as i32);
        let b = q.broker.as_ref().unwrap();
        assert_eq!(b.id, 0);
        assert_eq!(b.endpoints.as_ref(), Some(&dialled));
        assert_eq!(q.accept_message_types, vec![MessageType::Normal as i32]);
    }
    let missing = c
        .query_route(req(QueryRouteRequest {
            topic: res("nope"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(missing.status.as_ref()), Code::TopicNotFound as i32);

    // Telemetry: settings answered at once; the stream stays open.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(Command::Settings(Settings {
            client_type: Some(ClientType::SimpleConsumer as i32),
            request_timeout: ms(3000),
            pub_sub: Some(PubSub::Subscription(Subscription {
                group: res("g1"),
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut telemetry = c
        .telemetry(req(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    let reply = tokio::time::timeout(Duration::from_secs(5), telemetry.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(code(reply.status.as_ref()), Code::Ok as i32);
    let Some(Command::Settings(s)) = reply.command else {
        panic!("settings expected: {reply:?}");
    };
    assert_eq!(s.backoff_policy.unwrap().max_attempts, 17);
    assert_eq!(s.request_timeout, ms(3000));
    let Some(PubSub::Subscription(sub)) = s.pub_sub else {
        panic!("subscription expected");
    };
    assert_eq!(sub.receive_batch_size, Some(32));
    assert_eq!(sub.fifo, Some(false));
    assert!(!s.metric.unwrap().on);

    // Send N messages over the four queues, in batches of five.
    const N: usize = 40;
    for batch in 0..N / 5 {
        let messages = (0..5)
            .map(|i| {
                let n = batch * 5 + i;
                msg(
                    "orders",
                    i32::try_from(n % 4).unwrap(),
                    &format!("ID{n}"),
                    format!("body {n}").as_bytes(),
                )
            })
            .collect();
        let r = c
            .send_message(req(SendMessageRequest { messages }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{r:?}");
        assert_eq!(r.entries.len(), 5);
        for (i, e) in r.entries.iter().enumerate() {
            assert_eq!(code(e.status.as_ref()), Code::Ok as i32);
            assert_eq!(e.message_id, format!("ID{}", batch * 5 + i));
        }
    }

    // Receive and ack all of them, each once.
    let mut seen = HashSet::new();
    while seen.len() < N {
        let (status, got) = receive(&mut c, "orders", 30_000, 2_000).await;
        assert_eq!(
            status,
            Code::Ok as i32,
            "only {} of {N} received",
            seen.len()
        );
        let mut handles = Vec::new();
        for m in &got {
            let sp = m.system_properties.as_ref().unwrap();
            assert!(
                seen.insert(sp.message_id.clone()),
                "duplicate {}",
                sp.message_id
            );
            assert_eq!(sp.delivery_attempt, Some(1));
            assert_eq!(sp.body_digest.as_ref().unwrap().checksum.len(), 32);
            assert_eq!(sp.tag.as_deref(), Some("tagA"));
            assert!(sp.queue_offset.is_some() && sp.born_timestamp.is_some());
            handles.push(handle(m));
        }
        assert!(
            ack(&mut c, "orders", &handles)
                .await
                .iter()
                .all(|&s| s == Code::Ok as i32)
        );
    }
    let (status, got) = receive(&mut c, "orders", 30_000, 300).await;
    assert_eq!(status, Code::MessageNotFound as i32);
    assert!(got.is_empty());

    // Shutdown is graceful even with the telemetry stream still open.
    drop(tx);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivery_and_stale_handles() {
    let server = Server::start().await;
    server.create_topic("jobs", 1).await;
    let mut c = server.client().await;
    let r = c
        .send_message(req(SendMessageRequest {
            messages: vec![msg("jobs", 0, "J1", b"work")],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);

    let (_, first) = receive(&mut c, "jobs", 1_000, 2_000).await;
    assert_eq!(first.len(), 1);
    // Not acked: back after the invisibility, with attempt 2.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, again) = receive(&mut c, "jobs", 30_000, 3_000).await;
    assert_eq!(status, Code::Ok as i32);
    let sp = again[0].system_properties.as_ref().unwrap();
    assert_eq!(sp.message_id, "J1");
    assert_eq!(sp.delivery_attempt, Some(2));

    // The first handle is stale now.
    assert_eq!(
        ack(&mut c, "jobs", &[handle(&first[0])]).await,
        vec![Code::InvalidReceiptHandle as i32]
    );
    // A change of invisibility returns a new handle; the old one goes stale.
    let changed = c
        .change_invisible_duration(req(ChangeInvisibleDurationRequest {
            group: res("g1"),
            topic: res("jobs"),
            receipt_handle: handle(&again[0]),
            invisible_duration: ms(30_000),
            message_id: "J1".into(),
            lite_topic: None,
            suspend: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(changed.status.as_ref()), Code::Ok as i32);
    assert_ne!(changed.receipt_handle, handle(&again[0]));
    assert_eq!(
        ack(&mut c, "jobs", &[handle(&again[0])]).await,
        vec![Code::InvalidReceiptHandle as i32]
    );
    assert_eq!(
        ack(&mut c, "jobs", &[changed.receipt_handle]).await,
        vec![Code::Ok as i32]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_have_the_right_codes() {
    let server = Server::start().await;
    server.create_topic("t", 2).await;
    let mut c = server.client().await;
    let send = |m: Message| SendMessageRequest { messages: vec![m] };

    let r = c
        .send_message(req(send(msg("t", 0, "E", b""))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::MessageBodyEmpty as i32);

    // The Rust SDK does not know MESSAGE_BODY_EMPTY: it gets BAD_REQUEST.
    let mut rust = req(send(msg("t", 0, "E", b"")));
    rust.metadata_mut()
        .insert("x-mq-language", "RUST".parse().unwrap());
    let r = c.send_message(rust).await.unwrap().into_inner();
    assert_eq!(code(r.status.as_ref()), Code::BadRequest as i32);

    let big = vec![7u8; MAX_BODY + 1];
    let r = c
        .send_message(req(send(msg("t", 0, "B", &big))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::MessageBodyTooLarge as i32);

    let r = c
        .send_message(req(send(msg("absent", 0, "A", b"x"))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::TopicNotFound as i32);

    // Mixed outcomes in one request.
    let r = c
        .send_message(req(SendMessageRequest {
            messages: vec![msg("t", 1, "OK1", b"x"), msg("t", 0, "E", b"")],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::MultipleResults as i32);
    assert_eq!(code(r.entries[0].status.as_ref()), Code::Ok as i32);

    // No client id.
    let r = c
        .query_route(Request::new(QueryRouteRequest {
            topic: res("t"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::ClientIdRequired as i32);

    // A request without its queue is refused in the body, not failed.
    let r = c
        .get_offset(req(GetOffsetRequest {
            group: res("g1"),
            message_queue: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::BadRequest as i32);

    // An EndTransaction without a resolution: answered, not failed.
    let r = c
        .end_transaction(req(EndTransactionRequest {
            topic: res("t"),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::BadRequest as i32);

    // A malformed SQL filter is refused clearly.
    let mut sql = ReceiveMessageRequest {
        group: res("g1"),
        message_queue: Some(MessageQueue {
            topic: res("t"),
            id: -1,
            ..Default::default()
        }),
        filter_expression: Some(FilterExpression {
            r#type: FilterType::Sql as i32,
            expression: "a >".into(),
        }),
        batch_size: 1,
        ..Default::default()
    };
    sql.invisible_duration = ms(10_000);
    let mut s = c.receive_message(req(sql)).await.unwrap().into_inner();
    let first = s.message().await.unwrap().unwrap();
    assert!(
        matches!(first.content, Some(Content::Status(ref st)) if st.code == Code::IllegalFilterExpression as i32)
    );
    assert!(s.message().await.unwrap().is_none());

    // Assignments: one queue id -1 for a non-FIFO group.
    let a = c
        .query_assignment(req(QueryAssignmentRequest {
            topic: res("t"),
            group: res("g1"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(a.status.as_ref()), Code::Ok as i32);
    assert_eq!(a.assignments.len(), 1);
    assert_eq!(a.assignments[0].message_queue.as_ref().unwrap().id, -1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forward_to_dead_letter_queue_and_admin() {
    let server = Server::start().await;
    server.create_topic("mail", 2).await;
    let mut c = server.client().await;
    let r = c
        .send_message(req(SendMessageRequest {
            messages: vec![msg("mail", 1, "M1", b"poison")],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    let (_, got) = receive(&mut c, "mail", 30_000, 2_000).await;
    assert_eq!(got.len(), 1);
    let fwd = c
        .forward_message_to_dead_letter_queue(req(ForwardMessageToDeadLetterQueueRequest {
            group: res("g1"),
            topic: res("mail"),
            receipt_handle: handle(&got[0]),
            message_id: "M1".into(),
            delivery_attempt: 1,
            max_delivery_attempts: 17,
            lite_topic: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(fwd.status.as_ref()), Code::Ok as i32);
    // Finished for the group: the handle is stale and nothing comes back.
    assert_eq!(
        ack(&mut c, "mail", &[handle(&got[0])]).await,
        vec![Code::InvalidReceiptHandle as i32]
    );

    let mut admin = server.admin().await;
    let topics = admin
        .list_topics(ListTopicsRequest {})
        .await
        .unwrap()
        .into_inner()
        .topics;
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"mail") && names.contains(&"%DLQ%g1"),
        "{names:?}"
    );
    let d = admin
        .describe_topic(DescribeTopicRequest {
            name: "mail".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.queues.len(), 2);
    // One message stored, in whichever queue the broker chose.
    assert_eq!(d.queues.iter().map(|q| q.max_offset).sum::<u64>(), 1);
    let missing = admin
        .describe_topic(DescribeTopicRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let status = admin
        .cluster_status(ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.brokers.len(), 1);
    let b = &status.brokers[0];
    assert_eq!(b.name, "tern-0");
    assert_eq!(b.endpoints, vec![server.addr.to_string()]);
    let usage = b.store.as_ref().unwrap().disk_usage;
    assert!((0.0..=1.0).contains(&usage), "{usage}");
    server.stop().await;
}

/// The broker chooses the queue of each send request in turn, whatever
/// `queue_id` the client left (Go and Python leave it 0), so load spreads
/// over every queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_spread_over_all_queues() {
    let server = Server::start().await;
    server.create_topic("spread", 4).await;
    let mut c = server.client().await;
    for i in 0..8 {
        let r = c
            .send_message(req(SendMessageRequest {
                messages: vec![msg("spread", 0, &format!("S{i}"), b"x")],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    }
    let per_queue = server.wait_readable("spread", 8).await;
    assert_eq!(per_queue, vec![2, 2, 2, 2]);
}
