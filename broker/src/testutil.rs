//! Fixtures shared by the crate's unit tests (`park`, `txn`): a small
//! store in a temporary directory, a plain message, waiting for an
//! operation that reports through a callback, and reading a queue back.
#![cfg(test)]

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tern_harness::small_store_config;
use tern_model::{Message, TopicName};
use tern_store::{FlushPolicy, Store};

use crate::error::Result;

/// A store with small files and synchronous flushes in `dir/store`.
pub(crate) fn open_store(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(small_store_config(dir.join("store"), FlushPolicy::Sync)).unwrap())
}

/// A message of `topic` queue 0 with the id `id`, which is also its body
/// and its property `k`; no tag, no keys.
pub(crate) fn message(topic: &str, id: &str) -> Message {
    Message {
        topic: TopicName::new(topic).unwrap(),
        queue_id: 0,
        message_id: id.to_owned(),
        tag: None,
        keys: Vec::new(),
        properties: [("k".to_owned(), id.to_owned())].into(),
        body: id.as_bytes().to_vec(),
        born_timestamp_ms: 1,
        flags: 0,
    }
}

/// Runs `start`, an operation that reports through the callback it is
/// given (such as `park`), and returns what it reports, which must be a
/// success within 10 seconds.
pub(crate) fn wait_done<T: Send + 'static>(
    start: impl FnOnce(Box<dyn FnOnce(Result<T>) + Send>),
) -> T {
    let (tx, rx) = mpsc::channel();
    start(Box::new(move |r| tx.send(r).unwrap()));
    rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap()
}

/// The ids of the messages in queue 0 of `topic`, once everything
/// appended has been dispatched.
pub(crate) fn queue0_ids(store: &Store, topic: &str) -> Vec<String> {
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(10)));
    store
        .read_queue(topic, 0, 0, 1000, usize::MAX)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.message.message_id)
        .collect()
}
