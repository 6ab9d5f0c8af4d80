//! The dead-letter sweep: moves messages past their group's delivery limit
//! to `%DLQ%<group>` once their last invisibility runs out, even when no
//! member of the group receives any more (a receive does the same for the
//! queues it reads, so the two share the hold-then-copy path). For a FIFO
//! group only the head of a message group is moved; the next message of
//! the group becomes due once it is gone.

use super::{Inner, QueueRef};

/// Most expired deliveries examined per queue in one sweep; the rest wait
/// for the next one.
const SWEEP_LIMIT: usize = 1024;

use super::Swept;

impl Inner {
    /// Moves every message whose last allowed delivery expired before
    /// `now_ms` to its group's dead-letter queue. Returns how many were
    /// moved. Failures are logged; the messages stay held and are retried.
    pub(super) fn sweep_dead_letters(&self, now_ms: i64) -> usize {
        let subs: Vec<_> = self
            .subs
            .read()
            .values()
            .flat_map(|topics| topics.values().cloned())
            .collect();
        let mut moved = 0;
        for sub in subs {
            // A group deleted since it received has nothing to follow.
            let Ok(group) = self.registry.group(sub.group.as_str()) else {
                continue;
            };
            let queues: Vec<(u32, QueueRef)> = sub
                .queues
                .read()
                .iter()
                .map(|(&q, s)| (q, s.clone()))
                .collect();
            let mut dead = Vec::new();
            for (queue, qs) in queues {
                let mut st = qs.lock();
                // A FIFO group dead-letters only the head of a message
                // group, so it needs to know the groups.
                if group.fifo()
                    && let Err(e) = self.learn_groups(&sub, queue, &mut st)
                {
                    tracing::warn!(group = %sub.group, topic = %sub.topic, queue, error = %e,
                        "dead-letter sweep could not read message groups");
                    continue;
                }
                for off in st.due(now_ms, group.fifo(), SWEEP_LIMIT) {
                    let Some(old) = st.get(off) else { continue };
                    if old.attempt < group.max_deliveries() {
                        // Still has attempts left: the next receive
                        // redelivers it.
                        continue;
                    }
                    match self.store.get(sub.topic.as_str(), queue, off) {
                        Ok(m) => dead.push(self.hold_for_dead_letter(
                            &mut st,
                            queue,
                            old.attempt,
                            m,
                            now_ms,
                        )),
                        Err(e) => {
                            if let Err(e) = self.unreadable(&sub, queue, &mut st, off, e) {
                                tracing::warn!(group = %sub.group, topic = %sub.topic, queue,
                                    offset = off, error = %e, "dead-letter sweep could not read a message");
                            }
                        }
                    }
                }
                self.commit(&sub, queue, &mut st);
            }
            if dead.is_empty() {
                continue;
            }
            let n = dead.len();
            match self.dead_letter(&sub, dead) {
                Ok(()) => {
                    moved += n;
                    if let Some(Swept(f)) = self.swept.get() {
                        f(sub.topic.as_str());
                    }
                    tracing::info!(group = %sub.group, topic = %sub.topic, messages = n,
                        "moved messages past their delivery limit to the dead-letter queue");
                }
                Err(e) => {
                    tracing::warn!(group = %sub.group, topic = %sub.topic, error = %e,
                        "could not move messages to the dead-letter queue; will retry");
                }
            }
        }
        moved
    }
}
