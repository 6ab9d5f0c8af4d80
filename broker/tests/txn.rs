//! Transactional messages over real gRPC on an in-process broker:
//! half messages stay out of their topic until EndTransaction; commit
//! delivers, rollback discards, wrong or finished transactions get clear
//! statuses; an unresolved one is pushed to a live producer's Telemetry
//! stream as `recover_orphaned_transaction_command`, again every interval,
//! and ends by the default resolution after the last check.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[allow(
    dead_code,
    reason = "shared test support; this crate needs only part of it"
)]
mod grpc_support;

use std::time::Duration;

use grpc_support::*;
use tern_broker::txn::{Resolution, TransactionConfig};
use tern_protocol::admin::{CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest, Topic};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::telemetry_command::Command;
use tern_protocol::v2::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

type Client = MessagingServiceClient<Channel>;

async fn start(first_check_ms: u64, interval_ms: u64, max_checks: u32) -> Server {
    let server = Server::start_with(|cfg| {
        cfg.transaction = TransactionConfig {
            first_check: Duration::from_millis(first_check_ms),
            check_interval: Duration::from_millis(interval_ms),
            max_checks,
            default_resolution: Resolution::Rollback,
        };
    })
    .await;
    server
        .admin()
        .await
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: "tx".into(),
                queue_count: 2,
                message_type: tern_protocol::admin::MessageType::Transaction as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    server
}

fn half(id: &str) -> Message {
    let mut m = msg("tx", 0, id, format!("body of {id}").as_bytes());
    m.system_properties.as_mut().unwrap().message_type = MessageType::Transaction as i32;
    m
}

/// Sends one half message; returns its transaction id.
async fn send_half(c: &mut Client, id: &str) -> String {
    let r = c
        .send_message(req(SendMessageRequest {
            messages: vec![half(id)],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{r:?}");
    let tid = r.entries[0].transaction_id.clone();
    assert!(!tid.is_empty());
    tid
}

async fn end(c: &mut Client, id: &str, tid: &str, resolution: TransactionResolution) -> i32 {
    let r = c
        .end_transaction(req(EndTransactionRequest {
            topic: res("tx"),
            message_id: id.into(),
            transaction_id: tid.into(),
            resolution: resolution as i32,
            source: TransactionSource::SourceClient as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    code(r.status.as_ref())
}

/// Messages stored in topic `tx`, all queues.
async fn in_topic(server: &Server) -> u64 {
    let d = server
        .admin()
        .await
        .describe_topic(DescribeTopicRequest { name: "tx".into() })
        .await
        .unwrap()
        .into_inner();
    d.queues.iter().map(|q| q.max_offset).sum()
}

/// Waits (at most 5 s) until topic `tx` holds `n` messages.
async fn wait_in_topic(server: &Server, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while in_topic(server).await < n {
        assert!(std::time::Instant::now() < deadline, "not {n} in the topic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn commit_delivers_rollback_discards_and_bad_ids_are_refused() {
    let server = start(60_000, 60_000, 15).await;
    let mut c = server.client().await;
    let t1 = send_half(&mut c, "m1").await;
    let t2 = send_half(&mut c, "m2").await;
    assert_ne!(t1, t2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(in_topic(&server).await, 0, "half messages are invisible");

    let invalid = Code::InvalidTransactionId as i32;
    assert_eq!(
        end(&mut c, "m1", "nonsense", TransactionResolution::Commit).await,
        invalid
    );
    assert_eq!(
        end(&mut c, "m2", &t1, TransactionResolution::Commit).await,
        invalid
    );
    assert_eq!(
        end(&mut c, "m1", &t1, TransactionResolution::Unspecified).await,
        Code::BadRequest as i32
    );
    assert_eq!(
        end(&mut c, "m1", &t1, TransactionResolution::Commit).await,
        Code::Ok as i32
    );
    assert_eq!(
        end(&mut c, "m1", &t1, TransactionResolution::Rollback).await,
        Code::NotFound as i32,
        "a transaction ends once"
    );
    assert_eq!(
        end(&mut c, "m2", &t2, TransactionResolution::Rollback).await,
        Code::Ok as i32
    );
    wait_in_topic(&server, 1).await;

    let (status, got) = receive(&mut c, "tx", 30_000, 5_000).await;
    assert_eq!(status, Code::Ok as i32);
    let ids: Vec<&str> = got
        .iter()
        .map(|m| m.system_properties.as_ref().unwrap().message_id.as_str())
        .collect();
    assert_eq!(ids, ["m1"]);
    let sp = got[0].system_properties.as_ref().unwrap();
    assert_eq!(sp.message_type, MessageType::Transaction as i32);
    assert_eq!(got[0].body, b"body of m1");
    assert_eq!(
        in_topic(&server).await,
        1,
        "the rolled-back one never arrives"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_commit_after_its_topic_was_deleted_ends_the_transaction() {
    let server = start(60_000, 60_000, 15).await;
    let mut c = server.client().await;
    let tid = send_half(&mut c, "gone").await;
    server
        .admin()
        .await
        .delete_topic(DeleteTopicRequest { name: "tx".into() })
        .await
        .unwrap();
    // Nowhere to deliver it: the commit ends it (dropped, with a warning)
    // rather than leaving it to be retried forever.
    assert_eq!(
        end(&mut c, "gone", &tid, TransactionResolution::Commit).await,
        Code::Ok as i32
    );
    assert_eq!(
        end(&mut c, "gone", &tid, TransactionResolution::Commit).await,
        Code::NotFound as i32,
        "ended, not back in the schedule"
    );
    server.stop().await;
}

/// A producer's Telemetry stream (client `test-client`, publishing `tx`),
/// after the settings handshake.
async fn producer_stream(
    c: &mut Client,
) -> (mpsc::Sender<TelemetryCommand>, Streaming<TelemetryCommand>) {
    let (tx, rx) = mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(Command::Settings(Settings {
            client_type: Some(ClientType::Producer as i32),
            pub_sub: Some(settings::PubSub::Publishing(Publishing {
                topics: vec![res("tx").unwrap()],
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut stream = c
        .telemetry(req(ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(first.command, Some(Command::Settings(_))));
    (tx, stream)
}

/// The next recovery command on `stream` (at most `within`).
async fn next_check(
    stream: &mut Streaming<TelemetryCommand>,
    within: Duration,
) -> Option<RecoverOrphanedTransactionCommand> {
    let next = tokio::time::timeout(within, stream.message()).await.ok()?;
    match next.unwrap().unwrap().command {
        Some(Command::RecoverOrphanedTransactionCommand(c)) => Some(c),
        other => panic!("unexpected command {other:?}"),
    }
}

#[tokio::test]
async fn orphans_are_checked_every_interval_and_end_by_default() {
    let server = start(300, 400, 2).await;
    let mut c = server.client().await;
    let (_keep, mut stream) = producer_stream(&mut c).await;
    let sent = std::time::Instant::now();
    let tid = send_half(&mut c, "o1").await;

    let check = next_check(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(check.transaction_id, tid);
    let m = check.message.unwrap();
    assert_eq!(m.topic.unwrap().name, "tx");
    assert_eq!(m.body, b"body of o1");
    let sp = m.system_properties.unwrap();
    assert_eq!(sp.message_id, "o1");
    assert_eq!(sp.message_type, MessageType::Transaction as i32);
    assert!(sp.body_digest.is_some());

    // Unanswered: asked again an interval later, then rolled back.
    let again = next_check(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.transaction_id, tid);
    assert!(
        next_check(&mut stream, Duration::from_millis(1_500))
            .await
            .is_none()
    );
    assert_eq!(
        end(&mut c, "o1", &tid, TransactionResolution::Commit).await,
        Code::NotFound as i32
    );
    assert_eq!(in_topic(&server).await, 0);

    // Answered by the producer (as an SDK's checker does): delivered.
    let tid = send_half(&mut c, "o2").await;
    let check = next_check(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(check.transaction_id, tid);
    let r = c
        .end_transaction(req(EndTransactionRequest {
            topic: res("tx"),
            message_id: "o2".into(),
            transaction_id: tid,
            resolution: TransactionResolution::Commit as i32,
            source: TransactionSource::SourceServerCheck as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    wait_in_topic(&server, 1).await;
    assert!(
        next_check(&mut stream, Duration::from_millis(800))
            .await
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn no_check_goes_to_a_closed_producer_stream_or_a_consumer() {
    let server = start(200, 200, 3).await;
    let mut c = server.client().await;
    {
        let (_keep, _stream) = producer_stream(&mut c).await;
    }
    // A consumer's stream is never asked.
    let (tx, rx) = mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(Command::Settings(Settings {
            client_type: Some(ClientType::SimpleConsumer as i32),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut consumer = c
        .telemetry(req(ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    consumer.message().await.unwrap().unwrap();
    // A half message from a client with no stream: nobody to ask.
    let mut other = MessagingServiceClient::new(server.channel().await);
    let mut r = tonic::Request::new(SendMessageRequest {
        messages: vec![half("x1")],
    });
    r.metadata_mut()
        .insert("x-mq-client-id", "someone-else".parse().unwrap());
    let sent = other.send_message(r).await.unwrap().into_inner();
    assert_eq!(code(sent.status.as_ref()), Code::Ok as i32);
    let waited = tokio::time::timeout(Duration::from_millis(1_500), consumer.message()).await;
    assert!(waited.is_err(), "a consumer was asked: {waited:?}");
    drop(tx);
    server.stop().await;
}
