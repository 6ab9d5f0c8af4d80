//! Send de-duplication over real gRPC: a repeated send of a message id is
//! stored once and answered with the original result, also when the
//! sends race and across a broker restart.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod grpc_support;

use std::path::Path;
use std::time::Duration;

use grpc_support::*;
use tern_broker::{Broker, BrokerConfig, DedupConfig};
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, Topic};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::*;
use tokio::sync::oneshot;
use tonic::transport::Channel;

type Client = MessagingServiceClient<Channel>;

/// Sends `msgs` in one request: each entry's (code, offset).
async fn send(c: &mut Client, msgs: Vec<Message>) -> Vec<(i32, i64)> {
    let r = c
        .send_message(req(SendMessageRequest { messages: msgs }))
        .await
        .unwrap()
        .into_inner();
    r.entries
        .iter()
        .map(|e| (code(e.status.as_ref()), e.offset))
        .collect()
}

/// Sends one message: its offset, after checking it was accepted.
async fn send_one(c: &mut Client, topic: &str, id: &str) -> i64 {
    let r = send(c, vec![msg(topic, 0, id, id.as_bytes())]).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, Code::Ok as i32, "send of {id} to {topic}");
    r[0].1
}

/// Messages in `topic`'s consume queues now: the sum of its queues'
/// end offsets.
async fn queued(c: &mut Client, topic: &str, queues: i32) -> i64 {
    let mut total = 0;
    for id in 0..queues {
        let r = c
            .query_offset(req(QueryOffsetRequest {
                message_queue: Some(MessageQueue {
                    topic: res(topic),
                    id,
                    ..Default::default()
                }),
                query_offset_policy: QueryOffsetPolicy::End as i32,
                timestamp: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
        total += r.offset;
    }
    total
}

/// Messages stored in `topic`. Consume queues are written after the
/// send returns, so this waits until `expected` are there (or 10 s), and
/// then a while longer for any surplus to show.
async fn stored(c: &mut Client, topic: &str, queues: i32, expected: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while queued(c, topic, queues).await < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    queued(c, topic, queues).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_send_is_stored_once_with_the_original_result() {
    let server = Server::start().await;
    server.create_topic("orders", 4).await;
    let mut c = server.client().await;

    let first = send_one(&mut c, "orders", "ID-1").await;
    send_one(&mut c, "orders", "ID-2").await;
    // The retry would go to another queue (the broker rotates queues per
    // request): it is answered from the first write instead.
    assert_eq!(send_one(&mut c, "orders", "ID-1").await, first);
    assert_eq!(send_one(&mut c, "orders", "ID-1").await, first);
    assert_eq!(stored(&mut c, "orders", 4, 2).await, 2);

    // In one request with a new id: the known one is answered, the new
    // one written, and an id twice in the request is stored once.
    let r = send(
        &mut c,
        vec![
            msg("orders", 0, "ID-1", b"again"),
            msg("orders", 0, "ID-3", b"new"),
            msg("orders", 0, "ID-3", b"new"),
        ],
    )
    .await;
    assert!(r.iter().all(|(code, _)| *code == Code::Ok as i32), "{r:?}");
    assert_eq!(r[0].1, first);
    assert_eq!(r[1].1, r[2].1);
    assert_eq!(stored(&mut c, "orders", 4, 3).await, 3);

    // The one copy is what a consumer gets.
    let (_, got) = receive(&mut c, "orders", 10_000, 5_000).await;
    let mut ids: Vec<_> = got
        .iter()
        .map(|m| m.system_properties.as_ref().unwrap().message_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["ID-1", "ID-2", "ID-3"]);
    let handles: Vec<String> = got.iter().map(handle).collect();
    assert_eq!(ack(&mut c, "orders", &handles).await, [Code::Ok as i32; 3]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_id_on_another_topic_is_stored() {
    let server = Server::start().await;
    server.create_topic("a", 1).await;
    server.create_topic("b", 1).await;
    let mut c = server.client().await;
    send_one(&mut c, "a", "SAME").await;
    send_one(&mut c, "b", "SAME").await;
    assert_eq!(stored(&mut c, "a", 1, 1).await, 1);
    assert_eq!(stored(&mut c, "b", 1, 1).await, 1);
    assert_eq!(send_one(&mut c, "a", "SAME").await, 0);
    assert_eq!(send_one(&mut c, "b", "SAME").await, 0);
    assert_eq!(stored(&mut c, "a", 1, 1).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_duplicates_are_stored_once() {
    let server = Server::start().await;
    server.create_topic("race", 4).await;
    let client = server.client().await;

    // 32 sends of one id at once, each on its own stream.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            send_one(&mut c, "race", "RACE-1").await
        }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.push(t.await.unwrap());
    }
    assert!(offsets.iter().all(|o| *o == offsets[0]), "{offsets:?}");

    // Requests sharing ids in opposite orders neither deadlock nor
    // store twice.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut c = client.clone();
        let ids = if i % 2 == 0 { ["X", "Y"] } else { ["Y", "X"] };
        tasks.push(tokio::spawn(async move {
            let msgs = ids.iter().map(|id| msg("race", 0, id, b"b")).collect();
            let r = send(&mut c, msgs).await;
            assert!(r.iter().all(|(code, _)| *code == Code::Ok as i32), "{r:?}");
            r
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("requests sharing ids waited for each other")
            .unwrap();
    }
    let mut c = client.clone();
    assert_eq!(stored(&mut c, "race", 4, 3).await, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_after_the_window_is_stored_again() {
    let server = Server::start_with(|cfg| {
        cfg.dedup.window = Duration::from_millis(300);
    })
    .await;
    server.create_topic("late", 1).await;
    let mut c = server.client().await;
    assert_eq!(send_one(&mut c, "late", "L").await, 0);
    assert_eq!(send_one(&mut c, "late", "L").await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(send_one(&mut c, "late", "L").await, 1);
    assert_eq!(stored(&mut c, "late", 1, 2).await, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dedup_off_stores_every_send() {
    let server = Server::start_with(|cfg| cfg.dedup = DedupConfig::OFF).await;
    server.create_topic("off", 1).await;
    let mut c = server.client().await;
    assert_eq!(send_one(&mut c, "off", "O").await, 0);
    assert_eq!(send_one(&mut c, "off", "O").await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_send_is_not_remembered() {
    // Every send is refused (no pending send allowed): the refused id is
    // not remembered, so its retry is tried again, not answered as
    // stored. (That a retry then writes is in the unit tests.)
    let server = Server::start_with(|cfg| cfg.max_pending_sends = 0).await;
    server.create_topic("full", 1).await;
    let mut c = server.client().await;
    let r = send(&mut c, vec![msg("full", 0, "F", b"f")]).await;
    assert_eq!(r[0].0, Code::TooManyRequests as i32);
    let r = send(&mut c, vec![msg("full", 0, "F", b"f")]).await;
    assert_eq!(
        r[0].0,
        Code::TooManyRequests as i32,
        "not answered as stored"
    );
    assert_eq!(stored(&mut c, "full", 1, 0).await, 0);
    server.stop().await;
}

/// A broker on `dir` (kept across restarts).
struct Node {
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<tern_broker::Result<()>>,
}

impl Node {
    async fn start(dir: &Path, window: Duration) -> Self {
        let mut store = tern_harness::small_store_config(dir, tern_store::FlushPolicy::Async);
        store.max_body_bytes = MAX_BODY;
        let mut cfg = BrokerConfig::new(store);
        cfg.dedup.window = window;
        let broker = tokio::task::spawn_blocking(move || Broker::open(cfg))
            .await
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(broker.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_restart_is_answered_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Duration::from_secs(60)).await;
    TernAdminClient::new(node.channel().await)
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: "orders".into(),
                queue_count: 4,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut c = MessagingServiceClient::new(node.channel().await);
    let first = send_one(&mut c, "orders", "BEFORE").await;
    // Enough later ids that the first one's index entry is in a sealed
    // index file (the test store holds 256 entries per file).
    for i in 0..300 {
        send_one(&mut c, "orders", &format!("FILL-{i}")).await;
    }
    let last = send_one(&mut c, "orders", "LAST").await;
    assert_eq!(stored(&mut c, "orders", 4, 302).await, 302);
    node.stop().await;

    let node = Node::start(dir.path(), Duration::from_secs(60)).await;
    let mut c = MessagingServiceClient::new(node.channel().await);
    assert_eq!(send_one(&mut c, "orders", "BEFORE").await, first);
    assert_eq!(send_one(&mut c, "orders", "LAST").await, last);
    // Answered from memory now, and new ids are still written.
    assert_eq!(send_one(&mut c, "orders", "BEFORE").await, first);
    send_one(&mut c, "orders", "AFTER").await;
    assert_eq!(stored(&mut c, "orders", 4, 303).await, 303);
    node.stop().await;

    // A restart with a window shorter than the messages' age: the index
    // is searched, but the old record is outside the window, so the
    // retry is stored.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let node = Node::start(dir.path(), Duration::from_secs(1)).await;
    let mut c = MessagingServiceClient::new(node.channel().await);
    send_one(&mut c, "orders", "LAST").await;
    assert_eq!(stored(&mut c, "orders", 4, 304).await, 304);
    node.stop().await;
}
