//! The broker's consumption and operation semantics over real TCP:
//! offset-based pulls and offsets (`offsets`), notified long polling
//! (`longpoll`), `auto_renew` for push consumers (`renew`), back-pressure
//! on send (`backpressure`) and the HTTP metrics port (`metrics`).
#![allow(clippy::unwrap_used)]

#[path = "../grpc_support/mod.rs"]
mod grpc_support;

mod assignment;
mod backpressure;
mod longpoll;
mod metrics;
mod offsets;
mod renew;

use std::time::Duration;

use grpc_support::*;
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::receive_message_response::Content;
use tern_protocol::v2::*;
use tonic::Request;
use tonic::transport::Channel;

type Client = MessagingServiceClient<Channel>;

/// `t` as client `id` speaking `language`.
fn req_as<T>(t: T, id: &str, language: &str) -> Request<T> {
    let mut r = Request::new(t);
    r.metadata_mut()
        .insert("x-mq-client-id", id.parse().unwrap());
    r.metadata_mut()
        .insert("x-mq-language", language.parse().unwrap());
    r
}

fn queue(topic: &str, id: i32) -> Option<MessageQueue> {
    Some(MessageQueue {
        topic: res(topic),
        id,
        ..Default::default()
    })
}

/// Sends one message per `(queue, tag)`; returns the statuses.
async fn send(c: &mut Client, topic: &str, items: &[(i32, &str)]) -> Vec<i32> {
    let messages = items
        .iter()
        .enumerate()
        .map(|(i, &(q, tag))| {
            let mut m = msg(
                topic,
                q,
                &format!("{topic}-{q}-{i}-{tag}"),
                format!("body {i}").as_bytes(),
            );
            m.system_properties.as_mut().unwrap().tag = Some(tag.into());
            m
        })
        .collect();
    let r = c
        .send_message(req(SendMessageRequest { messages }))
        .await
        .unwrap()
        .into_inner();
    r.entries.iter().map(|e| code(e.status.as_ref())).collect()
}

/// One receive with every knob: the status and the messages.
#[allow(clippy::too_many_arguments)]
async fn receive_as(
    c: &mut Client,
    client_id: &str,
    group: &str,
    topic: &str,
    invisible_ms: Option<u64>,
    auto_renew: bool,
    poll_ms: u64,
    timeout: Option<Duration>,
) -> (i32, Vec<Message>) {
    let r = ReceiveMessageRequest {
        group: res(group),
        message_queue: queue(topic, -1),
        filter_expression: Some(FilterExpression {
            r#type: FilterType::Tag as i32,
            expression: "*".into(),
        }),
        batch_size: 16,
        invisible_duration: invisible_ms.and_then(ms),
        auto_renew,
        long_polling_timeout: ms(poll_ms),
        attempt_id: None,
    };
    let mut r = req_as(r, client_id, "JAVA");
    if let Some(t) = timeout {
        r.set_timeout(t);
    }
    let mut stream = c.receive_message(r).await.unwrap().into_inner();
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

fn attempt(m: &Message) -> i32 {
    m.system_properties
        .as_ref()
        .unwrap()
        .delivery_attempt
        .unwrap()
}

fn offset(m: &Message) -> i64 {
    m.system_properties.as_ref().unwrap().queue_offset.unwrap()
}
