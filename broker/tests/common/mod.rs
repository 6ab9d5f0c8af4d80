//! Helpers shared by the broker's integration tests.
#![allow(clippy::unwrap_used)] // test support: a panic is the failure report

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tern_broker::{
    Delivery, Filter, GroupConfig, MessageType, Permission, Pop, PopConfig, Registry, TopicConfig,
};
use tern_harness::small_store_config;
use tern_model::{GroupName, Message, TopicName};
use tern_store::{FlushPolicy, Store};

/// A time far from zero; tests move it by hand.
pub const T0: i64 = 1_700_000_000_000;
/// Invisibility used unless a test says otherwise.
pub const INV: i64 = 30_000;

/// A store, a registry and the pop state on one directory.
pub struct Broker {
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    pub pop: Pop,
}

impl Broker {
    pub fn open(root: &Path) -> Self {
        Self::open_with(root, pop_config(root))
    }

    pub fn open_with(root: &Path, cfg: PopConfig) -> Self {
        let store = Arc::new(
            Store::open(small_store_config(root.join("store"), FlushPolicy::Async)).unwrap(),
        );
        let registry = Arc::new(Registry::open(&root.join("meta")).unwrap());
        let pop = Pop::open(cfg, Arc::clone(&store), Arc::clone(&registry)).unwrap();
        Self {
            store,
            registry,
            pop,
        }
    }

    /// Closes everything cleanly.
    pub fn close(self) {
        self.pop.close().unwrap();
        Arc::into_inner(self.store).unwrap().close().unwrap();
    }

    /// Registers a topic.
    pub fn topic(&self, name: &str, queues: u32) -> TopicConfig {
        let t = TopicConfig::new(
            TopicName::new(name).unwrap(),
            queues,
            MessageType::Normal,
            Permission::ReadWrite,
        )
        .unwrap();
        self.registry.ensure_topic(t).unwrap()
    }

    /// Appends `n` messages to one queue (tags from `tag(i)`) and waits
    /// until they are readable.
    pub fn send(&self, topic: &str, queue: u32, n: usize, tag: impl Fn(usize) -> Option<String>) {
        let msgs: Vec<Message> = (0..n)
            .map(|i| msg(topic, queue, &format!("{topic}-{queue}-{i}"), tag(i)))
            .collect();
        self.store.append(&msgs).unwrap();
        self.settle();
    }

    pub fn settle(&self) {
        assert!(
            self.store
                .wait_dispatched(self.store.max_offset(), Duration::from_secs(5))
        );
    }

    /// Receives with no filter from any queue.
    pub fn recv(&self, g: &GroupConfig, t: &TopicConfig, max: usize, now: i64) -> Vec<Delivery> {
        self.pop
            .receive(g, t, None, max, INV, &Filter::ALL, now)
            .unwrap()
    }
}

pub fn msg(topic: &str, queue_id: u32, id: &str, tag: Option<String>) -> Message {
    Message {
        topic: TopicName::new(topic).unwrap(),
        queue_id,
        message_id: id.to_owned(),
        tag,
        keys: vec![format!("key-{id}")],
        properties: [("p".to_owned(), id.to_owned())].into_iter().collect(),
        body: format!("body of {id}").into_bytes(),
        born_timestamp_ms: T0,
        flags: 0,
    }
}

/// The consumption settings for tests that drive time by hand (`T0`
/// onwards): the dead-letter sweep, which reads the wall clock, stays off
/// the test's way.
pub fn pop_config(root: &Path) -> PopConfig {
    let mut cfg = PopConfig::new(root.join("pop"));
    cfg.sweep_interval = std::time::Duration::from_secs(24 * 3600);
    cfg
}

pub fn group(name: &str) -> GroupConfig {
    GroupConfig::with_defaults(GroupName::new(name).unwrap()).unwrap()
}

pub fn offsets(ds: &[Delivery]) -> Vec<u64> {
    ds.iter().map(|d| d.message.queue_offset).collect()
}

pub fn no_tag(_: usize) -> Option<String> {
    None
}
