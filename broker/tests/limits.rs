//! Bounded registry and what deletion frees, over real gRPC on an
//! in-process broker: `max_groups` stops consumers from making groups
//! without end (ReceiveMessage, PullMessage and UpdateOffset are refused
//! with FORBIDDEN naming the limit, the admin API with
//! RESOURCE_EXHAUSTED) while existing groups keep being served;
//! `max_topics` bounds topic creation; deleting topics and groups drops
//! their metric series.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[allow(
    dead_code,
    reason = "shared test support; this crate needs only part of it"
)]
mod grpc_support;

use std::time::Duration;

use grpc_support::*;
use tern_protocol::admin::{
    CreateGroupRequest, CreateTopicRequest, DeleteGroupRequest, DeleteTopicRequest, Group,
    ListGroupsRequest, Topic,
};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

type Client = MessagingServiceClient<Channel>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The broker's `/metrics` page (waiting for the port to open).
async fn metrics(port: u16) -> String {
    for _ in 0..100 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut raw = String::new();
            s.read_to_string(&mut raw).await.unwrap();
            return raw.split_once("\r\n\r\n").unwrap().1.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("metrics port never opened");
}

/// Sample lines of `page` whose labels name `label=`.
fn series(page: &str, label: &str) -> usize {
    page.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&format!("{label}=\"")))
        .count()
}

fn queue(topic: &str, id: i32) -> Option<MessageQueue> {
    Some(MessageQueue {
        topic: res(topic),
        id,
        ..Default::default()
    })
}

/// One receive as `group`: the status (code and message) and how many
/// messages came.
async fn receive_as(c: &mut Client, group: &str, topic: &str) -> (i32, String, usize) {
    let r = ReceiveMessageRequest {
        group: res(group),
        message_queue: queue(topic, -1),
        filter_expression: Some(FilterExpression {
            r#type: FilterType::Tag as i32,
            expression: "*".into(),
        }),
        batch_size: 16,
        invisible_duration: ms(30_000),
        auto_renew: false,
        long_polling_timeout: ms(5_000),
        attempt_id: None,
    };
    let mut stream = c.receive_message(req(r)).await.unwrap().into_inner();
    let (mut status, mut message, mut n) = (0, String::new(), 0);
    while let Some(item) = stream.message().await.unwrap() {
        match item.content.unwrap() {
            Content::Status(s) => (status, message) = (s.code, s.message),
            Content::Message(_) => n += 1,
            Content::DeliveryTimestamp(_) => {}
        }
    }
    (status, message, n)
}

async fn send_one(c: &mut Client, topic: &str, id: &str) {
    let r = c
        .send_message(req(SendMessageRequest {
            messages: vec![msg(topic, 0, id, b"body")],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{r:?}");
}

async fn create_topic(server: &Server, name: &str) -> Result<(), tonic::Status> {
    server
        .admin()
        .await
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: name.into(),
                queue_count: 1,
                ..Default::default()
            }),
        })
        .await
        .map(|_| ())
}

const MAX_GROUPS: usize = 20;

/// Consumers naming 500 new groups: the first ones up to the limit are
/// made, every later one is refused at once (receive, pull, UpdateOffset)
/// and makes nothing, neither a group nor consumption state nor a metric
/// series; the groups that exist go on receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_new_groups_stops_at_max_groups() {
    let port = free_port();
    let server = Server::start_with(|cfg| {
        cfg.metrics_listen = Some(format!("127.0.0.1:{port}"));
        cfg.limits.max_groups = MAX_GROUPS;
        cfg.limits.max_topics = 3;
    })
    .await;
    create_topic(&server, "t").await.unwrap();
    let mut c = server.client().await;
    send_one(&mut c, "t", "first").await;
    assert_eq!(receive_as(&mut c, "keep", "t").await.2, 1);

    let mut made = 1;
    for i in 0..500 {
        let group = format!("flood-{i}");
        let (status, message, n) = receive_as(&mut c, &group, "t").await;
        if made < MAX_GROUPS {
            assert_eq!((status, n), (Code::Ok as i32, 1), "{group}: {message}");
            made += 1;
        } else {
            assert_eq!(status, Code::Forbidden as i32, "{group}: {message}");
            assert!(message.contains("max_groups"), "{message}");
            assert_eq!(n, 0);
        }
    }
    // Pull and UpdateOffset make no group past the limit either.
    let pull = PullMessageRequest {
        group: res("puller"),
        message_queue: queue("t", 0),
        offset: 0,
        batch_size: 1,
        filter_expression: None,
        long_polling_timeout: ms(5_000),
    };
    let mut stream = c.pull_message(req(pull)).await.unwrap().into_inner();
    let mut status = None;
    while let Some(item) = stream.message().await.unwrap() {
        if let Some(pull_message_response::Content::Status(s)) = item.content {
            status = Some(s.code);
        }
    }
    assert_eq!(status, Some(Code::Forbidden as i32));
    let r = c
        .update_offset(req(UpdateOffsetRequest {
            group: res("offsets"),
            message_queue: queue("t", 0),
            offset: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Forbidden as i32);
    // The admin API says RESOURCE_EXHAUSTED, naming the limit.
    let mut admin = server.admin().await;
    let e = admin
        .create_group(CreateGroupRequest {
            group: Some(Group {
                name: "admin-made".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("max_groups"), "{e:?}");
    let groups = admin
        .list_groups(ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(groups.len(), MAX_GROUPS);

    // Memory did not follow the flood: one lag series and two delivery
    // series per group that was made, none for the refused ones.
    let page = metrics(port).await;
    assert!(!page.contains("flood-499") && !page.contains("puller"));
    assert_eq!(series(&page, "group"), 3 * MAX_GROUPS, "{page}");

    // Existing groups are served as before.
    send_one(&mut c, "t", "second").await;
    server.wait_readable("t", 2).await;
    assert_eq!(receive_as(&mut c, "keep", "t").await.2, 1);
    assert_eq!(receive_as(&mut c, "flood-0", "t").await.2, 1);
    // A deleted group makes room for one more.
    admin
        .delete_group(DeleteGroupRequest {
            name: "flood-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(receive_as(&mut c, "late", "t").await.2, 2);
    assert_eq!(
        receive_as(&mut c, "later", "t").await.0,
        Code::Forbidden as i32
    );

    // Topics: three at most.
    create_topic(&server, "u").await.unwrap();
    create_topic(&server, "v").await.unwrap();
    let e = create_topic(&server, "w").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("max_topics"), "{e:?}");
    server.stop().await;
}

/// 300 topics made, sent to, received from and deleted, and 300 groups
/// made by a receive and deleted: the metric series with a topic or
/// group label are what they were before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_topics_and_groups_leave_no_metric_series() {
    let port = free_port();
    let server = Server::start_with(|cfg| {
        cfg.metrics_listen = Some(format!("127.0.0.1:{port}"));
    })
    .await;
    create_topic(&server, "t").await.unwrap();
    let mut c = server.client().await;
    send_one(&mut c, "t", "first").await;
    assert_eq!(receive_as(&mut c, "keep", "t").await.2, 1);
    let before = metrics(port).await;
    let labelled = series(&before, "topic");
    assert_eq!(labelled, 5, "{before}");

    let mut admin = server.admin().await;
    for i in 0..300 {
        let topic = format!("d{i}");
        create_topic(&server, &topic).await.unwrap();
        send_one(&mut c, &topic, &topic).await;
        server.wait_readable(&topic, 1).await;
        assert_eq!(receive_as(&mut c, "keep", &topic).await.2, 1);
    }
    assert!(series(&metrics(port).await, "topic") >= labelled + 300 * 5);
    for i in 0..300 {
        admin
            .delete_topic(DeleteTopicRequest {
                name: format!("d{i}"),
            })
            .await
            .unwrap();
    }
    assert_eq!(series(&metrics(port).await, "topic"), labelled);

    for i in 0..300 {
        assert_eq!(receive_as(&mut c, &format!("g{i}"), "t").await.2, 1);
    }
    assert!(series(&metrics(port).await, "topic") >= labelled + 300 * 3);
    for i in 0..300 {
        admin
            .delete_group(DeleteGroupRequest {
                name: format!("g{i}"),
            })
            .await
            .unwrap();
    }
    let after = metrics(port).await;
    assert_eq!(series(&after, "topic"), labelled, "{after}");
    server.stop().await;
}
