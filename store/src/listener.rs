//! [`StoreListener`]: callbacks the store makes from its own threads, so
//! a caller can wake long polls when messages become readable and time
//! flushes for metrics without polling the store.

use std::time::Duration;

/// Observes the store's background work. Every method is called from the
/// store's own threads (the flusher, the dispatcher) with no store lock
/// held; it must be quick (bump a counter, send on a channel) and must not
/// block. The default methods do nothing.
pub trait StoreListener: Send + Sync + std::fmt::Debug {
    /// Messages of `topics` became readable through the consume queues
    /// (the dispatcher wrote their entries). Called once per dispatch
    /// round, with each topic once.
    fn dispatched(&self, topics: &[&str]) {
        let _ = topics;
    }

    /// One fsync of the commit log finished: it took `took` and made
    /// `bytes` more bytes durable.
    fn flushed(&self, took: Duration, bytes: u64) {
        let _ = (took, bytes);
    }
}
