//! Bad input against a real `tern standalone` process: every request gets a
//! clear answer, the process stays up, and nothing is stored or lost.
//!
//! Covered here (the in-process broker tests cover the rest): malformed and
//! truncated gRPC frames (sent as raw HTTP/2), a request without a client id,
//! an empty body, invalid topic and group names, forged and stale receipt
//! handles, a body over the default 4 MiB limit, and consumers that vanish
//! in the middle of a receive (a consumer *process* killed mid-receive is in
//! `scenarios.rs`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use tern_harness::TernProcess;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{
    CreateGroupRequest, CreateTopicRequest, DescribeTopicRequest, Group, Topic,
};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::*;
use tonic::Request;
use tonic::transport::Channel;

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const FOUR_MIB: usize = 4 * 1024 * 1024;

/// A `tern standalone` on a free port, with its data in a temporary
/// directory.
struct Tern {
    process: TernProcess,
    addr: String,
    _tmp: tempfile::TempDir,
}

impl Tern {
    async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let data = tmp.path().join("data");
        let listen = addr.clone();
        let process = tokio::task::spawn_blocking(move || {
            let mut p = TernProcess::standalone_with(TERN, data, &["--listen", &listen]).unwrap();
            p.wait_for_log("listening", Duration::from_secs(30))
                .unwrap();
            p
        })
        .await
        .unwrap();
        Self {
            process,
            addr,
            _tmp: tmp,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn client(&self) -> MessagingServiceClient<Channel> {
        MessagingServiceClient::new(self.channel().await)
    }

    async fn admin(&self) -> TernAdminClient<Channel> {
        TernAdminClient::new(self.channel().await)
    }

    async fn create_topic(&self, name: &str) {
        self.admin()
            .await
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: name.into(),
                    queue_count: 1,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }

    /// Messages stored in `topic` (it has one queue).
    async fn stored(&self, topic: &str) -> u64 {
        let d = self
            .admin()
            .await
            .describe_topic(DescribeTopicRequest { name: topic.into() })
            .await
            .unwrap()
            .into_inner();
        d.queues.iter().map(|q| q.max_offset - q.min_offset).sum()
    }

    /// Asserts that `topic` holds exactly `n` messages. The queue index is
    /// written just after a send is answered, so this waits (at most 5 s)
    /// for `n` to show, then checks that no more are there.
    async fn assert_stored(&self, topic: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.stored(topic).await < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(self.stored(topic).await, n, "messages stored in {topic}");
    }

    /// The process is still running and answers a well-formed request.
    async fn assert_alive(&mut self) {
        assert!(
            self.process.try_wait().unwrap().is_none(),
            "tern exited; log:\n{}",
            self.process.log().unwrap_or_default()
        );
        let r = self
            .client()
            .await
            .query_route(req(QueryRouteRequest {
                topic: res("absent-topic"),
                endpoints: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::TopicNotFound as i32);
    }

    async fn stop(mut self) {
        tokio::task::spawn_blocking(move || self.process.terminate().unwrap())
            .await
            .unwrap();
    }
}

/// `t` with client id and language metadata, as the SDKs send them.
fn req<T>(t: T) -> Request<T> {
    let mut r = Request::new(t);
    r.metadata_mut()
        .insert("x-mq-client-id", "bad-input-test".parse().unwrap());
    r.metadata_mut()
        .insert("x-mq-language", "JAVA".parse().unwrap());
    r
}

fn res(name: &str) -> Option<Resource> {
    Some(Resource {
        resource_namespace: String::new(),
        name: name.into(),
    })
}

fn code(s: Option<&Status>) -> i32 {
    s.map_or(0, |s| s.code)
}

fn ms(n: u64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: i64::try_from(n / 1000).unwrap(),
        nanos: i32::try_from(n % 1000).unwrap() * 1_000_000,
    })
}

fn message(topic: &str, id: &str, body: Vec<u8>) -> Message {
    Message {
        topic: res(topic),
        user_properties: Default::default(),
        system_properties: Some(SystemProperties {
            message_id: id.into(),
            message_type: MessageType::Normal as i32,
            ..Default::default()
        }),
        body,
    }
}

fn send_request(topic: &str, id: &str, body: Vec<u8>) -> SendMessageRequest {
    SendMessageRequest {
        messages: vec![message(topic, id, body)],
    }
}

fn receive_request(
    topic: &str,
    group: &str,
    invisible_ms: u64,
    poll_ms: u64,
) -> ReceiveMessageRequest {
    ReceiveMessageRequest {
        group: res(group),
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
    }
}

/// One receive: the status code and the messages.
async fn receive(
    c: &mut MessagingServiceClient<Channel>,
    topic: &str,
    group: &str,
    invisible_ms: u64,
    poll_ms: u64,
) -> (i32, Vec<Message>) {
    let mut stream = c
        .receive_message(req(receive_request(topic, group, invisible_ms, poll_ms)))
        .await
        .unwrap()
        .into_inner();
    let mut status = 0;
    let mut messages = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        match item.content.unwrap() {
            Content::Status(s) => status = s.code,
            Content::Message(m) => messages.push(m),
            Content::DeliveryTimestamp(_) => {}
        }
    }
    (status, messages)
}

fn handle(m: &Message) -> String {
    m.system_properties
        .as_ref()
        .unwrap()
        .receipt_handle
        .clone()
        .unwrap()
}

fn attempt(m: &Message) -> i32 {
    m.system_properties
        .as_ref()
        .unwrap()
        .delivery_attempt
        .unwrap()
}

async fn ack(c: &mut MessagingServiceClient<Channel>, topic: &str, group: &str, h: &str) -> i32 {
    let r = c
        .ack_message(req(AckMessageRequest {
            group: res(group),
            topic: res(topic),
            entries: vec![AckMessageEntry {
                message_id: String::new(),
                receipt_handle: h.into(),
                lite_topic: None,
            }],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.entries.len(), 1, "{r:?}");
    code(r.entries[0].status.as_ref())
}

/// Sends one gRPC call as raw HTTP/2 with `frame` as the request body
/// (the 5-byte length prefix included, so it can lie); returns the
/// `grpc-status` the server answered (from the headers or the trailers) and
/// the response body.
async fn raw_call(addr: &str, method: &str, frame: Vec<u8>) -> (String, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{addr}/apache.rocketmq.v2.MessagingService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-mq-client-id", "raw-h2-test")
        .header("x-mq-language", "JAVA")
        .body(())
        .unwrap();
    let (response, mut body) = h2.send_request(request, false).unwrap();
    body.send_data(Bytes::from(frame), true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("no answer to a bad frame within 10 s")
        .unwrap();
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut received = Vec::new();
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        received.extend_from_slice(&chunk);
    }
    let status = match in_headers {
        Some(s) => s,
        None => {
            let trailers = body.trailers().await.unwrap().unwrap_or_default();
            trailers
                .get("grpc-status")
                .expect("an answer without grpc-status")
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    drop(h2);
    driver.abort();
    (status, received)
}

/// A gRPC length-prefixed frame: compression flag, big-endian length,
/// then `payload`.
fn frame(declared_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&declared_len.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_truncated_grpc_frames_get_an_error_and_store_nothing() {
    let mut tern = Tern::start().await;
    tern.create_topic("frames").await;
    let valid = send_request("frames", "F1", b"payload".to_vec()).encode_to_vec();

    // A field whose length runs past the end of the message.
    let malformed = [0x0a, 0x20, 0x0a, 0x01];
    let (status, _) = raw_call(
        &tern.addr,
        "SendMessage",
        frame(u32::try_from(malformed.len()).unwrap(), &malformed),
    )
    .await;
    assert_ne!(status, "0", "a malformed message was answered OK");

    // The frame promises more bytes than the stream carries.
    let cut = &valid[..valid.len() / 2];
    let (status, _) = raw_call(
        &tern.addr,
        "SendMessage",
        frame(u32::try_from(valid.len()).unwrap(), cut),
    )
    .await;
    assert_ne!(status, "0", "a truncated frame was answered OK");

    // Not even a whole frame header.
    let (status, _) = raw_call(&tern.addr, "SendMessage", vec![0, 0, 0]).await;
    assert_ne!(status, "0", "a partial frame header was answered OK");

    // A frame flagged compressed, with no compression negotiated.
    let mut compressed = frame(u32::try_from(valid.len()).unwrap(), &valid);
    compressed[0] = 1;
    let (status, _) = raw_call(&tern.addr, "SendMessage", compressed).await;
    assert_ne!(
        status, "0",
        "an unexpected compressed frame was answered OK"
    );

    // The same frame, whole and well-formed, is stored: the raw calls above
    // were not refused for some other reason.
    tern.assert_alive().await;
    let (status, body) = raw_call(
        &tern.addr,
        "SendMessage",
        frame(u32::try_from(valid.len()).unwrap(), &valid),
    )
    .await;
    assert_eq!(status, "0");
    let answer = SendMessageResponse::decode(body.get(5..).unwrap_or_default()).unwrap();
    assert_eq!(code(answer.status.as_ref()), Code::Ok as i32, "{answer:?}");
    // Only that one: none of the bad frames stored anything.
    tern.assert_stored("frames", 1).await;
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_client_id_empty_body_and_invalid_names_store_nothing() {
    let mut tern = Tern::start().await;
    tern.create_topic("orders").await;
    let mut c = tern.client().await;

    // No x-mq-client-id.
    let r = c
        .send_message(Request::new(send_request("orders", "N1", b"x".to_vec())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::ClientIdRequired as i32);

    // Empty body.
    let r = c
        .send_message(req(send_request("orders", "E1", Vec::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::MessageBodyEmpty as i32);

    // Invalid topic names: characters outside [A-Za-z0-9%|_-], too long, empty.
    for bad in ["bad topic", "orders/../x", &"t".repeat(200), ""] {
        let r = c
            .send_message(req(send_request(bad, "T1", b"x".to_vec())))
            .await
            .unwrap()
            .into_inner();
        let got = code(r.status.as_ref());
        assert!(
            got == Code::IllegalTopic as i32 || got == Code::BadRequest as i32,
            "send to topic {bad:?}: {r:?}"
        );
    }

    // Invalid group names on receive: one status item, no message.
    for bad in ["bad group", "g\u{e9}", ""] {
        let (status, messages) = receive(&mut c, "orders", bad, 10_000, 1_000).await;
        assert!(
            status == Code::IllegalConsumerGroup as i32 || status == Code::BadRequest as i32,
            "receive for group {bad:?}: {status}"
        );
        assert!(messages.is_empty());
    }

    // The admin service refuses invalid names too.
    let mut admin = tern.admin().await;
    let e = admin
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: "no spaces allowed".into(),
                queue_count: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let e = admin
        .create_group(CreateGroupRequest {
            group: Some(Group {
                name: "bad/group".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    tern.assert_alive().await;
    // A good send after all that: it is the only message stored.
    let r = c
        .send_message(req(send_request("orders", "G1", b"good".to_vec())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    tern.assert_stored("orders", 1).await;
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_stale_receipt_handles_are_refused() {
    let tern = Tern::start().await;
    tern.create_topic("tasks").await;
    let mut c = tern.client().await;
    let r = c
        .send_message(req(send_request("tasks", "R1", b"job".to_vec())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    let (_, got) = receive(&mut c, "tasks", "workers", 30_000, 5_000).await;
    assert_eq!(got.len(), 1);
    let real = handle(&got[0]);

    let invalid = Code::InvalidReceiptHandle as i32;
    // Made up from nothing.
    assert_eq!(ack(&mut c, "tasks", "workers", "forged").await, invalid);
    assert_eq!(ack(&mut c, "tasks", "workers", "").await, invalid);
    // A real handle with one character changed in the middle.
    let mut tampered = real.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(ack(&mut c, "tasks", "workers", &tampered).await, invalid);
    // The real handle, presented by another group.
    assert_eq!(ack(&mut c, "tasks", "others", &real).await, invalid);
    // ChangeInvisibleDuration checks handles too.
    let r = c
        .change_invisible_duration(req(ChangeInvisibleDurationRequest {
            group: res("workers"),
            topic: res("tasks"),
            receipt_handle: tampered,
            invisible_duration: ms(10_000),
            message_id: "R1".into(),
            lite_topic: None,
            suspend: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), invalid);

    // None of that settled the message: the real handle still works, once.
    assert_eq!(
        ack(&mut c, "tasks", "workers", &real).await,
        Code::Ok as i32
    );
    assert_eq!(ack(&mut c, "tasks", "workers", &real).await, invalid);
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_up_to_four_mib_are_stored_and_larger_ones_refused() {
    let mut tern = Tern::start().await;
    tern.create_topic("blobs").await;
    let mut c = tern.client().await.max_decoding_message_size(2 * FOUR_MIB);

    // Both calls first, then the verdicts: a failure report shows both.
    let over = c
        .send_message(req(send_request("blobs", "B1", vec![7u8; FOUR_MIB + 1])))
        .await
        .map(tonic::Response::into_inner);
    let limit = c
        .send_message(req(send_request("blobs", "B2", vec![7u8; FOUR_MIB])))
        .await
        .map(tonic::Response::into_inner);
    tern.assert_alive().await;
    let verdict = |r: &Result<SendMessageResponse, tonic::Status>| match r {
        Ok(r) => Ok(code(r.status.as_ref())),
        Err(e) => Err(format!("call failed: {:?} {}", e.code(), e.message())),
    };
    assert_eq!(
        (verdict(&over), verdict(&limit)),
        (Ok(Code::MessageBodyTooLarge as i32), Ok(Code::Ok as i32)),
        "(4 MiB + 1 byte, exactly 4 MiB)"
    );
    // Only the second: the refused body was not stored.
    tern.assert_stored("blobs", 1).await;
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_vanishes_mid_receive_loses_nothing() {
    let tern = Tern::start().await;
    tern.create_topic("mail").await;

    // 1. A consumer waiting in a long poll drops its stream, then a message
    // arrives: it must reach the next consumer (at once, or after the 3 s
    // invisibility if the broker handed it to the dropped poll).
    let mut gone = tern.client().await;
    let waiting = tokio::spawn(async move {
        gone.receive_message(req(receive_request("mail", "senders", 3_000, 20_000)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    waiting.abort();
    let _ = waiting.await;
    let mut c = tern.client().await;
    let r = c
        .send_message(req(send_request("mail", "M1", b"hello".to_vec())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    let started = Instant::now();
    let mut got = Vec::new();
    while got.is_empty() && started.elapsed() < Duration::from_secs(15) {
        got = receive(&mut c, "mail", "senders", 30_000, 5_000).await.1;
    }
    assert_eq!(got.len(), 1, "the message was lost with the dropped poll");
    assert_eq!(
        ack(&mut c, "mail", "senders", &handle(&got[0])).await,
        Code::Ok as i32
    );

    // 2. A consumer receives a message and vanishes (its connection closes)
    // without acking: the message comes back after its invisibility, with
    // the next delivery attempt.
    let r = c
        .send_message(req(send_request("mail", "M2", b"again".to_vec())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Ok as i32);
    {
        let mut doomed = tern.client().await;
        let (_, taken) = receive(&mut doomed, "mail", "senders", 3_000, 5_000).await;
        assert_eq!(taken.len(), 1);
        assert_eq!(attempt(&taken[0]), 1);
    } // dropped: channel and connection gone
    let taken_at = Instant::now();
    let (_, early) = receive(&mut c, "mail", "senders", 30_000, 1_000).await;
    assert!(
        early.is_empty() || taken_at.elapsed() >= Duration::from_millis(2_900),
        "redelivered while still invisible"
    );
    let mut back = early;
    while back.is_empty() && taken_at.elapsed() < Duration::from_secs(15) {
        back = receive(&mut c, "mail", "senders", 30_000, 5_000).await.1;
    }
    assert_eq!(
        back.len(),
        1,
        "the vanished consumer's message never came back"
    );
    let sp = back[0].system_properties.as_ref().unwrap();
    assert_eq!(sp.message_id, "M2");
    assert_eq!(sp.delivery_attempt, Some(2));
    assert_eq!(
        ack(&mut c, "mail", "senders", &handle(&back[0])).await,
        Code::Ok as i32
    );
    tern.stop().await;
}
