//! The store's listener: told which topics became readable, after their
//! fsync under `sync`, and how long each fsync took.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_harness::small_store_config;
use tern_model::{Message, TopicName};
use tern_store::{FlushPolicy, Store, StoreListener};

#[derive(Debug, Default)]
struct Seen {
    dispatched: Mutex<Vec<String>>,
    flushes: Mutex<Vec<(Duration, u64)>>,
}

impl StoreListener for Seen {
    fn dispatched(&self, topics: &[&str]) {
        let mut d = self.dispatched.lock().unwrap();
        d.extend(topics.iter().map(|t| (*t).to_owned()));
    }

    fn flushed(&self, took: Duration, bytes: u64) {
        self.flushes.lock().unwrap().push((took, bytes));
    }
}

fn msg(topic: &str, id: &str) -> Message {
    Message {
        topic: TopicName::new(topic).unwrap(),
        queue_id: 0,
        message_id: id.to_owned(),
        tag: None,
        keys: Vec::new(),
        properties: Default::default(),
        body: id.as_bytes().to_vec(),
        born_timestamp_ms: 1_700_000_000_000,
        flags: 0,
    }
}

#[test]
fn dispatch_and_flush_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_store_config(dir.path(), FlushPolicy::Sync)).unwrap();
    let seen = Arc::new(Seen::default());
    assert!(store.set_listener(seen.clone()));
    assert!(
        !store.set_listener(Arc::new(Seen::default())),
        "only one listener"
    );
    store
        .append(&[msg("alpha", "1"), msg("beta", "2"), msg("alpha", "3")])
        .unwrap();
    // Under sync the append returned after its fsync: nothing is waiting.
    assert_eq!(store.unflushed_bytes(), 0);
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    let mut topics = seen.dispatched.lock().unwrap().clone();
    topics.sort();
    topics.dedup();
    assert_eq!(topics, ["alpha", "beta"]);
    let flushes = seen.flushes.lock().unwrap().clone();
    let bytes: u64 = flushes.iter().map(|f| f.1).sum();
    assert_eq!(bytes, store.max_offset());
    store.close().unwrap();
}

#[test]
fn unflushed_bytes_under_async() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_store_config(dir.path(), FlushPolicy::Async);
    cfg.flush_interval = Duration::from_secs(60);
    cfg.flush_dirty_bytes = u64::MAX;
    let store = Store::open(cfg).unwrap();
    store.append(&[msg("alpha", "1")]).unwrap();
    assert_eq!(store.unflushed_bytes(), store.max_offset());
    store.flush().unwrap();
    assert_eq!(store.unflushed_bytes(), 0);
    store.close().unwrap();
}
