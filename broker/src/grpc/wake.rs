//! Wakes long polls (ReceiveMessage, PullMessage) when something they wait
//! for may have happened, instead of re-polling: the store's dispatcher
//! reports the topics whose new messages became readable (under `sync`
//! flush, only after their fsync), and acks report their topic (an ack can
//! unblock a FIFO queue).

use std::collections::HashMap;
use std::sync::RwLock;

use tokio::sync::watch;

/// One wake-up channel per topic that someone has waited on.
#[derive(Debug, Default)]
pub struct Wakers {
    topics: RwLock<HashMap<String, watch::Sender<u64>>>,
}

impl Wakers {
    /// A receiver that changes whenever `topic` is woken. Subscribe (and
    /// mark it seen) before looking for messages, so a wake-up between
    /// the look and the wait is not missed.
    pub(crate) fn subscribe(&self, topic: &str) -> watch::Receiver<u64> {
        if let Some(tx) = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
        {
            return tx.subscribe();
        }
        self.topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(topic.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Wakes every long poll waiting on `topic`.
    pub(crate) fn wake(&self, topic: &str) {
        if let Some(tx) = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
        {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The store dispatched new messages of `topics`.
    pub(crate) fn dispatched(&self, topics: &[&str]) {
        for t in topics {
            self.wake(t);
        }
    }
}
