//! Dead-letter copies: what a message looks like once it has been moved to
//! its group's `%DLQ%<group>` topic.

use tern_model::{Message, MessageError, TopicName};
use tern_store::StoredMessage;

/// Property naming the topic the message was first sent to.
pub const PROP_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
/// Property naming its original queue id.
pub const PROP_ORIGIN_QUEUE_ID: &str = "DLQ_ORIGIN_QUEUE_ID";
/// Property naming its original queue offset.
pub const PROP_ORIGIN_QUEUE_OFFSET: &str = "DLQ_ORIGIN_QUEUE_OFFSET";
/// Property naming its original message id (the copy keeps the same id).
pub const PROP_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
/// Property counting the deliveries made before it was dead-lettered.
pub const PROP_DELIVERY_ATTEMPTS: &str = "DLQ_DELIVERY_ATTEMPTS";

/// The copy of `m` to append to `dlq`, queue 0: same id, body, tag, keys,
/// properties, born time and flags, plus the origin properties above. A
/// message already at the property limit keeps only its own properties.
pub(crate) fn copy(dlq: &TopicName, m: &StoredMessage, attempts: u32) -> Message {
    let orig = &m.message;
    let mut out = Message {
        topic: dlq.clone(),
        queue_id: 0,
        ..orig.clone()
    };
    let origin = [
        (PROP_ORIGIN_TOPIC, orig.topic.to_string()),
        (PROP_ORIGIN_QUEUE_ID, orig.queue_id.to_string()),
        (PROP_ORIGIN_QUEUE_OFFSET, m.queue_offset.to_string()),
        (PROP_ORIGIN_MESSAGE_ID, orig.message_id.clone()),
        (PROP_DELIVERY_ATTEMPTS, attempts.to_string()),
    ];
    for (k, v) in origin {
        out.properties.insert(k.to_owned(), v);
    }
    if let Err(MessageError::TooMany { .. }) = out.validate(usize::MAX) {
        tracing::warn!(
            topic = %orig.topic,
            message_id = %orig.message_id,
            "message has too many properties to record its origin in the dead-letter queue"
        );
        out.properties = orig.properties.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn stored(props: usize) -> StoredMessage {
        StoredMessage {
            position: 0,
            size: 0,
            queue_offset: 42,
            store_timestamp_ms: 5,
            message: Message {
                topic: TopicName::new("orders").unwrap(),
                queue_id: 3,
                message_id: "m1".into(),
                tag: Some("t".into()),
                keys: vec!["k".into()],
                properties: (0..props).map(|i| (format!("p{i}"), "v".into())).collect(),
                body: b"body".to_vec(),
                born_timestamp_ms: 7,
                flags: 1,
            },
        }
    }

    #[test]
    fn copy_records_the_origin() {
        let dlq = TopicName::new("%DLQ%g").unwrap();
        let c = copy(&dlq, &stored(1), 17);
        assert_eq!((c.topic.as_str(), c.queue_id), ("%DLQ%g", 0));
        assert_eq!(
            (c.message_id.as_str(), c.body.as_slice()),
            ("m1", &b"body"[..])
        );
        assert_eq!(
            (c.tag.as_deref(), c.flags, c.born_timestamp_ms),
            (Some("t"), 1, 7)
        );
        let want: BTreeMap<String, String> = [
            ("p0", "v"),
            (PROP_ORIGIN_TOPIC, "orders"),
            (PROP_ORIGIN_QUEUE_ID, "3"),
            (PROP_ORIGIN_QUEUE_OFFSET, "42"),
            (PROP_ORIGIN_MESSAGE_ID, "m1"),
            (PROP_DELIVERY_ATTEMPTS, "17"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(c.properties, want);

        let full = copy(&dlq, &stored(128), 2);
        assert_eq!(full.properties.len(), 128);
        assert!(full.validate(usize::MAX).is_ok());
    }
}
