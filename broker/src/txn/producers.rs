//! The live producers: every open Telemetry stream of a producer, the
//! topics it publishes, and a sender that pushes transaction checks on
//! that stream. The transaction checker asks one of them to resolve an
//! orphaned half message. In memory only: a producer comes back by
//! opening its stream again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::mpsc;

use crate::park::Parked;

/// Checks waiting to be written on one stream; a full stream drops the
/// newest (the checker asks again later).
pub const PUSH_CAPACITY: usize = 64;

/// A request to a producer to resolve the half message `parked`, named by
/// `transaction_id`.
#[derive(Debug)]
pub(crate) struct Check {
    pub transaction_id: String,
    pub parked: Parked,
}

/// One open stream.
#[derive(Debug)]
struct Stream {
    client: String,
    /// Whether the client declared itself a producer (or sent a half
    /// message on this broker).
    producer: bool,
    /// The topics it declared in its settings or sent half messages to.
    topics: BTreeSet<String>,
    push: mpsc::Sender<Check>,
}

/// The live producers. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    /// Open streams by a number given at registration (in opening order).
    streams: Mutex<BTreeMap<u64, Stream>>,
    next_id: AtomicU64,
}

/// A producer [`Producers::pick`] chose: its client id and a sender of
/// commands to its stream.
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub client: String,
    pub push: mpsc::Sender<Check>,
}

impl Producers {
    fn streams(&self) -> MutexGuard<'_, BTreeMap<u64, Stream>> {
        self.streams.lock()
    }

    /// Registers the stream of `client` whose commands go to `push`; the
    /// returned guard removes it when dropped (when the stream ends).
    pub fn opened(self: &Arc<Self>, client: &str, push: mpsc::Sender<Check>) -> StreamGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.streams().insert(
            id,
            Stream {
                client: client.to_owned(),
                producer: false,
                topics: BTreeSet::new(),
                push,
            },
        );
        StreamGuard {
            producers: Arc::clone(self),
            id,
        }
    }

    /// Records that `client` sent a half message to `topic`: its streams
    /// can be asked about that topic even if its settings did not name it.
    pub fn publishes(&self, client: &str, topic: &str) {
        for s in self.streams().values_mut().filter(|s| s.client == client) {
            s.producer = true;
            if !s.topics.contains(topic) {
                s.topics.insert(topic.to_owned());
            }
        }
    }

    /// The `turn`-th (modulo their number) live producer stream of
    /// `topic`, in opening order; `None` if no producer of it is
    /// connected.
    pub fn pick(&self, topic: &str, turn: usize) -> Option<Picked> {
        let streams = self.streams();
        let live: Vec<&Stream> = streams
            .values()
            .filter(|s| s.producer && s.topics.contains(topic) && !s.push.is_closed())
            .collect();
        if live.is_empty() {
            return None;
        }
        let s = live[turn % live.len()];
        Some(Picked {
            client: s.client.clone(),
            push: s.push.clone(),
        })
    }

    /// How many streams are open.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.streams().len()
    }

    /// Whether no stream is open.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Holds one registered stream; updates it from the client's settings and
/// removes it when dropped.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    producers: Arc<Producers>,
    id: u64,
}

impl StreamGuard {
    /// Learns from the client's settings whether it is a `producer` and
    /// which topics it publishes (`declared`; topics learnt from half
    /// messages stay).
    pub fn declared(&self, producer: bool, declared: impl IntoIterator<Item = String>) {
        let declared = declared.into_iter().filter(|t| !t.is_empty());
        let mut streams = self.producers.streams();
        if let Some(s) = streams.get_mut(&self.id) {
            s.producer = s.producer || producer;
            s.topics.extend(declared);
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.producers.streams().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn producers_of_a_topic_are_picked_in_turn_and_leave_with_their_stream() {
        let reg = Arc::new(Producers::default());
        let (tx_a, _rx_a) = mpsc::channel(1);
        let (tx_b, _rx_b) = mpsc::channel(1);
        let (tx_c, _rx_c) = mpsc::channel(1);
        let a = reg.opened("a", tx_a);
        let b = reg.opened("b", tx_b);
        let consumer = reg.opened("c", tx_c);
        a.declared(true, topics(&["t"]));
        b.declared(true, topics(&["t", "u"]));
        consumer.declared(false, Vec::new());
        let picked: Vec<String> = (0..4)
            .map(|turn| reg.pick("t", turn).unwrap().client)
            .collect();
        assert_eq!(picked, ["a", "b", "a", "b"]);
        assert_eq!(reg.pick("u", 7).unwrap().client, "b");
        assert!(reg.pick("v", 0).is_none());
        drop(b);
        assert_eq!(reg.pick("u", 0).map(|p| p.client), None);
        assert_eq!(reg.pick("t", 1).unwrap().client, "a");
        assert_eq!(reg.len(), 2);
        drop(a);
        drop(consumer);
        assert!(reg.is_empty());
    }

    #[test]
    fn a_half_message_makes_its_sender_a_producer_of_the_topic() {
        let reg = Arc::new(Producers::default());
        let (tx, _rx) = mpsc::channel(1);
        let _g = reg.opened("p", tx);
        assert!(reg.pick("t", 0).is_none());
        reg.publishes("p", "t");
        assert_eq!(reg.pick("t", 0).unwrap().client, "p");
    }

    #[test]
    fn a_stream_whose_reader_is_gone_is_not_picked() {
        let reg = Arc::new(Producers::default());
        let (tx, rx) = mpsc::channel(1);
        let g = reg.opened("p", tx);
        g.declared(true, topics(&["t"]));
        drop(rx);
        assert!(reg.pick("t", 0).is_none());
    }
}
