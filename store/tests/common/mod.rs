//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a different subset

use std::path::Path;
use std::time::Duration;

use tern_model::{Message, TopicName};
use tern_store::{FlushPolicy, StoreConfig};

/// Small files so tests cross segment and queue-file boundaries.
pub fn small_config(dir: &Path, flush: FlushPolicy) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.flush = flush;
    c.segment_size = 64 * 1024;
    c.cq_entries_per_file = 64;
    c.index_slots = 97;
    c.index_entries_per_file = 256;
    c.checkpoint_interval = Duration::from_millis(50);
    c.flush_interval = Duration::from_millis(20);
    c.clean_interval = Duration::from_secs(3600);
    // The machine's disk may be nearly full for reasons of its own; tests of
    // the disk limits set them explicitly.
    c.disk_high_water = 1.0;
    c.disk_hard_limit = 1.0;
    c
}

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
