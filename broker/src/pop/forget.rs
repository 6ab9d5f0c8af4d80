//! Forgetting deleted topics and groups: their consumption state leaves
//! memory at once, and each queue of it gets a `Forget` record in the
//! journal, so a restart does not bring it back; the journal is then
//! compacted within a second so the records of the state go from disk
//! too. Should the broker stop between the registry's deletion and the
//! journal's flush, [`Pop::open`] still drops the queues of topics the
//! registry no longer has. A topic or group made again under the same
//! name starts afresh from the store's committed offsets, as a new
//! subscription does.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tern_model::{GroupName, TopicName};

use super::journal::Record;
use super::state::QueueState;
use super::{Inner, Pop, Sub};
use crate::meta::Registry;

impl Pop {
    /// Forgets every group's state in `topic`; returns how many
    /// subscriptions went.
    pub fn forget_topic(&self, topic: &str) -> usize {
        let mut subs = self.inner.subs.write();
        let mut gone = Vec::new();
        for topics in subs.values_mut() {
            gone.extend(topics.remove(topic));
        }
        subs.retain(|_, topics| !topics.is_empty());
        drop(subs);
        self.inner.forgot(&gone)
    }

    /// Forgets `group`'s state in every topic; returns how many
    /// subscriptions went.
    pub fn forget_group(&self, group: &str) -> usize {
        let gone: Vec<Arc<Sub>> = self
            .inner
            .subs
            .write()
            .remove(group)
            .map(|topics| topics.into_values().collect())
            .unwrap_or_default();
        self.inner.forgot(&gone)
    }
}

impl Inner {
    /// Journals the end of every queue of `gone` (with no map locked)
    /// and asks the flusher for a compaction; returns how many there
    /// were.
    fn forgot(&self, gone: &[Arc<Sub>]) -> usize {
        for sub in gone {
            let ids: Vec<u32> = sub.queues.read().values().map(|q| q.lock().id).collect();
            for id in ids {
                self.journal.append(&Record::Forget { id });
            }
        }
        if !gone.is_empty() {
            self.compact_soon.store(true, Ordering::Release);
        }
        gone.len()
    }
}

/// The restored queues whose topic `registry` still has; the others
/// (deleted while their `Forget` records were not yet durable) are left
/// out and counted in a log line. Not by group: a receive needs its topic
/// registered, but the consumption state does not look its group up.
pub(super) fn registered(
    queues: Vec<(GroupName, TopicName, u32, QueueState)>,
    registry: &Registry,
) -> Vec<(GroupName, TopicName, u32, QueueState)> {
    let before = queues.len();
    let kept: Vec<_> = queues
        .into_iter()
        .filter(|(_, t, _, _)| registry.has_topic(t.as_str()))
        .collect();
    if kept.len() < before {
        tracing::info!(
            queues = before - kept.len(),
            "consumption state of deleted topics dropped"
        );
    }
    kept
}
