//! A consumer that asks for messages and never reads its receive streams
//! (HTTP/2 flow control stops the broker's writes to it) holds up no other
//! client, and loses nothing: once it goes away, its leases expire and its
//! group receives every message.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[allow(dead_code, reason = "this test uses part of the shared support")]
mod grpc_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use grpc_support::{Server, code, ms, msg, req, res};
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::*;

const MESSAGES: usize = 200;

fn receive_request(group: &str, invisible_ms: u64) -> ReceiveMessageRequest {
    ReceiveMessageRequest {
        group: res(group),
        message_queue: Some(MessageQueue {
            topic: res("big"),
            id: -1,
            ..Default::default()
        }),
        filter_expression: Some(FilterExpression {
            r#type: FilterType::Tag as i32,
            expression: "*".into(),
        }),
        batch_size: 32,
        invisible_duration: ms(invisible_ms),
        auto_renew: false,
        long_polling_timeout: ms(1_000),
        attempt_id: None,
    }
}

/// Receives and acknowledges as `group` until `want` distinct bodies came
/// (or 60 s passed); the bodies.
async fn drain(server: &Server, group: &str, want: usize) -> HashSet<Vec<u8>> {
    let mut c = server.client().await;
    let mut got = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want && Instant::now() < deadline {
        let mut s = c
            .receive_message(req(receive_request(group, 30_000)))
            .await
            .unwrap()
            .into_inner();
        let mut handles = Vec::new();
        while let Some(item) = s.message().await.unwrap() {
            if let Some(Content::Message(m)) = item.content {
                let sp = m.system_properties.unwrap();
                handles.push(AckMessageEntry {
                    message_id: sp.message_id,
                    receipt_handle: sp.receipt_handle.unwrap(),
                    lite_topic: None,
                });
                got.insert(m.body);
            }
        }
        if !handles.is_empty() {
            let acked = c
                .ack_message(req(AckMessageRequest {
                    group: res(group),
                    topic: res("big"),
                    entries: handles,
                }))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(code(acked.status.as_ref()), Code::Ok as i32, "{acked:?}");
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_never_reads_holds_up_no_one_and_loses_nothing() {
    let server = Server::start_with(|cfg| cfg.store.max_body_bytes = 64 * 1024).await;
    server.create_topic("big", 2).await;
    let mut c = server.client().await;
    for i in 0..MESSAGES {
        let mut body = vec![b'x'; 60 * 1024];
        body[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let sent = c
            .send_message(req(SendMessageRequest {
                messages: vec![msg("big", (i % 2) as i32, &format!("m{i}"), &body)],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(sent.status.as_ref()), Code::Ok as i32, "{sent:?}");
    }

    // The slow consumer: twenty receives on its own connection, their
    // responses never read.
    let mut slow = server.client().await;
    let mut unread = Vec::new();
    for _ in 0..20 {
        unread.push(
            slow.receive_message(req(receive_request("slow", 2_000)))
                .await
                .unwrap(),
        );
    }

    // Everyone else is served: another group gets every message.
    let other = drain(&server, "other", MESSAGES).await;
    assert_eq!(
        other.len(),
        MESSAGES,
        "the other group got {} of {MESSAGES}",
        other.len()
    );

    // The slow one goes away; its leases run out and its group gets every
    // message (redelivery is fine, loss is not).
    drop(unread);
    drop(slow);
    let slow_group = drain(&server, "slow", MESSAGES).await;
    assert_eq!(
        slow_group.len(),
        MESSAGES,
        "the slow group got {} of {MESSAGES} after it came back",
        slow_group.len()
    );
    server.stop().await;
}
