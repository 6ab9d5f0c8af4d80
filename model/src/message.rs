use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::TopicName;

/// Longest message id, tag, key, property name or value accepted, in bytes.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;
/// Most keys one message may carry.
pub const MAX_KEYS: usize = 64;
/// Most user properties one message may carry.
pub const MAX_PROPERTIES: usize = 128;

/// A message as a producer hands it to the broker, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: TopicName,
    pub queue_id: u32,
    /// Client-assigned unique id (RocketMQ's `UNIQ_KEY`).
    pub message_id: String,
    pub tag: Option<String>,
    pub keys: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Milliseconds since the Unix epoch, as the producer stamped it.
    pub born_timestamp_ms: i64,
    /// Bit flags owned by the broker (message type and the like).
    pub flags: u32,
}

/// What kind of message this is, as the producer declared it. Kept in
/// the low two bits of [`Message::flags`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MessageKind {
    #[default]
    Normal,
    /// Ordered within its message group ([`system::MESSAGE_GROUP`]).
    Fifo,
    /// Held back until its delivery time ([`system::DELIVER_AT`]).
    Delay,
    /// Held back until its transaction is committed.
    Transaction,
}

/// The bits of [`Message::flags`] that hold the [`MessageKind`].
pub const KIND_MASK: u32 = 0b11;

/// Property names the broker keeps with a message for itself. They share
/// the prefix [`system::PREFIX`], which producers may not use; they are
/// stored like user properties and hidden again on delivery.
pub mod system {
    /// The prefix of every reserved property name.
    pub const PREFIX: &str = "__tern.";
    /// The message group of a FIFO message.
    pub const MESSAGE_GROUP: &str = "__tern.group";
    /// When a delayed message is due, in ms since the Unix epoch.
    pub const DELIVER_AT: &str = "__tern.deliver_at";
    /// The topic a parked (delayed or half) message belongs to.
    pub const REAL_TOPIC: &str = "__tern.topic";

    /// Whether `name` is reserved for the broker.
    pub fn is_reserved(name: &str) -> bool {
        name.starts_with(PREFIX)
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    #[error("message body is empty")]
    EmptyBody,
    #[error("message body is {len} bytes; the limit is {max}")]
    BodyTooLarge { len: usize, max: usize },
    #[error("message id is empty")]
    EmptyMessageId,
    #[error("{field} is {len} bytes; the limit is {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    #[error("message has {count} {what}; the limit is {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
}

fn check_field(field: &'static str, value: &str) -> Result<(), MessageError> {
    if value.is_empty() {
        return Err(MessageError::EmptyField { field });
    }
    if value.len() > MAX_FIELD_BYTES {
        return Err(MessageError::FieldTooLong {
            field,
            len: value.len(),
            max: MAX_FIELD_BYTES,
        });
    }
    Ok(())
}

impl Message {
    /// Checks the limits every stored message obeys; `max_body` is the
    /// broker's configured body limit.
    pub fn validate(&self, max_body: usize) -> Result<(), MessageError> {
        if self.body.is_empty() {
            return Err(MessageError::EmptyBody);
        }
        if self.body.len() > max_body {
            return Err(MessageError::BodyTooLarge {
                len: self.body.len(),
                max: max_body,
            });
        }
        if self.message_id.is_empty() {
            return Err(MessageError::EmptyMessageId);
        }
        check_field("message id", &self.message_id)?;
        if let Some(tag) = &self.tag {
            check_field("tag", tag)?;
        }
        if self.keys.len() > MAX_KEYS {
            return Err(MessageError::TooMany {
                what: "keys",
                count: self.keys.len(),
                max: MAX_KEYS,
            });
        }
        for key in &self.keys {
            check_field("key", key)?;
        }
        if self.properties.len() > MAX_PROPERTIES {
            return Err(MessageError::TooMany {
                what: "properties",
                count: self.properties.len(),
                max: MAX_PROPERTIES,
            });
        }
        for (name, value) in &self.properties {
            check_field("property name", name)?;
            if value.len() > MAX_FIELD_BYTES {
                return Err(MessageError::FieldTooLong {
                    field: "property value",
                    len: value.len(),
                    max: MAX_FIELD_BYTES,
                });
            }
        }
        Ok(())
    }

    /// The kind the producer declared.
    pub fn kind(&self) -> MessageKind {
        match self.flags & KIND_MASK {
            1 => MessageKind::Fifo,
            2 => MessageKind::Delay,
            3 => MessageKind::Transaction,
            _ => MessageKind::Normal,
        }
    }

    pub fn set_kind(&mut self, kind: MessageKind) {
        let bits = match kind {
            MessageKind::Normal => 0,
            MessageKind::Fifo => 1,
            MessageKind::Delay => 2,
            MessageKind::Transaction => 3,
        };
        self.flags = (self.flags & !KIND_MASK) | bits;
    }

    /// The message group of a FIFO message.
    pub fn message_group(&self) -> Option<&str> {
        self.properties
            .get(system::MESSAGE_GROUP)
            .map(String::as_str)
    }

    /// When a delayed message is due (ms since the Unix epoch).
    pub fn deliver_at_ms(&self) -> Option<i64> {
        self.properties
            .get(system::DELIVER_AT)
            .and_then(|v| v.parse().ok())
    }

    /// The properties the producer set, without the reserved ones.
    pub fn user_properties(&self) -> impl Iterator<Item = (&String, &String)> {
        self.properties
            .iter()
            .filter(|(k, _)| !system::is_reserved(k))
    }

    /// The hash of this message's tag kept in consume-queue entries
    /// (0 when the message has no tag).
    pub fn tag_hash(&self) -> u64 {
        self.tag.as_deref().map_or(0, tag_hash)
    }
}

/// A stable 64-bit hash of a tag (FNV-1a). Stable across releases because
/// it is written to disk; never 0 for a non-empty tag.
pub fn tag_hash(tag: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h == 0 { 1 } else { h }
}

/// Milliseconds since the Unix epoch by the system clock: the scale of
/// [`Message::born_timestamp_ms`] and of every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            topic: TopicName::new("t").unwrap(),
            queue_id: 0,
            message_id: "id-1".into(),
            tag: Some("a".into()),
            keys: vec!["k".into()],
            properties: BTreeMap::new(),
            body: b"hello".to_vec(),
            born_timestamp_ms: 1,
            flags: 0,
        }
    }

    #[test]
    fn validates_limits() {
        assert_eq!(msg().validate(10), Ok(()));
        let mut m = msg();
        m.body.clear();
        assert_eq!(m.validate(10), Err(MessageError::EmptyBody));
        let mut m = msg();
        m.body = vec![0; 11];
        assert_eq!(
            m.validate(10),
            Err(MessageError::BodyTooLarge { len: 11, max: 10 })
        );
        let mut m = msg();
        m.message_id.clear();
        assert_eq!(m.validate(10), Err(MessageError::EmptyMessageId));
        let mut m = msg();
        m.keys.push(String::new());
        assert_eq!(
            m.validate(10),
            Err(MessageError::EmptyField { field: "key" })
        );
    }

    #[test]
    fn kind_and_reserved_properties() {
        let mut m = msg();
        assert_eq!(m.kind(), MessageKind::Normal);
        m.flags = 0b100;
        for k in [
            MessageKind::Fifo,
            MessageKind::Delay,
            MessageKind::Transaction,
            MessageKind::Normal,
        ] {
            m.set_kind(k);
            assert_eq!(m.kind(), k);
            assert_eq!(m.flags & !KIND_MASK, 0b100, "other flag bits kept");
        }
        m.properties
            .insert(system::MESSAGE_GROUP.into(), "g1".into());
        m.properties
            .insert(system::DELIVER_AT.into(), "1700000000123".into());
        m.properties.insert("user".into(), "v".into());
        assert_eq!(m.message_group(), Some("g1"));
        assert_eq!(m.deliver_at_ms(), Some(1_700_000_000_123));
        let user: Vec<_> = m.user_properties().map(|(k, _)| k.as_str()).collect();
        assert_eq!(user, ["user"]);
        assert!(system::is_reserved("__tern.x"));
        assert!(!system::is_reserved("_tern.x"));
    }

    #[test]
    fn tag_hash_is_stable() {
        // Written to disk: a change here breaks existing consume queues.
        // FNV-1a 64 reference vectors.
        assert_eq!(tag_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(tag_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_ne!(tag_hash("TagA"), tag_hash("TagB"));
        assert_eq!(msg().tag_hash(), tag_hash("a"));
    }
}
