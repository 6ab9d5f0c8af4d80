//! Protobuf to domain at the edge, and back for delivered messages.
//!
//! Incoming values are validated here, once; what passes is a
//! `tern_model` value the core can trust. Refusals are [`Status`] values
//! built through [`Client`], so the code mapping stays in `status`.

use std::time::Duration;

use md5::{Digest as _, Md5};
use tern_model::{GroupName, Message, TopicName};
pub(crate) use tern_protocol::endpoints::endpoints;
use tern_protocol::v2::{self, Code, Status};

use super::status::Client;
use crate::meta::{MessageType, Permission};
use crate::pop::Delivery;

pub(crate) use tern_model::now_ms;

/// The topic a resource names; `ILLEGAL_TOPIC` if the name is invalid.
pub(crate) fn topic_name(c: &Client, r: Option<&v2::Resource>) -> Result<TopicName, Status> {
    let name = r.map(|r| r.name.as_str()).unwrap_or_default();
    TopicName::new(name).map_err(|e| c.status(Code::IllegalTopic, format!("topic: {e}")))
}

/// The group a resource names; `ILLEGAL_CONSUMER_GROUP` if the name is
/// invalid.
pub(crate) fn group_name(c: &Client, r: Option<&v2::Resource>) -> Result<GroupName, Status> {
    let name = r.map(|r| r.name.as_str()).unwrap_or_default();
    GroupName::new(name).map_err(|e| c.status(Code::IllegalConsumerGroup, format!("group: {e}")))
}

/// A protobuf duration in milliseconds (negative if negative).
pub(crate) fn duration_ms(d: &prost_types::Duration) -> i64 {
    d.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(d.nanos / 1_000_000))
}

pub(crate) fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

fn timestamp_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000))
}

/// A message as sent, validated: the topic name, the queue id, the
/// message type (only NORMAL is stored so far), and the limits every
/// stored message obeys (`max_body`). The topic's existence and queue
/// count are checked by the caller.
pub(crate) fn message_in(c: &Client, m: v2::Message, max_body: usize) -> Result<Message, Status> {
    let topic = topic_name(c, m.topic.as_ref())?;
    let sp = m.system_properties.unwrap_or_default();
    let kind = v2::MessageType::try_from(sp.message_type).unwrap_or_default();
    if !matches!(kind, v2::MessageType::Normal | v2::MessageType::Unspecified)
        || sp.delivery_timestamp.is_some()
    {
        return Err(c.status(
            Code::Unsupported,
            format!(
                "message type {} is not supported yet; only NORMAL messages are",
                kind.as_str_name()
            ),
        ));
    }
    let queue_id = u32::try_from(sp.queue_id).map_err(|_| {
        c.status(
            Code::BadRequest,
            format!("queue id {} is negative", sp.queue_id),
        )
    })?;
    if sp.body_encoding == v2::Encoding::Gzip as i32 {
        return Err(c.status(
            Code::Unsupported,
            "GZIP-encoded bodies are not supported yet",
        ));
    }
    let msg = Message {
        topic,
        queue_id,
        message_id: sp.message_id,
        tag: sp.tag.filter(|t| !t.is_empty()),
        keys: sp.keys,
        properties: m.user_properties.into_iter().collect(),
        body: m.body,
        born_timestamp_ms: sp.born_timestamp.as_ref().map_or_else(now_ms, timestamp_ms),
        flags: 0,
    };
    msg.validate(max_body)
        .map_err(|e| c.error(&crate::BrokerError::from(e)))?;
    Ok(msg)
}

/// MD5 of `body` as upper-case hex, as RocketMQ clients check it.
pub(crate) fn md5_hex(body: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Md5::digest(body);
    let mut out = String::with_capacity(32);
    for b in digest {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// A delivered message as the client receives it.
pub(crate) fn message_out(d: Delivery, now: i64) -> v2::Message {
    let stored = d.message;
    let m = stored.message;
    let sp = v2::SystemProperties {
        tag: m.tag,
        keys: m.keys,
        message_id: m.message_id,
        body_digest: Some(v2::Digest {
            r#type: v2::DigestType::Md5 as i32,
            checksum: md5_hex(&m.body),
        }),
        body_encoding: v2::Encoding::Identity as i32,
        message_type: v2::MessageType::Normal as i32,
        born_timestamp: Some(timestamp(m.born_timestamp_ms)),
        store_timestamp: Some(timestamp(stored.store_timestamp_ms)),
        receipt_handle: Some(d.receipt),
        queue_id: i32::try_from(m.queue_id).unwrap_or(i32::MAX),
        queue_offset: Some(i64::try_from(stored.queue_offset).unwrap_or(i64::MAX)),
        invisible_duration: Some(duration(Duration::from_millis(
            u64::try_from(d.invisible_until_ms.saturating_sub(now)).unwrap_or(0),
        ))),
        delivery_attempt: Some(i32::try_from(d.attempt).unwrap_or(i32::MAX)),
        ..Default::default()
    };
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: m.topic.to_string(),
        }),
        user_properties: m.properties.into_iter().collect(),
        system_properties: Some(sp),
        body: m.body,
    }
}

/// The protocol permission of a topic permission.
pub(crate) fn permission(p: Permission) -> v2::Permission {
    match p {
        Permission::ReadWrite => v2::Permission::ReadWrite,
        Permission::Read => v2::Permission::Read,
        Permission::Write => v2::Permission::Write,
    }
}

/// The message types a topic of type `t` accepts.
pub(crate) fn accepted_types(t: MessageType) -> Vec<i32> {
    use v2::MessageType as M;
    let all = match t {
        MessageType::Normal => vec![M::Normal],
        MessageType::Fifo => vec![M::Fifo],
        MessageType::Delay => vec![M::Delay],
        MessageType::Transaction => vec![M::Transaction],
        MessageType::Mixed => vec![M::Normal, M::Fifo, M::Delay, M::Transaction],
    };
    all.into_iter().map(|m| m as i32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            id: "c".into(),
            legacy: false,
        }
    }

    fn proto(body: &[u8]) -> v2::Message {
        v2::Message {
            topic: Some(v2::Resource {
                resource_namespace: String::new(),
                name: "orders".into(),
            }),
            user_properties: [("a".to_owned(), "1".to_owned())].into(),
            system_properties: Some(v2::SystemProperties {
                tag: Some("created".into()),
                keys: vec!["k".into()],
                message_id: "01AB".into(),
                queue_id: 2,
                born_timestamp: Some(timestamp(1_700_000_000_123)),
                ..Default::default()
            }),
            body: body.to_vec(),
        }
    }

    #[test]
    fn message_in_validates() {
        let m = message_in(&client(), proto(b"hi"), 10).unwrap();
        assert_eq!(m.topic.as_str(), "orders");
        assert_eq!(m.queue_id, 2);
        assert_eq!(m.tag.as_deref(), Some("created"));
        assert_eq!(m.born_timestamp_ms, 1_700_000_000_123);
        assert_eq!(m.properties["a"], "1");
        let empty = message_in(&client(), proto(b""), 10).unwrap_err();
        assert_eq!(empty.code, Code::MessageBodyEmpty as i32);
        let big = message_in(&client(), proto(&[0; 11]), 10).unwrap_err();
        assert_eq!(big.code, Code::MessageBodyTooLarge as i32);
        let mut bad = proto(b"x");
        bad.topic = None;
        assert_eq!(
            message_in(&client(), bad, 10).unwrap_err().code,
            Code::IllegalTopic as i32
        );
    }

    #[test]
    fn digest() {
        assert_eq!(md5_hex(b""), "D41D8CD98F00B204E9800998ECF8427E");
    }
}
