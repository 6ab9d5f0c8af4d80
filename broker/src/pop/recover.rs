//! Startup and compaction: rebuilding queue states from the journal and
//! writing them back as a snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use tern_model::{GroupName, TopicName};
use tern_store::Store;

use super::journal::Record;
use super::state::{Lease, QueueState};
use super::{QueueRef, Sub, SubMap};

/// The whole live state as journal frames: the epoch, then each queue's
/// next offset and in-flight deliveries.
pub(super) fn snapshot(epoch: u64, subs: &RwLock<SubMap>) -> Vec<u8> {
    let mut out = Vec::new();
    Record::Boot { epoch }.encode_into(&mut out);
    let subs: Vec<Arc<Sub>> = subs
        .read()
        .values()
        .flat_map(|t| t.values().cloned())
        .collect();
    for sub in subs {
        let queues: Vec<(u32, QueueRef)> = sub
            .queues
            .read()
            .iter()
            .map(|(&q, s)| (q, Arc::clone(s)))
            .collect();
        for (queue, st) in queues {
            let st = st.lock();
            Record::Open {
                id: st.id,
                group: sub.group.to_string(),
                topic: sub.topic.to_string(),
                queue,
                next: st.next(),
            }
            .encode_into(&mut out);
            for (offset, l) in st.inflight() {
                Record::Lease {
                    id: st.id,
                    offset,
                    attempt: l.attempt,
                    until: l.until,
                    seq: l.seq,
                }
                .encode_into(&mut out);
            }
        }
    }
    out
}

/// Rebuilds queue states from journal records and reconciles them with
/// the store. Returns them with the highest epoch seen. Messages a FIFO
/// group held come back held (attempt 0 in their lease record); the
/// journal has no message groups, so a FIFO group's first receive (or the
/// dead-letter sweep) reads them back from the store before reading
/// anything new (`Inner::learn_groups`).
pub(super) fn restore(
    records: &[Record],
    store: &Store,
) -> (Vec<(GroupName, TopicName, u32, QueueState)>, u64) {
    let mut epoch = 0;
    let mut by_id: HashMap<u32, (GroupName, TopicName, u32, QueueState)> = HashMap::new();
    let mut ignored = 0usize;
    for rec in records {
        match rec {
            Record::Boot { epoch: e } => epoch = epoch.max(*e),
            Record::Open {
                id,
                group,
                topic,
                queue,
                next,
            } => match by_id.get_mut(id) {
                Some(q) => q.3.advance(*next),
                None => match (
                    GroupName::new(group.as_str()),
                    TopicName::new(topic.as_str()),
                ) {
                    (Ok(g), Ok(t)) => {
                        by_id.insert(*id, (g, t, *queue, QueueState::new(*id, *next)));
                    }
                    _ => ignored += 1,
                },
            },
            Record::Lease {
                id,
                offset,
                attempt,
                until,
                seq,
            } => match by_id.get_mut(id) {
                Some(q) => q.3.lease(
                    *offset,
                    Lease {
                        attempt: *attempt,
                        until: *until,
                        seq: *seq,
                    },
                ),
                None => ignored += 1,
            },
            Record::Done { id, offset } => match by_id.get_mut(id) {
                Some(q) => {
                    q.3.remove(*offset);
                }
                None => ignored += 1,
            },
            Record::Advance { id, next } => match by_id.get_mut(id) {
                Some(q) => q.3.advance(*next),
                None => ignored += 1,
            },
            Record::Forget { id } => {
                by_id.remove(id);
            }
        }
    }
    if ignored > 0 {
        tracing::warn!(
            records = ignored,
            "pop journal records for unknown queues ignored"
        );
    }
    let mut out: Vec<_> = by_id.into_values().collect();
    out.sort_by_key(|q| q.3.id);
    for (group, topic, queue, st) in &mut out {
        let (g, t) = (group.as_str(), topic.as_str());
        let (_, max) = store.queue_range(t, *queue);
        let stored = store.committed_offset(g, t, *queue);
        // The store's committed offset only moves over finished messages,
        // so anything below it is done even if the journal lost the ack;
        // offsets at or past the queue's end were lost by the store.
        let from = stored.unwrap_or(0);
        st.clamp(from, max.max(from));
        let committed = st.committed();
        if stored.is_none_or(|s| committed > s) {
            store.commit_offset(g, t, *queue, committed);
        }
        st.committed_written = committed;
    }
    (out, epoch)
}
