//! Send de-duplication of parked messages over real gRPC: a repeated send
//! of a delayed or transactional (half) message is parked once and
//! answered with the original result (the same recall handle, the same
//! transaction id), also when the sends race and after the delayed
//! message was delivered.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[allow(
    dead_code,
    reason = "shared test support; this crate needs only part of it"
)]
mod grpc_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grpc_support::*;
use tern_protocol::admin::{
    CreateTopicRequest, DescribeTopicRequest, MessageType as TopicType, Topic,
};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::*;
use tonic::transport::Channel;

type Client = MessagingServiceClient<Channel>;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A broker with 100 ms delay precision, a DELAY topic `later` and a
/// TRANSACTION topic `tx`, two queues each.
async fn start() -> Server {
    let server = Server::start_with(|cfg| {
        cfg.delay.precision = Duration::from_millis(100);
    })
    .await;
    for (name, kind) in [("later", TopicType::Delay), ("tx", TopicType::Transaction)] {
        server
            .admin()
            .await
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: name.into(),
                    queue_count: 2,
                    message_type: kind as i32,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    server
}

/// A delayed message of topic `later`, due at `at_ms`.
fn delayed(id: &str, at_ms: i64) -> Message {
    let mut m = msg("later", 0, id, id.as_bytes());
    let sp = m.system_properties.as_mut().unwrap();
    sp.message_type = MessageType::Delay as i32;
    sp.delivery_timestamp = Some(prost_types::Timestamp {
        seconds: at_ms / 1000,
        nanos: i32::try_from(at_ms % 1000).unwrap() * 1_000_000,
    });
    m
}

/// A half message of topic `tx`.
fn half(id: &str) -> Message {
    let mut m = msg("tx", 0, id, id.as_bytes());
    m.system_properties.as_mut().unwrap().message_type = MessageType::Transaction as i32;
    m
}

/// Sends `msgs` in one request; every entry must be accepted.
async fn send(c: &mut Client, msgs: Vec<Message>) -> Vec<SendResultEntry> {
    let r = c
        .send_message(req(SendMessageRequest { messages: msgs }))
        .await
        .unwrap()
        .into_inner();
    for e in &r.entries {
        assert_eq!(code(e.status.as_ref()), Code::Ok as i32, "{r:?}");
    }
    r.entries
}

async fn send_one(c: &mut Client, m: Message) -> SendResultEntry {
    send(c, vec![m]).await.pop().unwrap()
}

/// Messages stored in `topic`, all queues.
async fn in_topic(server: &Server, topic: &str) -> u64 {
    let d = server
        .admin()
        .await
        .describe_topic(DescribeTopicRequest { name: topic.into() })
        .await
        .unwrap()
        .into_inner();
    d.queues.iter().map(|q| q.max_offset).sum()
}

/// Waits until `topic` holds `n` messages, then a while longer for any
/// surplus to show: the count then.
async fn settled(server: &Server, topic: &str, n: u64) -> u64 {
    server.wait_readable(topic, n).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    in_topic(server, topic).await
}

async fn end(c: &mut Client, id: &str, tid: &str) -> i32 {
    let r = c
        .end_transaction(req(EndTransactionRequest {
            topic: res("tx"),
            message_id: id.into(),
            transaction_id: tid.into(),
            resolution: TransactionResolution::Commit as i32,
            source: TransactionSource::SourceClient as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    code(r.status.as_ref())
}

async fn recall(c: &mut Client, handle: &str) -> i32 {
    let r = c
        .recall_message(req(RecallMessageRequest {
            topic: res("later"),
            recall_handle: handle.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    code(r.status.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_delayed_send_is_parked_once_and_answered_alike() {
    let server = start().await;
    let mut c = server.client().await;
    let at = now_ms() + 1500;
    let first = send_one(&mut c, delayed("D-1", at)).await;
    assert!(!first.recall_handle.is_empty());
    // A retry (the delivery time as the producer sent it), and the id
    // twice in one request next to a new one.
    assert_eq!(send_one(&mut c, delayed("D-1", at)).await, first);
    let r = send(
        &mut c,
        vec![delayed("D-1", at), delayed("D-2", at), delayed("D-2", at)],
    )
    .await;
    assert_eq!(r[0], first);
    assert_eq!(r[1], r[2]);
    assert_ne!(r[1].recall_handle, first.recall_handle);
    assert_eq!(in_topic(&server, "later").await, 0, "not due yet");

    // Delivered once each.
    assert_eq!(settled(&server, "later", 2).await, 2);
    let (_, got) = receive(&mut c, "later", 10_000, 5_000).await;
    let mut ids: Vec<_> = got
        .iter()
        .map(|m| m.system_properties.as_ref().unwrap().message_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["D-1", "D-2"]);

    // Resent after its delivery (its time has passed now): still the
    // original answer, and nothing is delivered again.
    assert_eq!(send_one(&mut c, delayed("D-1", at)).await, first);
    assert_eq!(settled(&server, "later", 2).await, 2);
    // Recalling by the answer's handle: it was delivered already.
    assert_eq!(
        recall(&mut c, &first.recall_handle).await,
        Code::MessageNotFound as i32
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_handle_of_a_repeated_delayed_send_recalls_the_one_parked_copy() {
    let server = start().await;
    let mut c = server.client().await;
    let at = now_ms() + 1500;
    let first = send_one(&mut c, delayed("R-1", at)).await;
    let again = send_one(&mut c, delayed("R-1", at)).await;
    assert_eq!(again, first);
    // Recalled by the retry's handle: had the retry parked a second
    // copy, that one would still be delivered.
    assert_eq!(recall(&mut c, &again.recall_handle).await, Code::Ok as i32);
    send_one(&mut c, delayed("R-2", at)).await;
    assert_eq!(settled(&server, "later", 1).await, 1);
    let (_, got) = receive(&mut c, "later", 10_000, 5_000).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].system_properties.as_ref().unwrap().message_id, "R-2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_delayed_sends_are_parked_once() {
    let server = start().await;
    let client = server.client().await;
    let at = now_ms() + 1500;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            send_one(&mut c, delayed("RACE", at)).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(settled(&server, "later", 1).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_half_message_is_one_transaction() {
    let server = start().await;
    let mut c = server.client().await;
    let first = send_one(&mut c, half("H-1")).await;
    assert!(!first.transaction_id.is_empty());
    assert_eq!(send_one(&mut c, half("H-1")).await, first);
    // Racing retries, and the id twice in one request.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            send(&mut c, vec![half("H-1"), half("H-1")]).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), [first.clone(), first.clone()]);
    }
    assert_eq!(
        in_topic(&server, "tx").await,
        0,
        "half messages are invisible"
    );

    // Committing the one transaction delivers exactly one message.
    assert_eq!(
        end(&mut c, "H-1", &first.transaction_id).await,
        Code::Ok as i32
    );
    assert_eq!(settled(&server, "tx", 1).await, 1);

    // Resent after the commit: the original answer; its transaction has
    // ended, and nothing more is delivered.
    assert_eq!(send_one(&mut c, half("H-1")).await, first);
    assert_eq!(
        end(&mut c, "H-1", &first.transaction_id).await,
        Code::NotFound as i32
    );
    assert_eq!(settled(&server, "tx", 1).await, 1);
    server.stop().await;
}
