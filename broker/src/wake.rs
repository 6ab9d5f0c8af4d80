//! Wakes long polls (ReceiveMessage, PullMessage) when something they wait
//! for may have happened, instead of re-polling: the store's dispatcher
//! reports the topics whose new messages became readable (under `sync`
//! flush, only after their fsync), and acks and dead-letter moves report
//! their topic (they can unblock a FIFO queue).
//!
//! [`Listeners`] is the broker's one [`StoreListener`]: it wakes the
//! topics the dispatcher names and times flushes into the metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tern_store::StoreListener;
use tokio::sync::watch;

use crate::closing::Closing;
use crate::metrics::Metrics;

/// One wake-up channel per topic that someone has waited on.
#[derive(Debug, Default)]
pub struct Wakers {
    topics: RwLock<HashMap<String, watch::Sender<u64>>>,
}

impl Wakers {
    /// A receiver that changes whenever `topic` is woken. Subscribe (and
    /// mark it seen) before looking for messages, so a wake-up between
    /// the look and the wait is not missed.
    pub fn subscribe(&self, topic: &str) -> watch::Receiver<u64> {
        if let Some(tx) = self.topics.read().get(topic) {
            return tx.subscribe();
        }
        self.topics
            .write()
            .entry(topic.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Wakes every long poll waiting on `topic`.
    pub fn wake(&self, topic: &str) {
        if let Some(tx) = self.topics.read().get(topic) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The store dispatched new messages of `topics`.
    pub fn dispatched(&self, topics: &[&str]) {
        for t in topics {
            self.wake(t);
        }
    }
}

/// Waits until `woken` changes or `most` passes: `true`; `false` if the
/// broker is closing.
pub async fn wait(woken: &mut watch::Receiver<u64>, most: Duration, closing: &Closing) -> bool {
    tokio::select! {
        r = woken.changed() => {
            if r.is_err() {
                // Cannot happen (the broker keeps every sender), but
                // never spin.
                tokio::time::sleep(most).await;
            }
            true
        }
        () = tokio::time::sleep(most) => true,
        () = closing.closed() => false,
    }
}

/// The one store listener of a broker: wakes long polls and times
/// flushes.
#[derive(Debug)]
pub struct Listeners {
    pub metrics: Arc<Metrics>,
    pub wakers: Arc<Wakers>,
}

impl StoreListener for Listeners {
    fn dispatched(&self, topics: &[&str]) {
        self.wakers.dispatched(topics);
    }

    fn flushed(&self, took: Duration, bytes: u64) {
        self.metrics.flushed(took, bytes);
    }
}
