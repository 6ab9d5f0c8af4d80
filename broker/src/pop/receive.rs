//! Receiving: redeliveries of expired messages first, then new ones; a
//! FIFO group gets each message group in order (see the `state` module).

use std::sync::Arc;

use tern_store::{StoreError, StoredMessage};

use super::state::{Lease, QueueState, group_key};
use super::{DLQ_HOLD_MS, Delivery, Inner, Pop, Sub};
use crate::error::{BrokerError, Result};
use crate::filter::Filter;
use crate::meta::{GroupConfig, TopicConfig};
use crate::pop::journal::Record;
use crate::receipt::Receipt;

/// Most messages one receive looks at in one queue (delivered or skipped
/// by the filter), to bound the time a queue stays locked. The rest waits
/// for the next receive.
const MAX_SCAN: usize = 1024;
/// Messages read at once when a filter may skip some.
const FILTER_READ: usize = 64;
/// Bytes read from the store at once.
const READ_BYTES: usize = 4 << 20;
/// Most messages held back per queue for a FIFO group (read ahead of
/// their message group's turn; see the `state` module). When a queue has
/// this many, a FIFO group reads no further in it until some are
/// delivered: a long backlog of one message group then delays the other
/// message groups queued behind it in the same queue, but memory stays
/// bounded (on the order of 150 bytes per held message).
pub const MAX_HELD: usize = 4096;

/// One receive request, validated.
#[derive(Debug)]
struct Ask<'a> {
    group: &'a GroupConfig,
    filter: &'a Filter,
    max: usize,
    invisible_ms: i64,
    now: i64,
}

impl Ask<'_> {
    fn until(&self) -> i64 {
        self.now.saturating_add(self.invisible_ms)
    }
}

/// A message on its way to the dead-letter queue, held invisible with
/// lease `seq` meanwhile.
#[derive(Debug)]
pub(super) struct DeadLetter {
    pub queue: u32,
    pub offset: u64,
    pub seq: u64,
    pub attempts: u32,
    pub message: StoredMessage,
}

impl Pop {
    /// Receives up to `max` messages of `topic` for `group`: from `queue`,
    /// or from any queue when `None` (starting at a different queue each
    /// call, and skipping queues another member of the group is reading).
    /// Messages whose invisibility expired come first (attempt + 1), then
    /// new ones. For a FIFO group, a message is delivered only when every
    /// earlier message of its message group (of its queue) is done: a
    /// later one waits, held, while an earlier one is out or waiting for
    /// its retry. Messages `filter` rejects are skipped and count as done
    /// for this group. A message past the group's delivery limit is moved
    /// to `%DLQ%<group>` instead of being delivered. Each delivered
    /// message stays invisible to the group until `now_ms + invisible_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &self,
        group: &GroupConfig,
        topic: &TopicConfig,
        queue: Option<u32>,
        max: usize,
        invisible_ms: i64,
        filter: &Filter,
        now_ms: i64,
    ) -> Result<Vec<Delivery>> {
        let (mut out, held) =
            self.receive_held(group, topic, queue, max, invisible_ms, filter, now_ms)?;
        let Some(held) = held else {
            return Ok(out);
        };
        let moved = self.dead_letter_held(held);
        if moved.is_ok() && group.fifo() && out.len() < max {
            // A dead-lettered head lets the next message of its group go:
            // deliver it now, not after a long poll.
            if let Ok((more, held)) = self.receive_held(
                group,
                topic,
                queue,
                max - out.len(),
                invisible_ms,
                filter,
                now_ms,
            ) {
                out.extend(more);
                if let Some(held) = held {
                    self.warn_unmoved(group, topic, self.dead_letter_held(held));
                }
            }
        }
        self.warn_unmoved(group, topic, moved);
        Ok(out)
    }

    /// [`Pop::receive`] without writing to the store, for callers on an
    /// async runtime: messages past their delivery limit are held
    /// invisible and returned, to be moved by [`Pop::dead_letter_held`]
    /// on a thread that may block. (Reads still come from the store,
    /// usually from the page cache.) If a queue could not be read, the
    /// deliveries of the others are returned, or the error if there are
    /// none; held messages are then not lost: their holds expire and a
    /// later receive finds them again.
    #[allow(clippy::too_many_arguments)]
    pub fn receive_held(
        &self,
        group: &GroupConfig,
        topic: &TopicConfig,
        queue: Option<u32>,
        max: usize,
        invisible_ms: i64,
        filter: &Filter,
        now_ms: i64,
    ) -> Result<(Vec<Delivery>, Option<HeldDeadLetters>)> {
        let inner = &self.inner;
        inner.journal.check()?;
        if !topic.permission().readable() {
            return Err(BrokerError::Forbidden(format!(
                "topic {} is not readable",
                topic.name()
            )));
        }
        if max == 0 {
            return Err(BrokerError::Invalid("batch size must be positive".into()));
        }
        if invisible_ms <= 0 {
            return Err(BrokerError::Invalid(format!(
                "invisible duration must be positive, not {invisible_ms} ms"
            )));
        }
        let n = topic.queues();
        let sub = inner.sub(group.name(), topic.name());
        let order: Vec<u32> = match queue {
            Some(q) if q < n => vec![q],
            Some(q) => {
                return Err(BrokerError::Invalid(format!(
                    "topic {} has no queue {q} (it has {n})",
                    topic.name()
                )));
            }
            None => {
                let start = sub
                    .cursor
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % n;
                (0..n).map(|i| (start + i) % n).collect()
            }
        };
        let ask = Ask {
            group,
            filter,
            max,
            invisible_ms,
            now: now_ms,
        };
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut busy = Vec::new();
        let mut failure = None;
        for &q in &order {
            if out.len() >= max {
                break;
            }
            let qs = inner.queue(&sub, q);
            let mut st = match qs.try_lock() {
                Some(g) => g,
                None if queue.is_none() => {
                    busy.push(q);
                    continue;
                }
                None => qs.lock(),
            };
            if let Err(e) = inner.receive_queue(&sub, q, &mut st, &ask, &mut out, &mut dead) {
                failure.get_or_insert(e);
            }
        }
        // Nothing found elsewhere: wait for the queues that were busy.
        for q in busy {
            if !out.is_empty() {
                break;
            }
            let qs = inner.queue(&sub, q);
            let mut st = qs.lock();
            if let Err(e) = inner.receive_queue(&sub, q, &mut st, &ask, &mut out, &mut dead) {
                failure.get_or_insert(e);
            }
        }
        let held = (!dead.is_empty()).then_some(HeldDeadLetters { sub, items: dead });
        match failure {
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                // The leased messages are better delivered than left to
                // time out.
                tracing::warn!(group = %group.name(), topic = %topic.name(), error = %e,
                        "receive read only some queues");
                Ok((out, held))
            }
            None => Ok((out, held)),
        }
    }

    /// Moves messages [`Pop::receive_held`] held for the dead-letter
    /// queue (a store write: may block). On failure the holds expire and
    /// the messages are found again.
    pub fn dead_letter_held(&self, held: HeldDeadLetters) -> Result<()> {
        self.inner.dead_letter(&held.sub, held.items)
    }

    fn warn_unmoved(&self, group: &GroupConfig, topic: &TopicConfig, moved: Result<()>) {
        if let Err(e) = moved {
            tracing::warn!(group = %group.name(), topic = %topic.name(), error = %e,
                "could not move messages to the dead-letter queue; will retry");
        }
    }
}

/// Messages past their delivery limit that a receive holds invisible
/// until [`Pop::dead_letter_held`] moves them.
#[derive(Debug)]
pub struct HeldDeadLetters {
    sub: Arc<Sub>,
    items: Vec<DeadLetter>,
}

impl Inner {
    /// Receives from one locked queue into `out` (until it holds
    /// `ask.max`), collecting messages past their delivery limit in
    /// `dead`.
    fn receive_queue(
        &self,
        sub: &Sub,
        queue: u32,
        st: &mut QueueState,
        ask: &Ask<'_>,
        out: &mut Vec<Delivery>,
        dead: &mut Vec<DeadLetter>,
    ) -> Result<()> {
        let topic = sub.topic.as_str();
        let fifo = ask.group.fifo();
        if fifo {
            self.learn_groups(sub, queue, st)?;
        }
        // Redeliveries, and for a FIFO group the held heads.
        let limit = ask.max.saturating_mul(4).saturating_add(64);
        for off in st.due(ask.now, fifo, limit) {
            if out.len() >= ask.max {
                break;
            }
            let Some(old) = st.get(off) else { continue };
            let m = match self.store.get(topic, queue, off) {
                Ok(m) => m,
                Err(e) => {
                    self.unreadable(sub, queue, st, off, e)?;
                    continue;
                }
            };
            if !ask.filter.matches(&m.message) {
                self.done(st, off);
                continue;
            }
            if old.attempt >= ask.group.max_deliveries() {
                dead.push(self.hold_for_dead_letter(st, queue, old.attempt, m, ask.now));
                continue;
            }
            let lease = Lease {
                attempt: old.attempt + 1,
                until: ask.until(),
                seq: self.next_seq(),
            };
            self.lease(st, off, lease);
            out.push(self.delivery(sub, m, lease));
        }

        // New messages. A FIFO group needs the message group of everything
        // in flight first (`learn_groups` failed for none of them), and
        // holds a message whose group is busy, up to `MAX_HELD`.
        let mut scanned = 0;
        let mut skipped = false;
        let mut stop = fifo && !st.unkeyed().is_empty();
        while out.len() < ask.max && scanned < MAX_SCAN && !stop {
            let from = st.next();
            let room = ask.max - out.len();
            let count = if ask.filter.selects_all() && !fifo {
                room
            } else {
                room.max(FILTER_READ)
            }
            .min(MAX_SCAN - scanned);
            let read = self
                .store
                .read_queue(topic, queue, from, count, READ_BYTES)?;
            let Some(first) = read.messages.first() else {
                // Retention may have moved the queue's start past `from`.
                if read.next_offset > from {
                    st.advance(read.next_offset);
                    skipped = true;
                }
                break;
            };
            skipped |= first.queue_offset > from;
            for m in read.messages {
                if out.len() >= ask.max {
                    break;
                }
                if fifo && st.held_len() >= MAX_HELD {
                    stop = true;
                    break;
                }
                scanned += 1;
                let off = m.queue_offset;
                if !ask.filter.matches(&m.message) {
                    st.advance(off + 1);
                    skipped = true;
                    continue;
                }
                if !fifo {
                    let lease = self.new_lease(ask);
                    self.lease(st, off, lease);
                    out.push(self.delivery(sub, m, lease));
                    continue;
                }
                let key = group_key(m.message.message_group());
                if st.busy(key) {
                    self.lease(st, off, Lease::HELD);
                    st.set_key(off, key);
                } else {
                    let lease = self.new_lease(ask);
                    self.lease(st, off, lease);
                    st.set_key(off, key);
                    out.push(self.delivery(sub, m, lease));
                }
            }
        }
        if skipped {
            self.journal.append(&Record::Advance {
                id: st.id,
                next: st.next(),
            });
        }
        self.commit(sub, queue, st);
        Ok(())
    }

    fn new_lease(&self, ask: &Ask<'_>) -> Lease {
        Lease {
            attempt: 1,
            until: ask.until(),
            seq: self.next_seq(),
        }
    }

    /// Reads the message group of every in-flight offset whose group the
    /// state does not know (after a restart, or once a group becomes
    /// FIFO) from the store. A message the store no longer has is done.
    pub(super) fn learn_groups(&self, sub: &Sub, queue: u32, st: &mut QueueState) -> Result<()> {
        for off in st.unkeyed() {
            match self.store.get(sub.topic.as_str(), queue, off) {
                Ok(m) => st.set_key(off, group_key(m.message.message_group())),
                Err(e) => self.unreadable(sub, queue, st, off, e)?,
            }
        }
        Ok(())
    }

    /// Keeps `message`, delivered `attempts` times and now past its
    /// group's limit, invisible while it is copied to the dead-letter
    /// queue (if the copy fails, it comes back after [`DLQ_HOLD_MS`]).
    pub(super) fn hold_for_dead_letter(
        &self,
        st: &mut QueueState,
        queue: u32,
        attempts: u32,
        message: StoredMessage,
        now_ms: i64,
    ) -> DeadLetter {
        let seq = self.next_seq();
        let offset = message.queue_offset;
        let hold = Lease {
            attempt: attempts,
            until: now_ms.saturating_add(DLQ_HOLD_MS),
            seq,
        };
        self.lease(st, offset, hold);
        DeadLetter {
            queue,
            offset,
            seq,
            attempts,
            message,
        }
    }

    /// Handles an in-flight message the store can no longer return: gone
    /// (retention, or a log tail lost in a crash) or damaged. Either way
    /// it can never be delivered, so it is done. Other errors pass.
    pub(super) fn unreadable(
        &self,
        sub: &Sub,
        queue: u32,
        st: &mut QueueState,
        offset: u64,
        e: StoreError,
    ) -> Result<()> {
        match e {
            StoreError::Deleted { .. } | StoreError::BeyondEnd { .. } => {
                tracing::debug!(group = %sub.group, topic = %sub.topic, queue, offset,
                    "in-flight message no longer stored; dropping it");
            }
            StoreError::Corrupt { .. } => {
                tracing::error!(group = %sub.group, topic = %sub.topic, queue, offset, error = %e,
                    "in-flight message is unreadable; skipping it");
            }
            e => return Err(e.into()),
        }
        self.done(st, offset);
        self.commit(sub, queue, st);
        Ok(())
    }

    /// Records a lease on `offset` in memory and in the journal.
    pub(super) fn lease(&self, st: &mut QueueState, offset: u64, l: Lease) {
        st.lease(offset, l);
        self.journal.append(&Record::Lease {
            id: st.id,
            offset,
            attempt: l.attempt,
            until: l.until,
            seq: l.seq,
        });
    }

    /// Marks `offset` done in memory and in the journal.
    pub(super) fn done(&self, st: &mut QueueState, offset: u64) {
        if st.remove(offset).is_some() {
            self.journal.append(&Record::Done { id: st.id, offset });
        }
    }

    fn delivery(&self, sub: &Sub, message: StoredMessage, l: Lease) -> Delivery {
        let receipt = self.codec.encode(&Receipt {
            group: sub.group.clone(),
            topic: sub.topic.clone(),
            queue_id: message.message.queue_id,
            offset: message.queue_offset,
            attempt: l.attempt,
            invisible_until_ms: l.until,
            seq: l.seq,
        });
        Delivery {
            message,
            receipt,
            attempt: l.attempt,
            invisible_until_ms: l.until,
        }
    }
}
