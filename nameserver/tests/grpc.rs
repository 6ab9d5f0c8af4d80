//! A name server served in-process on a free port, driven by gRPC clients:
//! a registration of 100,000 topics in chunks, routes through both the
//! TernNameserver and the RocketMQ services, the settings handshake, a
//! restart that makes heartbeats ask for registration again, expiry, and
//! the HTTP health and metrics port.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::{Duration, Instant};

use tern_nameserver::{Nameserver, NameserverConfig};
use tern_protocol::admin::{Group, MessageType, Permission, Topic};
use tern_protocol::nameserver::register_broker_request::Part;
use tern_protocol::nameserver::tern_nameserver_client::TernNameserverClient;
use tern_protocol::nameserver::{
    BrokerHeader, HeartbeatRequest, ListBrokersRequest, QueryRouteRequest, RegisterBrokerRequest,
    TableChunk,
};
use tern_protocol::v2;
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

struct Running {
    address: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(expiry: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = oneshot::channel();
        let ns = Nameserver::new(NameserverConfig {
            broker_expiry: expiry,
            ..NameserverConfig::default()
        })
        .unwrap();
        let task = tokio::spawn(async move {
            ns.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            address,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the name server stops")
            .unwrap();
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

fn topic(name: String, queues: i32) -> Topic {
    Topic {
        name,
        queue_count: queues,
        message_type: MessageType::Normal as i32,
        permission: Permission::ReadWrite as i32,
    }
}

fn header(name: &str, endpoint: &str, version: u64, topics: u64, groups: u64) -> Part {
    Part::Header(BrokerHeader {
        cluster: "tern".to_owned(),
        broker_name: name.to_owned(),
        endpoints: vec![endpoint.to_owned()],
        table_version: version,
        topic_count: topics,
        group_count: groups,
    })
}

fn parts(parts: Vec<Part>) -> impl tokio_stream::Stream<Item = RegisterBrokerRequest> {
    tokio_stream::iter(
        parts
            .into_iter()
            .map(|p| RegisterBrokerRequest { part: Some(p) }),
    )
}

/// Registers `topics` (2 queues each) and one FIFO group in chunks of
/// 5,000 topics.
async fn register(
    client: &mut TernNameserverClient<Channel>,
    name: &str,
    endpoint: &str,
    version: u64,
    topics: &[String],
) {
    let mut all = vec![header(name, endpoint, version, topics.len() as u64, 1)];
    for chunk in topics.chunks(5_000) {
        all.push(Part::Chunk(TableChunk {
            topics: chunk.iter().map(|t| topic(t.clone(), 2)).collect(),
            groups: Vec::new(),
        }));
    }
    all.push(Part::Chunk(TableChunk {
        topics: Vec::new(),
        groups: vec![Group {
            name: "fifo-group".to_owned(),
            fifo: true,
            max_retries: 5,
        }],
    }));
    let r = client
        .register_broker(parts(all))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.topic_count, topics.len() as u64);
}

fn with_client_id<T>(t: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(t);
    r.metadata_mut()
        .insert("x-mq-client-id", "test-client".parse().unwrap());
    r
}

fn resource(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_topics_register_and_route() {
    let ns = Running::start(Duration::from_secs(120)).await;
    let channel = ns.channel().await;
    let mut client = TernNameserverClient::new(channel.clone());
    let names: Vec<String> = (0..100_000).map(|i| format!("topic-{i:06}")).collect();
    let started = Instant::now();
    register(&mut client, "broker-a", "127.0.0.1:10001", 1, &names).await;
    register(
        &mut client,
        "broker-b",
        "127.0.0.1:10002",
        1,
        &names[99_990..],
    )
    .await;
    eprintln!("registered 100,010 topics in {:?}", started.elapsed());

    let route = client
        .query_route(QueryRouteRequest {
            topic: "topic-099999".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let brokers: Vec<(&str, &str)> = route
        .brokers
        .iter()
        .map(|b| (b.broker_name.as_str(), b.endpoints[0].as_str()))
        .collect();
    assert_eq!(
        brokers,
        [
            ("broker-a", "127.0.0.1:10001"),
            ("broker-b", "127.0.0.1:10002")
        ]
    );
    let err = client
        .query_route(QueryRouteRequest {
            topic: "missing".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // The RocketMQ route merges the queues of both brokers.
    let mut mq = MessagingServiceClient::new(channel.clone());
    let r = mq
        .query_route(with_client_id(v2::QueryRouteRequest {
            topic: resource("topic-099999"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status.unwrap().code, v2::Code::Ok as i32);
    let queues: Vec<(String, i32, i32)> = r
        .message_queues
        .iter()
        .map(|q| {
            let b = q.broker.as_ref().unwrap();
            let port = b.endpoints.as_ref().unwrap().addresses[0].port;
            (b.name.clone(), q.id, port)
        })
        .collect();
    assert_eq!(
        queues,
        [
            ("broker-a".to_owned(), 0, 10001),
            ("broker-a".to_owned(), 1, 10001),
            ("broker-b".to_owned(), 0, 10002),
            ("broker-b".to_owned(), 1, 10002),
        ]
    );
    let r = mq
        .query_route(with_client_id(v2::QueryRouteRequest {
            topic: resource("missing"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status.unwrap().code, v2::Code::TopicNotFound as i32);
    // Without a client id.
    let r = mq
        .query_route(v2::QueryRouteRequest {
            topic: resource("topic-000001"),
            endpoints: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status.unwrap().code, v2::Code::ClientIdRequired as i32);

    // Assignments: per broker for a normal group, per queue for a FIFO one.
    for (group, expected) in [
        ("normal-group", vec![-1, -1]),
        ("fifo-group", vec![0, 1, 0, 1]),
    ] {
        let r = mq
            .query_assignment(with_client_id(v2::QueryAssignmentRequest {
                topic: resource("topic-099999"),
                group: resource(group),
                endpoints: None,
            }))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<i32> = r
            .assignments
            .iter()
            .map(|a| a.message_queue.as_ref().unwrap().id)
            .collect();
        assert_eq!(ids, expected, "{group}");
    }

    // Messages go to brokers, and the name server says so.
    let r = mq
        .send_message(with_client_id(v2::SendMessageRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let s = r.status.unwrap();
    assert_eq!(s.code, v2::Code::BadRequest as i32);
    assert!(s.message.contains("broker"), "{}", s.message);

    let listed = client
        .list_brokers(ListBrokersRequest {})
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<u64> = listed.brokers.iter().map(|b| b.topic_count).collect();
    assert_eq!(counts, [100_000, 10]);
    ns.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_answers_consumer_settings_from_registered_groups() {
    let ns = Running::start(Duration::from_secs(120)).await;
    let channel = ns.channel().await;
    let mut client = TernNameserverClient::new(channel.clone());
    register(&mut client, "b", "127.0.0.1:10001", 1, &["t".to_owned()]).await;

    let mut mq = MessagingServiceClient::new(channel);
    let settings = v2::Settings {
        pub_sub: Some(v2::settings::PubSub::Subscription(v2::Subscription {
            group: resource("fifo-group"),
            ..Default::default()
        })),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(v2::TelemetryCommand {
        status: None,
        command: Some(v2::telemetry_command::Command::Settings(settings)),
    })
    .await
    .unwrap();
    let mut replies = mq
        .telemetry(with_client_id(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
        .await
        .unwrap()
        .into_inner();
    let reply = tokio::time::timeout(Duration::from_secs(5), replies.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Some(v2::telemetry_command::Command::Settings(s)) = reply.command else {
        panic!("settings expected: {reply:?}");
    };
    let Some(v2::settings::PubSub::Subscription(sub)) = s.pub_sub else {
        panic!("subscription expected");
    };
    assert_eq!(sub.fifo, Some(true));
    assert_eq!(s.backoff_policy.unwrap().max_attempts, 6);
    drop(tx);
    ns.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_checks_and_restart() {
    let ns = Running::start(Duration::from_secs(120)).await;
    let mut client = TernNameserverClient::new(ns.channel().await);

    // No header first; a count that does not match.
    let chunk = Part::Chunk(TableChunk::default());
    let err = client
        .register_broker(parts(vec![chunk.clone()]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client
        .register_broker(parts(vec![header("b", "127.0.0.1:1", 1, 5, 0), chunk]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        client
            .list_brokers(ListBrokersRequest {})
            .await
            .unwrap()
            .into_inner()
            .brokers
            .is_empty()
    );

    register(&mut client, "b", "127.0.0.1:1", 3, &["t".to_owned()]).await;
    let beat = |version| HeartbeatRequest {
        cluster: "tern".to_owned(),
        broker_name: "b".to_owned(),
        table_version: version,
    };
    assert!(
        !client
            .heartbeat(beat(3))
            .await
            .unwrap()
            .into_inner()
            .register_again
    );
    assert!(
        client
            .heartbeat(beat(4))
            .await
            .unwrap()
            .into_inner()
            .register_again
    );
    ns.stop().await;

    // A new name server knows nobody: the heartbeat asks for registration.
    let ns = Running::start(Duration::from_secs(120)).await;
    let mut client = TernNameserverClient::new(ns.channel().await);
    assert!(
        client
            .heartbeat(beat(3))
            .await
            .unwrap()
            .into_inner()
            .register_again
    );
    ns.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_expires() {
    let ns = Running::start(Duration::from_millis(400)).await;
    let mut client = TernNameserverClient::new(ns.channel().await);
    register(&mut client, "b", "127.0.0.1:1", 1, &["t".to_owned()]).await;
    let route = QueryRouteRequest {
        topic: "t".to_owned(),
    };
    assert!(client.query_route(route.clone()).await.is_ok());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = client.query_route(route).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let listed = client.list_brokers(ListBrokersRequest {}).await.unwrap();
    assert!(listed.into_inner().brokers.is_empty());
    ns.stop().await;
}

/// `GET path` over HTTP/1.1 on a plain socket: (status line, body).
fn http_get(address: &str, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(address).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.lines().next().unwrap_or_default().to_owned();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_port_reports_health_and_brokers() {
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_address = grpc.local_addr().unwrap().to_string();
    let http_address = http.local_addr().unwrap().to_string();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        Nameserver::new(NameserverConfig::default())
            .unwrap()
            .serve_with_http(grpc, Some(http), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    let channel = Channel::from_shared(format!("http://{grpc_address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = TernNameserverClient::new(channel);
    register(
        &mut client,
        "b",
        "127.0.0.1:1",
        1,
        &["t1".to_owned(), "t2".to_owned()],
    )
    .await;

    let (a, b) = (http_address.clone(), http_address.clone());
    let (health, ready) =
        tokio::task::spawn_blocking(move || (http_get(&a, "/healthz"), http_get(&b, "/readyz")))
            .await
            .unwrap();
    assert!(health.0.contains("200"), "{health:?}");
    assert!(ready.0.contains("200"), "{ready:?}");
    let metrics = tokio::task::spawn_blocking(move || http_get(&http_address, "/metrics"))
        .await
        .unwrap();
    assert!(metrics.0.contains("200"), "{metrics:?}");
    assert!(
        metrics.1.contains("tern_nameserver_brokers 1"),
        "{}",
        metrics.1
    );
    assert!(
        metrics.1.contains("tern_nameserver_topics 2"),
        "{}",
        metrics.1
    );
    assert!(
        metrics
            .1
            .contains("tern_nameserver_broker_last_seen_seconds{cluster=\"tern\",broker=\"b\"}"),
        "{}",
        metrics.1
    );
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
