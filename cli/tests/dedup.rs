//! Send de-duplication in the real `tern standalone` process: a retried
//! send (same message id) is stored once, also when the broker was killed
//! with SIGKILL between the first send and the retry.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use tern_harness::TernProcess;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, MessageType as TopicType, Permission, Topic};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::*;
use tonic::transport::Channel;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tern standalone` on `data_dir` and a free port, once it listens.
fn start(data_dir: &Path) -> (TernProcess, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut tern = TernProcess::standalone_with(TERN, data_dir, &["--listen", &listen]).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    (tern, port)
}

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

/// Sends one message with `id` to `topic`: its queue offset.
async fn send(c: &mut MessagingServiceClient<Channel>, topic: &str, id: &str) -> i64 {
    let m = Message {
        topic: resource(topic),
        user_properties: Default::default(),
        system_properties: Some(SystemProperties {
            message_id: id.into(),
            message_type: MessageType::Normal as i32,
            ..Default::default()
        }),
        body: id.as_bytes().to_vec(),
    };
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
    r.entries[0].offset
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

#[test]
fn a_retry_is_stored_once_also_after_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();

    let (mut tern, port) = start(&data);
    let first = rt.block_on(async {
        TernAdminClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap()
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: "orders".into(),
                    queue_count: 4,
                    message_type: TopicType::Normal as i32,
                    permission: Permission::ReadWrite as i32,
                }),
            })
            .await
            .unwrap();
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
    tern.kill9().unwrap();

    // The producer retries against the restarted broker.
    let (mut tern, port) = start(&data);
    rt.block_on(async {
        let mut c = client(port).await;
        assert_eq!(send(&mut c, "orders", "0A0B0C0D0E0F0001").await, first);
        send(&mut c, "orders", "0A0B0C0D0E0F0002").await;
        assert_eq!(stored(&mut c, "orders", 22).await, 22);
    });
    let log = tern.log().unwrap();
    assert!(
        log.contains("send repeated after a restart answered with the original result"),
        "{log}"
    );
    tern.terminate().unwrap();
}
