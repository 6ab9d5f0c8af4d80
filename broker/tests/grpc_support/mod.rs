//! The gRPC test server and client helpers.
#![allow(clippy::unwrap_used)] // test support: a panic is the failure report

use std::time::Duration;

use tern_broker::{Broker, BrokerConfig};
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, DescribeTopicRequest, Topic};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::transport::Channel;

/// Largest body in these tests.
pub const MAX_BODY: usize = 1024;

pub struct Server {
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<tern_broker::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a broker whose configuration `tweak` has adjusted.
    pub async fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            tern_harness::small_store_config(dir.path(), tern_store::FlushPolicy::Async);
        store.max_body_bytes = MAX_BODY;
        let mut cfg = BrokerConfig::new(store);
        tweak(&mut cfg);
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
        Self {
            addr,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> MessagingServiceClient<Channel> {
        MessagingServiceClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> TernAdminClient<Channel> {
        TernAdminClient::new(self.channel().await)
    }

    pub async fn create_topic(&self, name: &str, queues: i32) {
        self.admin()
            .await
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: name.into(),
                    queue_count: queues,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }

    /// Messages stored per queue of `topic` once `total` have become
    /// readable (an acknowledged send is dispatched to its queue in the
    /// background, a moment later); panics after 10 s.
    #[allow(
        dead_code,
        reason = "this module is compiled into several test crates; not all of them wait"
    )]
    pub async fn wait_readable(&self, topic: &str, total: u64) -> Vec<u64> {
        let mut admin = self.admin().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let d = admin
                .describe_topic(DescribeTopicRequest { name: topic.into() })
                .await
                .unwrap()
                .into_inner();
            let per_queue: Vec<u64> = d.queues.iter().map(|q| q.max_offset).collect();
            if per_queue.iter().sum::<u64>() >= total {
                return per_queue;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{topic}: only {per_queue:?} of {total} readable after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("graceful shutdown took too long")
            .unwrap()
            .unwrap();
    }
}

/// `t` with the client id (and language) metadata.
pub fn req<T>(t: T) -> Request<T> {
    let mut r = Request::new(t);
    r.metadata_mut()
        .insert("x-mq-client-id", "test-client".parse().unwrap());
    r.metadata_mut()
        .insert("x-mq-language", "JAVA".parse().unwrap());
    r
}

pub fn res(name: &str) -> Option<Resource> {
    Some(Resource {
        resource_namespace: String::new(),
        name: name.into(),
    })
}

pub fn msg(topic: &str, queue: i32, id: &str, body: &[u8]) -> Message {
    Message {
        topic: res(topic),
        user_properties: Default::default(),
        system_properties: Some(SystemProperties {
            message_id: id.into(),
            tag: Some("tagA".into()),
            queue_id: queue,
            message_type: MessageType::Normal as i32,
            ..Default::default()
        }),
        body: body.to_vec(),
    }
}

pub fn code(s: Option<&Status>) -> i32 {
    s.map_or(0, |s| s.code)
}

pub fn ms(n: u64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: i64::try_from(n / 1000).unwrap(),
        nanos: i32::try_from(n % 1000).unwrap() * 1_000_000,
    })
}

/// One receive: the status and the messages.
pub async fn receive(
    c: &mut MessagingServiceClient<Channel>,
    topic: &str,
    invisible_ms: u64,
    poll_ms: u64,
) -> (i32, Vec<Message>) {
    let r = ReceiveMessageRequest {
        group: res("g1"),
        message_queue: Some(MessageQueue {
            topic: res(topic),
            id: -1,
            ..Default::default()
        }),
        filter_expression: Some(FilterExpression {
            r#type: FilterType::Tag as i32,
            expression: "*".into(),
        }),
        batch_size: 8,
        invisible_duration: ms(invisible_ms),
        auto_renew: false,
        long_polling_timeout: ms(poll_ms),
        attempt_id: None,
    };
    let mut stream = c.receive_message(req(r)).await.unwrap().into_inner();
    let mut status = 0;
    let mut messages = Vec::new();
    let mut stamped = false;
    while let Some(item) = stream.message().await.unwrap() {
        match item.content.unwrap() {
            Content::Status(s) => status = s.code,
            Content::Message(m) => messages.push(m),
            Content::DeliveryTimestamp(_) => stamped = true,
        }
    }
    assert_eq!(stamped, !messages.is_empty());
    (status, messages)
}

pub fn handle(m: &Message) -> String {
    m.system_properties
        .as_ref()
        .unwrap()
        .receipt_handle
        .clone()
        .unwrap()
}

pub async fn ack(
    c: &mut MessagingServiceClient<Channel>,
    topic: &str,
    handles: &[String],
) -> Vec<i32> {
    let r = AckMessageRequest {
        group: res("g1"),
        topic: res(topic),
        entries: handles
            .iter()
            .map(|h| AckMessageEntry {
                message_id: String::new(),
                receipt_handle: h.clone(),
                lite_topic: None,
            })
            .collect(),
    };
    let resp = c.ack_message(req(r)).await.unwrap().into_inner();
    resp.entries
        .iter()
        .map(|e| code(e.status.as_ref()))
        .collect()
}
