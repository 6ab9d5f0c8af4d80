//! The state the store's parts share: the commit log, the consume queues,
//! the index, consumer offsets, how far dispatch got, and retention holds.
//!
//! [`crate::Store`] and its background threads (flusher, dispatcher,
//! cleaner) each hold an `Arc` of one [`Inner`]. The modules that work on
//! it ([`crate::dispatch`], [`crate::retention`], [`crate::recovery`],
//! [`crate::read`]) import it from here, never from the crate root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::{Mutex, RwLock};

use crate::commitlog::CommitLog;
use crate::config::StoreConfig;
use crate::cqueue::ConsumeQueue;
use crate::index::Index;
use crate::offsets::Offsets;
use crate::sync::Signal;

/// Consume queues by topic and queue id.
pub(crate) type QueueMap = HashMap<String, HashMap<u32, Arc<ConsumeQueue>>>;

#[derive(Debug)]
pub(crate) struct Inner {
    pub cfg: StoreConfig,
    pub log: CommitLog,
    pub queues: RwLock<QueueMap>,
    pub index: Mutex<Index>,
    pub offsets: Offsets,
    /// Every record below this is in the consume queues and the index.
    pub dispatched: AtomicU64,
    pub dispatched_signal: Signal,
    /// Wakes the cleaner at shutdown.
    pub shutdown: Signal,
    /// Commit-log positions retention must keep, by holder (see
    /// [`crate::Store::hold_retention`]).
    pub holds: Mutex<Holds>,
    /// The directory lock, held while the store is open.
    pub _lock: File,
}

/// Retention holds: positions by holder, and the configured holders that
/// have not reported yet (until they have, nothing is deleted).
#[derive(Debug, Default)]
pub(crate) struct Holds {
    pub at: BTreeMap<String, u64>,
    pub awaited: BTreeSet<String>,
}

impl Holds {
    /// The lowest position retention must keep.
    pub fn floor(&self) -> u64 {
        if self.awaited.is_empty() {
            self.at.values().copied().min().unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    /// Records `holder`'s position (`None` lifts its hold); the holder
    /// has reported.
    pub fn set(&mut self, holder: &str, position: Option<u64>) {
        self.awaited.remove(holder);
        match position {
            Some(p) => self.at.insert(holder.to_owned(), p),
            None => self.at.remove(holder),
        };
    }
}

impl Inner {
    pub fn offsets_dirty(&self) -> bool {
        self.offsets.is_dirty()
    }

    pub fn queue(&self, topic: &str, queue_id: u32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().get(topic)?.get(&queue_id).cloned()
    }

    pub fn queue_or_create(&self, topic: &str, queue_id: u32) -> Arc<ConsumeQueue> {
        if let Some(q) = self.queue(topic, queue_id) {
            return q;
        }
        let mut map = self.queues.write();
        let q = map
            .entry(topic.to_owned())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| {
                Arc::new(ConsumeQueue::create(
                    self.cfg
                        .dir
                        .join("consumequeue")
                        .join(topic)
                        .join(queue_id.to_string()),
                    self.cfg.cq_entries_per_file,
                ))
            });
        Arc::clone(q)
    }

    pub fn all_queues(&self) -> Vec<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .values()
            .flat_map(|q| q.values().cloned())
            .collect()
    }

    /// How many consume queues there are.
    pub fn queue_count(&self) -> usize {
        self.queues.read().values().map(HashMap::len).sum()
    }
}
