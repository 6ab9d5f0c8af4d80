//! Protobuf to domain at the edge, and back for delivered messages.
//!
//! Incoming values are validated here, once; what passes is a
//! `tern_model` value the core can trust. Refusals are [`Status`] values
//! built through [`Client`], so the code mapping stays in `status`.

use std::time::Duration;

use md5::{Digest as _, Md5};
use tern_model::{GroupName, Message, MessageKind, TopicName, system};
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

/// What a sent message must obey: the broker's body limit and how far
/// ahead a delivery time may lie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_body: usize,
    pub max_delay_ms: i64,
}

/// A message as sent, validated: the topic name, the queue id, the kind
/// (FIFO with its message group, DELAY with its delivery time,
/// TRANSACTION) kept in the flags and reserved properties, and the limits
/// every stored message obeys. A message group or a delivery time on a
/// message of unspecified or NORMAL type makes it FIFO or DELAY, as the
/// SDKs that leave the type unset mean. The topic's existence and queue
/// count are checked by the caller.
pub(crate) fn message_in(c: &Client, m: v2::Message, limits: Limits) -> Result<Message, Status> {
    let topic = topic_name(c, m.topic.as_ref())?;
    let sp = m.system_properties.unwrap_or_default();
    let declared = v2::MessageType::try_from(sp.message_type).unwrap_or_default();
    let group = sp.message_group.filter(|g| !g.is_empty());
    let due = sp.delivery_timestamp.as_ref().map(timestamp_ms);
    let kind = match (declared, &group, due) {
        (v2::MessageType::Fifo, Some(_), None) => MessageKind::Fifo,
        (v2::MessageType::Fifo, None, _) => {
            return Err(c.status(
                Code::IllegalMessageGroup,
                "a FIFO message needs a message group",
            ));
        }
        (v2::MessageType::Delay, None, Some(_)) => MessageKind::Delay,
        (v2::MessageType::Delay, _, None) => {
            return Err(c.status(
                Code::IllegalDeliveryTime,
                "a DELAY message needs a delivery timestamp",
            ));
        }
        (v2::MessageType::Transaction, None, None) => MessageKind::Transaction,
        (v2::MessageType::Normal | v2::MessageType::Unspecified, None, None) => MessageKind::Normal,
        (v2::MessageType::Normal | v2::MessageType::Unspecified, Some(_), None) => {
            MessageKind::Fifo
        }
        (v2::MessageType::Normal | v2::MessageType::Unspecified, None, Some(_)) => {
            MessageKind::Delay
        }
        (t, _, _) => {
            return Err(c.status(
                Code::MessagePropertyConflictWithType,
                format!(
                    "a {} message cannot carry {}",
                    t.as_str_name(),
                    match (&group, due) {
                        (Some(_), Some(_)) => "both a message group and a delivery timestamp",
                        (Some(_), None) => "a message group",
                        _ => "a delivery timestamp",
                    }
                ),
            ));
        }
    };
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
    if let Some(name) = m.user_properties.keys().find(|k| system::is_reserved(k)) {
        return Err(c.status(
            Code::IllegalMessagePropertyKey,
            format!(
                "property {name:?}: names starting with {:?} are reserved",
                system::PREFIX
            ),
        ));
    }
    let now = now_ms();
    let mut properties: std::collections::BTreeMap<String, String> =
        m.user_properties.into_iter().collect();
    if let Some(g) = group {
        properties.insert(system::MESSAGE_GROUP.to_owned(), g);
    }
    if let Some(at) = due {
        if at.saturating_sub(now) > limits.max_delay_ms {
            return Err(c.status(
                Code::IllegalDeliveryTime,
                format!(
                    "delivery time is {} s ahead; the limit is {} s",
                    at.saturating_sub(now) / 1000,
                    limits.max_delay_ms / 1000
                ),
            ));
        }
        properties.insert(system::DELIVER_AT.to_owned(), at.to_string());
    }
    let mut msg = Message {
        topic,
        queue_id,
        message_id: sp.message_id,
        tag: sp.tag.filter(|t| !t.is_empty()),
        keys: sp.keys,
        properties,
        body: m.body,
        born_timestamp_ms: sp.born_timestamp.as_ref().map_or(now, timestamp_ms),
        flags: 0,
    };
    msg.set_kind(kind);
    msg.validate(limits.max_body)
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

/// A stored message as clients see it: its system properties (kind,
/// message group, delivery time, digest, times, queue place) and its user
/// properties without the reserved ones. Delivery fields (receipt,
/// invisibility, attempt) are the caller's.
pub(crate) fn stored_message_out(
    m: Message,
    store_timestamp_ms: i64,
    queue_offset: u64,
) -> v2::Message {
    let message_type = match m.kind() {
        MessageKind::Normal => v2::MessageType::Normal,
        MessageKind::Fifo => v2::MessageType::Fifo,
        MessageKind::Delay => v2::MessageType::Delay,
        MessageKind::Transaction => v2::MessageType::Transaction,
    };
    let message_group = m.message_group().map(str::to_owned);
    let delivery_timestamp = m.deliver_at_ms().map(timestamp);
    let sp = v2::SystemProperties {
        tag: m.tag,
        keys: m.keys,
        message_id: m.message_id,
        body_digest: Some(v2::Digest {
            r#type: v2::DigestType::Md5 as i32,
            checksum: md5_hex(&m.body),
        }),
        body_encoding: v2::Encoding::Identity as i32,
        message_type: message_type as i32,
        message_group,
        delivery_timestamp,
        born_timestamp: Some(timestamp(m.born_timestamp_ms)),
        store_timestamp: Some(timestamp(store_timestamp_ms)),
        queue_id: i32::try_from(m.queue_id).unwrap_or(i32::MAX),
        queue_offset: Some(i64::try_from(queue_offset).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: m.topic.to_string(),
        }),
        user_properties: m
            .properties
            .into_iter()
            .filter(|(k, _)| !system::is_reserved(k))
            .collect(),
        system_properties: Some(sp),
        body: m.body,
    }
}

/// A delivered message as the client receives it.
pub(crate) fn message_out(d: Delivery, now: i64) -> v2::Message {
    let stored = d.message;
    let mut out = stored_message_out(
        stored.message,
        stored.store_timestamp_ms,
        stored.queue_offset,
    );
    if let Some(sp) = out.system_properties.as_mut() {
        sp.receipt_handle = Some(d.receipt);
        sp.invisible_duration = Some(duration(Duration::from_millis(
            u64::try_from(d.invisible_until_ms.saturating_sub(now)).unwrap_or(0),
        )));
        sp.delivery_attempt = Some(i32::try_from(d.attempt).unwrap_or(i32::MAX));
    }
    out
}

/// The protocol permission of a topic permission.
pub(crate) fn permission(p: Permission) -> v2::Permission {
    p.into()
}

/// The message types a topic of type `t` accepts.
pub(crate) fn accepted_types(t: MessageType) -> Vec<i32> {
    tern_protocol::convert::accepted_types(t)
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

    const LIMITS: Limits = Limits {
        max_body: 10,
        max_delay_ms: 60_000,
    };

    #[test]
    fn message_in_validates() {
        let m = message_in(&client(), proto(b"hi"), LIMITS).unwrap();
        assert_eq!(m.kind(), MessageKind::Normal);
        assert_eq!(m.topic.as_str(), "orders");
        assert_eq!(m.queue_id, 2);
        assert_eq!(m.tag.as_deref(), Some("created"));
        assert_eq!(m.born_timestamp_ms, 1_700_000_000_123);
        assert_eq!(m.properties["a"], "1");
        let empty = message_in(&client(), proto(b""), LIMITS).unwrap_err();
        assert_eq!(empty.code, Code::MessageBodyEmpty as i32);
        let big = message_in(&client(), proto(&[0; 11]), LIMITS).unwrap_err();
        assert_eq!(big.code, Code::MessageBodyTooLarge as i32);
        let mut bad = proto(b"x");
        bad.topic = None;
        assert_eq!(
            message_in(&client(), bad, LIMITS).unwrap_err().code,
            Code::IllegalTopic as i32
        );
    }

    fn with(f: impl FnOnce(&mut v2::SystemProperties)) -> v2::Message {
        let mut m = proto(b"x");
        f(m.system_properties.as_mut().unwrap());
        m
    }

    fn code(m: v2::Message) -> i32 {
        message_in(&client(), m, LIMITS).unwrap_err().code
    }

    #[test]
    fn message_kinds() {
        use v2::MessageType as T;
        let fifo = with(|sp| sp.message_group = Some("g1".into()));
        let m = message_in(&client(), fifo, LIMITS).unwrap();
        assert_eq!(
            (m.kind(), m.message_group()),
            (MessageKind::Fifo, Some("g1"))
        );
        let out = message_out(
            Delivery {
                message: tern_store::StoredMessage {
                    position: 0,
                    size: 0,
                    message: m,
                    queue_offset: 0,
                    store_timestamp_ms: 1,
                },
                receipt: String::new(),
                attempt: 1,
                invisible_until_ms: 0,
            },
            0,
        );
        let sp = out.system_properties.unwrap();
        assert_eq!(sp.message_type, T::Fifo as i32);
        assert_eq!(sp.message_group.as_deref(), Some("g1"));
        assert_eq!(out.user_properties.len(), 1, "reserved properties hidden");

        let at = now_ms() + 5_000;
        let delay = with(|sp| {
            sp.message_type = T::Delay as i32;
            sp.delivery_timestamp = Some(timestamp(at));
        });
        let m = message_in(&client(), delay, LIMITS).unwrap();
        assert_eq!(
            (m.kind(), m.deliver_at_ms()),
            (MessageKind::Delay, Some(at))
        );
        let tx = with(|sp| sp.message_type = T::Transaction as i32);
        assert_eq!(
            message_in(&client(), tx, LIMITS).unwrap().kind(),
            MessageKind::Transaction
        );

        assert_eq!(
            code(with(|sp| sp.message_type = T::Fifo as i32)),
            Code::IllegalMessageGroup as i32
        );
        assert_eq!(
            code(with(|sp| sp.message_type = T::Delay as i32)),
            Code::IllegalDeliveryTime as i32
        );
        assert_eq!(
            code(with(
                |sp| sp.delivery_timestamp = Some(timestamp(now_ms() + 3_600_000))
            )),
            Code::IllegalDeliveryTime as i32,
            "beyond max_delay"
        );
        assert_eq!(
            code(with(|sp| {
                sp.message_type = T::Transaction as i32;
                sp.message_group = Some("g".into());
            })),
            Code::MessagePropertyConflictWithType as i32
        );
        let mut reserved = proto(b"x");
        reserved
            .user_properties
            .insert("__tern.group".into(), "x".into());
        assert_eq!(code(reserved), Code::IllegalMessagePropertyKey as i32);
    }

    #[test]
    fn digest() {
        assert_eq!(md5_hex(b""), "D41D8CD98F00B204E9800998ECF8427E");
    }
}
