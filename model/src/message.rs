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
    fn tag_hash_is_stable() {
        // Written to disk: a change here breaks existing consume queues.
        // FNV-1a 64 reference vectors.
        assert_eq!(tag_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(tag_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_ne!(tag_hash("TagA"), tag_hash("TagB"));
        assert_eq!(msg().tag_hash(), tag_hash("a"));
    }
}
