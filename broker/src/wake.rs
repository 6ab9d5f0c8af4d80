//! Wakes long polls (ReceiveMessage, PullMessage) when something they wait
//! for may have happened, instead of re-polling: the store's dispatcher
//! reports the topics whose new messages became readable (under `sync`
//! flush, only after their fsync), and a FIFO group's acks and
//! dead-letter moves report their group (they can let its next message
//! go). A wake-up of a topic wakes every pull waiting on it but only one
//! receive of each consumer group: a woken receive that fills its batch
//! passes the turn on.
//!
//! [`Listeners`] is the broker's one [`StoreListener`]: it wakes the
//! topics the dispatcher names and times flushes into the metrics.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tern_store::StoreListener;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, watch};

use crate::closing::Closing;
use crate::metrics::Metrics;

/// The wake-up channels of every topic someone has waited on.
#[derive(Debug, Default)]
pub struct Wakers {
    topics: RwLock<HashMap<String, TopicWakers>>,
}

#[derive(Debug)]
struct TopicWakers {
    /// Pulls: each reads its own queue and offset, so all of them look.
    all: watch::Sender<u64>,
    /// Receives, per consumer group: one waiting receive of the group is
    /// woken at a time (any of them can take what arrived; waking them
    /// all would have all but one scan the topic for nothing). A receive
    /// that fills its batch passes the turn on ([`Wakers::group`]).
    groups: HashMap<String, Arc<Notify>>,
}

impl TopicWakers {
    fn new() -> Self {
        Self {
            all: watch::Sender::new(0),
            groups: HashMap::new(),
        }
    }
}

impl Wakers {
    /// A receiver that changes whenever `topic` is woken. Subscribe (and
    /// mark it seen) before looking for messages, so a wake-up between
    /// the look and the wait is not missed.
    pub fn subscribe(&self, topic: &str) -> watch::Receiver<u64> {
        if let Some(t) = self.topics.read().get(topic) {
            return t.all.subscribe();
        }
        self.topics
            .write()
            .entry(topic.to_owned())
            .or_insert_with(TopicWakers::new)
            .all
            .subscribe()
    }

    /// The turn of `group`'s receives on `topic`: each wake-up of the
    /// topic wakes one receive waiting on it (or, if none waits, the next
    /// to wait returns at once). Enable a `notified()` future before
    /// looking for messages, so a wake-up between the look and the wait
    /// is not missed; call `notify_one` after taking a full batch, as
    /// more may be waiting.
    pub fn group(&self, topic: &str, group: &str) -> Arc<Notify> {
        if let Some(n) = self
            .topics
            .read()
            .get(topic)
            .and_then(|t| t.groups.get(group))
        {
            return Arc::clone(n);
        }
        Arc::clone(
            self.topics
                .write()
                .entry(topic.to_owned())
                .or_insert_with(TopicWakers::new)
                .groups
                .entry(group.to_owned())
                .or_default(),
        )
    }

    /// Wakes every pull and one receive of each group waiting on `topic`.
    pub fn wake(&self, topic: &str) {
        if let Some(t) = self.topics.read().get(topic) {
            t.all.send_modify(|n| *n = n.wrapping_add(1));
            for n in t.groups.values() {
                n.notify_one();
            }
        }
    }

    /// Wakes one receive of `group` waiting on `topic` (an ack or a
    /// dead-letter move that may let a FIFO group's next message go).
    pub fn wake_group(&self, topic: &str, group: &str) {
        if let Some(n) = self
            .topics
            .read()
            .get(topic)
            .and_then(|t| t.groups.get(group))
        {
            n.notify_one();
        }
    }

    /// Forgets `topic` (deleted): wakes everything waiting on it, so long
    /// polls look again (and find it gone), then drops its channels.
    pub fn forget_topic(&self, topic: &str) {
        if let Some(t) = self.topics.write().remove(topic) {
            t.all.send_modify(|n| *n = n.wrapping_add(1));
            for n in t.groups.values() {
                n.notify_waiters();
            }
        }
    }

    /// Forgets `group` (deleted) in every topic, waking its waiting
    /// receives.
    pub fn forget_group(&self, group: &str) {
        let mut topics = self.topics.write();
        for t in topics.values_mut() {
            if let Some(n) = t.groups.remove(group) {
                n.notify_waiters();
            }
        }
        // A topic nobody waits on any more needs no channels: the next
        // wait makes them again.
        topics.retain(|_, t| !t.groups.is_empty() || t.all.receiver_count() > 0);
    }

    /// Topics with channels, and the group channels among them (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        let topics = self.topics.read();
        (topics.len(), topics.values().map(|t| t.groups.len()).sum())
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

/// Waits until `turn` is notified or `most` passes: `true`; `false` if
/// the broker is closing.
pub async fn wait_turn(turn: Pin<&mut Notified<'_>>, most: Duration, closing: &Closing) -> bool {
    tokio::select! {
        () = turn => true,
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
