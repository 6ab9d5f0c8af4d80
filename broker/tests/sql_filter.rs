//! SQL92 filter expressions over gRPC: ReceiveMessage and PullMessage
//! deliver only the messages whose properties match, malformed
//! expressions are answered with ILLEGAL_FILTER_EXPRESSION naming the
//! problem, and a subscription with an SQL filter passes the Telemetry
//! settings handshake.
#![allow(clippy::unwrap_used)]

mod grpc_support;

use std::collections::BTreeSet;
use std::time::Duration;

use grpc_support::*;
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::pull_message_response::Content as Pull;
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::settings::PubSub;
use tern_protocol::v2::telemetry_command::Command;
use tern_protocol::v2::*;
use tonic::Request;
use tonic::transport::Channel;

type Client = MessagingServiceClient<Channel>;

/// Messages 0..12: `a` = n (none for 11), `region` eu for even n and us
/// for odd, tag `tagB` when n is a multiple of 3 and `tagA` otherwise.
async fn send_fixture(c: &mut Client, topic: &str) {
    let messages = (0..12)
        .map(|n: u32| {
            let mut m = msg(topic, 0, &format!("M{n}"), format!("body {n}").as_bytes());
            if n != 11 {
                m.user_properties.insert("a".into(), n.to_string());
            }
            let region = if n.is_multiple_of(2) { "eu" } else { "us" };
            m.user_properties.insert("region".into(), region.into());
            let tag = if n.is_multiple_of(3) { "tagB" } else { "tagA" };
            m.system_properties.as_mut().unwrap().tag = Some(tag.into());
            m
        })
        .collect();
    let r = c
        .send_message(req(SendMessageRequest { messages }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{r:?}");
}

fn sql(expr: &str) -> Option<FilterExpression> {
    Some(FilterExpression {
        r#type: FilterType::Sql as i32,
        expression: expr.into(),
    })
}

fn ids(messages: &[Message]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m.system_properties.as_ref().unwrap().message_id.clone())
        .collect()
}

fn want(ns: &[u32]) -> BTreeSet<String> {
    ns.iter().map(|n| format!("M{n}")).collect()
}

/// One receive for `group` with `filter` (as a client in `language`):
/// the status, its message, and the messages.
async fn receive(
    c: &mut Client,
    group: &str,
    topic: &str,
    filter: Option<FilterExpression>,
    language: &str,
) -> (Status, Vec<Message>) {
    let r = ReceiveMessageRequest {
        group: res(group),
        message_queue: Some(MessageQueue {
            topic: res(topic),
            id: -1,
            ..Default::default()
        }),
        filter_expression: filter,
        batch_size: 32,
        invisible_duration: ms(30_000),
        auto_renew: false,
        long_polling_timeout: ms(5_000),
        attempt_id: None,
    };
    let mut r = req(r);
    r.metadata_mut()
        .insert("x-mq-language", language.parse().unwrap());
    let mut stream = c.receive_message(r).await.unwrap().into_inner();
    let mut status = None;
    let mut messages = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        match item.content.unwrap() {
            Content::Status(s) => status = Some(s),
            Content::Message(m) => messages.push(m),
            Content::DeliveryTimestamp(_) => {}
        }
    }
    (status.unwrap(), messages)
}

/// Receives everything `filter` lets `group` have, then checks that a
/// further receive finds nothing.
async fn receive_all(mut c: Client, group: &str, topic: &str, filter: &str) -> Vec<Message> {
    let (s, got) = receive(&mut c, group, topic, sql(filter), "JAVA").await;
    assert_eq!(s.code, Code::Ok as i32, "{filter}: {s:?}");
    let (s, more) = receive(&mut c, group, topic, sql(filter), "JAVA").await;
    assert_eq!(s.code, Code::MessageNotFound as i32, "{filter}: {more:?}");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receive_delivers_only_matching_messages() {
    let server = Server::start().await;
    server.create_topic("sql", 1).await;
    let mut c = server.client().await;
    send_fixture(&mut c, "sql").await;

    // Each group sees its own selection.
    let (eu, tags, odd) = tokio::join!(
        receive_all(c.clone(), "g1", "sql", "a > 5 AND region = 'eu'"),
        receive_all(c.clone(), "g-tags", "sql", "TAGS = 'tagB' or a is null"),
        receive_all(
            c.clone(),
            "g-odd",
            "sql",
            "NOT (region IN ('eu')) AND a BETWEEN 3 AND 7.5"
        ),
    );
    assert_eq!(ids(&eu), want(&[6, 8, 10]));
    assert_eq!(ids(&tags), want(&[0, 3, 6, 9, 11]));
    assert_eq!(ids(&odd), want(&[3, 5, 7]));

    // The delivered messages take acks; the ones the filter skipped count
    // as done for the group, so nothing is left for it even without one.
    let handles: Vec<String> = eu.iter().map(handle).collect();
    assert_eq!(ack(&mut c, "sql", &handles).await, [Code::Ok as i32; 3]);
    let (status, rest) = grpc_support::receive(&mut c, "sql", 30_000, 5_000).await;
    assert_eq!(status, Code::MessageNotFound as i32, "{rest:?}");

    // A tag filter still works beside them.
    let (s, got) = receive(
        &mut c,
        "g-tag",
        "sql",
        Some(FilterExpression {
            r#type: FilterType::Tag as i32,
            expression: "tagB".into(),
        }),
        "JAVA",
    )
    .await;
    assert_eq!(s.code, Code::Ok as i32);
    assert_eq!(ids(&got), want(&[0, 3, 6, 9]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_sql_is_refused_clearly() {
    let server = Server::start().await;
    server.create_topic("sql", 1).await;
    let mut c = server.client().await;
    send_fixture(&mut c, "sql").await;

    for language in ["JAVA", "RUST"] {
        let (s, got) = receive(&mut c, "g-bad", "sql", sql("a > 5 AND"), language).await;
        assert_eq!(s.code, Code::IllegalFilterExpression as i32, "{s:?}");
        assert!(got.is_empty());
        assert!(
            s.message.contains("a > 5 AND") && s.message.contains("column 10"),
            "{}",
            s.message
        );
    }
    let (s, _) = receive(&mut c, "g-bad", "sql", sql("region > 'eu'"), "JAVA").await;
    assert_eq!(s.code, Code::IllegalFilterExpression as i32);
    assert!(
        s.message.contains("'>' compares numbers only"),
        "{}",
        s.message
    );
    let (s, _) = receive(&mut c, "g-bad", "sql", sql("  "), "JAVA").await;
    assert_eq!(s.code, Code::IllegalFilterExpression as i32);
    assert!(s.message.contains("empty"), "{}", s.message);

    // The refusal consumed nothing: the same group then receives with a
    // good expression.
    let (s, got) = receive(&mut c, "g-bad", "sql", sql("a = 1 OR a = 2"), "JAVA").await;
    assert_eq!(s.code, Code::Ok as i32);
    assert_eq!(ids(&got), want(&[1, 2]));
    server.stop().await;
}

async fn pull(c: &mut Client, filter: &str, offset: i64) -> (i32, Vec<Message>, Option<i64>) {
    let r = PullMessageRequest {
        group: res("puller"),
        message_queue: Some(MessageQueue {
            topic: res("sql"),
            id: 0,
            ..Default::default()
        }),
        offset,
        batch_size: 32,
        filter_expression: sql(filter),
        long_polling_timeout: ms(0),
    };
    let mut stream = c.pull_message(req(r)).await.unwrap().into_inner();
    let (mut status, mut messages, mut next) = (0, Vec::new(), None);
    while let Some(item) = stream.message().await.unwrap() {
        match item.content.unwrap() {
            Pull::Status(s) => status = s.code,
            Pull::Message(m) => messages.push(m),
            Pull::NextOffset(n) => next = Some(n),
        }
    }
    (status, messages, next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_filters_by_sql() {
    let server = Server::start().await;
    server.create_topic("sql", 1).await;
    let mut c = server.client().await;
    send_fixture(&mut c, "sql").await;
    server.wait_readable("sql", 12).await;

    let (s, got, next) = pull(&mut c, "a >= 4 AND a < 10 AND region <> 'us'", 0).await;
    assert_eq!(s, Code::Ok as i32);
    assert_eq!(ids(&got), want(&[4, 6, 8]));
    // The scan went on to the end of the queue: nothing after 8 matched.
    assert_eq!(next, Some(12));
    let (s, got, next) = pull(&mut c, "a IS NULL", 0).await;
    assert_eq!(s, Code::Ok as i32);
    assert_eq!((ids(&got), next), (want(&[11]), Some(12)));

    let (s, got, _) = pull(&mut c, "a BETWEEN 1", 0).await;
    assert_eq!(s, Code::IllegalFilterExpression as i32);
    assert!(got.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_accept_an_sql_subscription() {
    let server = Server::start().await;
    server.create_topic("sql", 1).await;
    let mut c = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(Command::Settings(Settings {
            client_type: Some(ClientType::SimpleConsumer as i32),
            request_timeout: ms(3000),
            pub_sub: Some(PubSub::Subscription(Subscription {
                group: res("g-eu"),
                subscriptions: vec![SubscriptionEntry {
                    topic: res("sql"),
                    expression: sql("a > 5 AND region = 'eu'"),
                }],
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut telemetry = c
        .telemetry(Request::from_parts(
            req(()).metadata().clone(),
            Default::default(),
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .unwrap()
        .into_inner();
    let reply = tokio::time::timeout(Duration::from_secs(5), telemetry.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(code(reply.status.as_ref()), Code::Ok as i32, "{reply:?}");
    let Some(Command::Settings(s)) = reply.command else {
        panic!("settings expected: {reply:?}");
    };
    let Some(PubSub::Subscription(sub)) = s.pub_sub else {
        panic!("subscription expected");
    };
    assert_eq!(sub.subscriptions.len(), 1);
    assert_eq!(
        sub.subscriptions[0].expression,
        sql("a > 5 AND region = 'eu'")
    );
    drop(tx);
    server.stop().await;
}
