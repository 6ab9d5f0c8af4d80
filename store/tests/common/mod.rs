//! Helpers shared by the store's integration tests.
#![allow(clippy::unwrap_used)] // test support: a panic is the failure report

use tern_model::{Message, TopicName};

pub use tern_harness::small_store_config as small_config;

pub fn msg(topic: &str, queue_id: u32, id: &str, body: &[u8]) -> Message {
    Message {
        topic: TopicName::new(topic).unwrap(),
        queue_id,
        message_id: id.to_owned(),
        tag: Some(format!("tag-{}", queue_id % 3)),
        keys: vec![format!("key-{id}")],
        properties: [("p".to_owned(), id.to_owned())].into_iter().collect(),
        body: body.to_vec(),
        born_timestamp_ms: 1_700_000_000_000,
        flags: 0,
    }
}

/// A body that tells which message it belongs to.
pub fn body_for(n: u64, len: usize) -> Vec<u8> {
    let mut b = format!("m{n}:").into_bytes();
    while b.len() < len {
        b.push(b'a' + (n % 26) as u8);
    }
    b.truncate(len.max(1));
    b
}
