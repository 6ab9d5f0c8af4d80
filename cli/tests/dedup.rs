//! Send de-duplication in the real `tern standalone` process: a retried
//! send (same message id) is stored once, also when the broker was killed
//! with SIGKILL between the first send and the retry; a retried delayed
//! or half message is parked once and answered with its original recall
//! handle or transaction id.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;
use std::time::Duration;

use sdk_support::{MessageType as TopicType, Standalone, create_typed_topic};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::*;
use tonic::transport::Channel;

async fn client(port: u16) -> MessagingServiceClient<Channel> {
    MessagingServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

fn request<T>(t: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(t);
    r.metadata_mut()
        .insert("x-mq-client-id", "dedup-test".parse().unwrap());
    r.metadata_mut()
        .insert("x-mq-language", "GOLANG".parse().unwrap());
    r
}

fn resource(name: &str) -> Option<Resource> {
    Some(Resource {
        resource_namespace: String::new(),
        name: name.into(),
    })
}

/// A message of `kind` with `id` to `topic`.
fn message(topic: &str, id: &str, kind: MessageType) -> Message {
    Message {
        topic: resource(topic),
        user_properties: Default::default(),
        system_properties: Some(SystemProperties {
            message_id: id.into(),
            message_type: kind as i32,
            ..Default::default()
        }),
        body: id.as_bytes().to_vec(),
    }
}

/// A delayed message with `id` to `topic`, due at `at_ms`.
fn delayed(topic: &str, id: &str, at_ms: i64) -> Message {
    let mut m = message(topic, id, MessageType::Delay);
    m.system_properties.as_mut().unwrap().delivery_timestamp = Some(prost_types::Timestamp {
        seconds: at_ms / 1000,
        nanos: i32::try_from(at_ms % 1000).unwrap() * 1_000_000,
    });
    m
}

/// Sends `m` alone: its result entry, after checking it was accepted.
async fn send_message(c: &mut MessagingServiceClient<Channel>, m: Message) -> SendResultEntry {
    let r = c
        .send_message(request(SendMessageRequest { messages: vec![m] }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.entries[0].status.as_ref().map(|s| s.code),
        Some(Code::Ok as i32),
        "{r:?}"
    );
    r.entries[0].clone()
}

/// Sends one message with `id` to `topic`: its queue offset.
async fn send(c: &mut MessagingServiceClient<Channel>, topic: &str, id: &str) -> i64 {
    send_message(c, message(topic, id, MessageType::Normal))
        .await
        .offset
}

/// Messages in `topic`'s four queues now.
async fn queued(c: &mut MessagingServiceClient<Channel>, topic: &str) -> i64 {
    let mut total = 0;
    for id in 0..4 {
        let r = c
            .query_offset(request(QueryOffsetRequest {
                message_queue: Some(MessageQueue {
                    topic: resource(topic),
                    id,
                    ..Default::default()
                }),
                query_offset_policy: QueryOffsetPolicy::End as i32,
                timestamp: None,
            }))
            .await
            .unwrap()
            .into_inner();
        total += r.offset;
    }
    total
}

/// Messages stored in `topic`: waits until `expected` are in its queues
/// (or 10 s), then a while longer for any surplus to show.
async fn stored(c: &mut MessagingServiceClient<Channel>, topic: &str, expected: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while queued(c, topic).await < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    queued(c, topic).await
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[test]
fn a_retry_is_stored_once_also_after_kill_9() {
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut tern = Standalone::start();
    let port = tern.port;
    let first = rt.block_on(async {
        create_typed_topic(port, "orders", 4, TopicType::Normal).await;
        let mut c = client(port).await;
        let first = send(&mut c, "orders", "0A0B0C0D0E0F0001").await;
        for i in 0..20 {
            send(&mut c, "orders", &format!("0A0B0C0D0E0F1{i:03}")).await;
        }
        // The retry of a send whose answer was lost.
        assert_eq!(send(&mut c, "orders", "0A0B0C0D0E0F0001").await, first);
        assert_eq!(stored(&mut c, "orders", 21).await, 21);
        first
    });
    tern.kill9_restart();

    // The producer retries against the restarted broker.
    rt.block_on(async {
        let mut c = client(port).await;
        assert_eq!(send(&mut c, "orders", "0A0B0C0D0E0F0001").await, first);
        send(&mut c, "orders", "0A0B0C0D0E0F0002").await;
        assert_eq!(stored(&mut c, "orders", 22).await, 22);
    });
    let log = tern.tern.log().unwrap();
    assert!(
        log.contains("send repeated after a restart answered with the original result"),
        "{log}"
    );
    tern.stop();
}

#[test]
fn delayed_and_half_messages_retried_after_kill_9_are_parked_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut tern = Standalone::start();
    let port = tern.port;
    let (early, late, half, late_at) = rt.block_on(async {
        create_typed_topic(port, "later", 4, TopicType::Delay).await;
        create_typed_topic(port, "tx", 4, TopicType::Transaction).await;
        let mut c = client(port).await;
        // Delivered before the crash, and due after the restart.
        let early_at = now_ms() + 500;
        let early = send_message(&mut c, delayed("later", "0D0D0D0D0D0D0001", early_at)).await;
        let late_at = now_ms() + 8_000;
        let late = send_message(&mut c, delayed("later", "0D0D0D0D0D0D0002", late_at)).await;
        let half = send_message(
            &mut c,
            message("tx", "0F0F0F0F0F0F0001", MessageType::Transaction),
        )
        .await;
        assert!(!early.recall_handle.is_empty() && !half.transaction_id.is_empty());
        assert_eq!(
            stored(&mut c, "later", 1).await,
            1,
            "the early one is delivered"
        );
        (early, late, half, late_at)
    });
    tern.kill9_restart();

    // The producer retries each against the restarted broker: answered
    // from the index with the original results (for the delivered one
    // too: its park record, not its copy), and nothing parked again.
    rt.block_on(async {
        let mut c = client(port).await;
        // Its time has passed: a retry after the delivery.
        let retry = delayed("later", "0D0D0D0D0D0D0001", now_ms());
        assert_eq!(send_message(&mut c, retry).await, early);
        assert_eq!(
            send_message(&mut c, delayed("later", "0D0D0D0D0D0D0002", late_at)).await,
            late
        );
        let again = send_message(
            &mut c,
            message("tx", "0F0F0F0F0F0F0001", MessageType::Transaction),
        )
        .await;
        assert_eq!(again, half);
        // The one transaction commits to one message.
        let r = c
            .end_transaction(request(EndTransactionRequest {
                topic: resource("tx"),
                message_id: "0F0F0F0F0F0F0001".into(),
                transaction_id: half.transaction_id.clone(),
                resolution: TransactionResolution::Commit as i32,
                source: TransactionSource::SourceClient as i32,
                trace_context: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.map(|s| s.code), Some(Code::Ok as i32));
        assert_eq!(stored(&mut c, "tx", 1).await, 1);
        // The late one is delivered once, when due.
        assert_eq!(stored(&mut c, "later", 2).await, 2);
        assert!(now_ms() >= late_at);
    });
    let log = tern.tern.log().unwrap();
    assert!(
        log.contains("send repeated after a restart answered with the original result"),
        "{log}"
    );
    tern.stop();
}

/// The official Python SDK's own retry after a lost answer, for a normal,
/// a delayed and a transactional message: see `sdk/python_dedup.py`.
/// `scripts/test` installs the SDK and sets `TERN_PYTHON`; without it
/// this test says so and does not run. Under `TERN_REQUIRE_SDKS=1`
/// (set by `scripts/test`) a missing SDK fails the test instead.
#[test]
fn python_sdk_retries_after_a_lost_answer_get_the_original_results() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python dedup test") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_typed("py-dedup-normal", 2, TopicType::Normal);
    tern.create_typed("py-dedup-delay", 2, TopicType::Delay);
    tern.create_typed("py-dedup-txn", 2, TopicType::Transaction);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_dedup.py");
    tern.run_client(
        "python SDK (retried sends)",
        Command::new(&python).args([
            script,
            &tern.listen,
            "py-dedup-normal",
            "py-dedup-delay",
            "py-dedup-txn",
        ]),
        "dedup ok True",
    );
    tern.stop();
}
