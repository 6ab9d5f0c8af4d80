//! Protobuf in and out for the messaging client: building requests,
//! checking statuses, and checking delivered messages as they arrive.

use md5::{Digest as _, Md5};
use tern_model::{Message, TopicName};
pub(crate) use tern_protocol::endpoints::address_scheme;
pub(crate) use tern_protocol::settings::duration;
use tern_protocol::v2 as pb;

use crate::ClientError;
use crate::messages::{OutgoingMessage, ReceivedMessage, SendReceipt};
use crate::route::QueueRef;

/// The protobuf form of a message to send.
pub(crate) fn outgoing(
    topic: &TopicName,
    m: &OutgoingMessage,
    id: String,
    queue_id: u32,
    born: prost_types::Timestamp,
) -> pb::Message {
    pb::Message {
        topic: Some(resource(topic.as_str())),
        user_properties: m.properties.clone().into_iter().collect(),
        system_properties: Some(pb::SystemProperties {
            tag: m.tag.clone(),
            keys: m.keys.clone(),
            message_id: id,
            body_digest: Some(pb::Digest {
                r#type: pb::DigestType::Md5 as i32,
                checksum: md5_hex(&m.body),
            }),
            body_encoding: pb::Encoding::Identity as i32,
            message_type: pb::MessageType::Normal as i32,
            born_timestamp: Some(born),
            born_host: hostname(),
            queue_id: i32::try_from(queue_id).unwrap_or(i32::MAX),
            ..Default::default()
        }),
        body: m.body.clone(),
    }
}

/// The outcome of one sent message.
pub(crate) fn sent(
    action: &str,
    queue: &QueueRef,
    e: pb::SendResultEntry,
) -> Result<SendReceipt, ClientError> {
    check(action, e.status.as_ref())?;
    let offset = u64::try_from(e.offset)
        .map_err(|_| ClientError::bad_response(action, format!("negative offset {}", e.offset)))?;
    Ok(SendReceipt {
        message_id: e.message_id,
        broker: queue.broker.clone(),
        offset,
    })
}

pub(crate) fn resource(name: &str) -> pb::Resource {
    pb::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    }
}

/// `Ok` for an OK status; a missing status counts as OK.
pub(crate) fn check(action: &str, status: Option<&pb::Status>) -> Result<(), ClientError> {
    match status {
        Some(s) if s.code != pb::Code::Ok as i32 => Err(ClientError::Broker {
            action: action.to_owned(),
            code: s.code,
            message: s.message.clone(),
        }),
        _ => Ok(()),
    }
}

/// Checks a message against the limits every broker applies, so a bad
/// one fails here with a clear reason (the body size limit is the
/// broker's to say).
pub(crate) fn check_message(
    topic: &TopicName,
    m: &OutgoingMessage,
    id: &str,
) -> Result<(), ClientError> {
    let model = Message {
        topic: topic.clone(),
        queue_id: 0,
        message_id: id.to_owned(),
        tag: m.tag.clone(),
        keys: m.keys.clone(),
        properties: m.properties.clone(),
        body: m.body.clone(),
        born_timestamp_ms: 0,
        flags: 0,
    };
    model
        .validate(usize::MAX)
        .map_err(|e| ClientError::InvalidArgument(format!("message not sent: {e}")))
}

fn md5_hex(body: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(32);
    for b in Md5::digest(body) {
        let _ = write!(out, "{b:02X}");
    }
    out
}

fn timestamp_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000))
}

/// A delivered message, checked: it has system properties, a receipt
/// handle, a valid topic, non-negative queue and offset, and a body that
/// matches its MD5 digest when one is given.
pub(crate) fn received(
    action: &str,
    address: &str,
    m: pb::Message,
) -> Result<ReceivedMessage, ClientError> {
    let bad = |d: String| ClientError::bad_response(action, d);
    let sp = m
        .system_properties
        .ok_or_else(|| bad("a message without system properties".into()))?;
    let topic = TopicName::new(m.topic.map(|t| t.name).unwrap_or_default())
        .map_err(|e| bad(format!("message {}: {e}", sp.message_id)))?;
    let receipt_handle = sp
        .receipt_handle
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad(format!("message {} has no receipt handle", sp.message_id)))?;
    if let Some(d) = &sp.body_digest
        && d.r#type == pb::DigestType::Md5 as i32
        && !d.checksum.eq_ignore_ascii_case(&md5_hex(&m.body))
    {
        return Err(bad(format!(
            "message {}: body does not match its MD5 digest",
            sp.message_id
        )));
    }
    let queue_id = u32::try_from(sp.queue_id)
        .map_err(|_| bad(format!("message {}: negative queue id", sp.message_id)))?;
    let queue_offset = sp
        .queue_offset
        .and_then(|o| u64::try_from(o).ok())
        .ok_or_else(|| bad(format!("message {}: no queue offset", sp.message_id)))?;
    Ok(ReceivedMessage {
        topic,
        queue_id,
        queue_offset,
        tag: sp.tag,
        keys: sp.keys,
        properties: m.user_properties.into_iter().collect(),
        body: m.body,
        delivery_attempt: sp
            .delivery_attempt
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(1),
        born_timestamp_ms: sp.born_timestamp.as_ref().map_or(0, timestamp_ms),
        receipt_handle,
        broker_address: address.to_owned(),
        message_id: sp.message_id,
    })
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(body: &[u8], digest: &str) -> pb::Message {
        pb::Message {
            topic: Some(resource("orders")),
            user_properties: [("k".to_owned(), "v".to_owned())].into(),
            system_properties: Some(pb::SystemProperties {
                tag: Some("created".into()),
                keys: vec!["order-1".into()],
                message_id: "01AB".into(),
                body_digest: Some(pb::Digest {
                    r#type: pb::DigestType::Md5 as i32,
                    checksum: digest.into(),
                }),
                receipt_handle: Some("handle".into()),
                queue_id: 3,
                queue_offset: Some(7),
                delivery_attempt: Some(2),
                born_timestamp: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 5_000_000,
                }),
                ..Default::default()
            }),
            body: body.to_vec(),
        }
    }

    #[test]
    fn delivered_messages_are_checked() {
        let m = received(
            "t",
            "127.0.0.1:8081",
            delivered(b"", "d41d8cd98f00b204e9800998ecf8427e"),
        )
        .unwrap();
        assert_eq!(m.topic.as_str(), "orders");
        assert_eq!((m.queue_id, m.queue_offset, m.delivery_attempt), (3, 7, 2));
        assert_eq!(m.born_timestamp_ms, 1_700_000_000_005);
        assert_eq!(m.properties["k"], "v");
        assert_eq!(m.receipt_handle, "handle");

        let err = received(
            "t",
            "127.0.0.1:8081",
            delivered(b"x", "D41D8CD98F00B204E9800998ECF8427E"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MD5"), "{err}");

        let mut no_handle = delivered(b"", "D41D8CD98F00B204E9800998ECF8427E");
        if let Some(sp) = no_handle.system_properties.as_mut() {
            sp.receipt_handle = None;
        }
        assert!(received("t", "127.0.0.1:8081", no_handle).is_err());
    }

    #[test]
    fn statuses_other_than_ok_are_errors() {
        assert!(check("a", None).is_ok());
        let ok = pb::Status {
            code: pb::Code::Ok as i32,
            message: "OK".into(),
        };
        assert!(check("a", Some(&ok)).is_ok());
        let nf = pb::Status {
            code: pb::Code::TopicNotFound as i32,
            message: "topic x does not exist".into(),
        };
        let err = check("sending to topic x", Some(&nf)).unwrap_err();
        assert_eq!(err.rocketmq_code(), Some(pb::Code::TopicNotFound));
    }

    #[test]
    fn bad_messages_are_refused_before_sending() {
        let topic = TopicName::new("orders").unwrap();
        let empty = OutgoingMessage::default();
        let err = check_message(&topic, &empty, "01").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let ok = OutgoingMessage {
            body: b"hi".to_vec(),
            ..Default::default()
        };
        assert!(check_message(&topic, &ok, "01").is_ok());
    }
}
