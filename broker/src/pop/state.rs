//! The consumption state of one (group, topic, queue): pure data, no I/O.
//!
//! Every queue offset below `next` has been delivered at least once or
//! skipped. Of those, the ones in `inflight` are out with a consumer or
//! held back (below); all others are done (acknowledged, filtered out,
//! dead-lettered or deleted by retention). So the acknowledged offsets
//! above the committed offset need no set of their own: they are the gaps
//! of `inflight` below `next`, and the committed offset (the first offset
//! not yet done) is the lowest in-flight offset, or `next` when nothing is
//! in flight.
//!
//! **FIFO groups.** A FIFO consumer group gets the messages of one message
//! group in queue order, one at a time: a message is delivered only while
//! it is the *head* of its message group (its lowest in-flight offset).
//! Reading new messages, a message whose message group already has one in
//! flight is *held*: leased with attempt [`HELD_ATTEMPT`] (0) and
//! invisible until [`HELD_UNTIL`], so it counts as in flight for the
//! committed offset and the journal keeps it across restarts, but it has
//! no deadline and no receipt. A head is due when it is held (its
//! predecessor was settled) or its invisibility ran out (a retry; the
//! rest of its message group waits behind it). Messages without a message
//! group form one message group of their own.
//!
//! The message group of each in-flight offset is known by a key
//! ([`group_key`]); the journal does not record it, so after a restart the
//! keys are read back from the store (see [`QueueState::unkeyed`]) before
//! a FIFO group reads anything new.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The attempt number of a held message: read for a FIFO group, not yet
/// delivered.
pub(crate) const HELD_ATTEMPT: u32 = 0;
/// The invisibility of a held message: it never expires; settling its
/// predecessor makes it due.
pub(crate) const HELD_UNTIL: i64 = i64::MAX;

/// The key of a message group: a 64-bit FNV-1a hash of its name, never 0;
/// 0 is the key of messages without a group. Two groups whose keys
/// collide are ordered as one group (correct, only less parallel).
pub(crate) fn group_key(group: Option<&str>) -> u64 {
    let Some(g) = group else { return 0 };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in g.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// One outstanding delivery of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Delivery attempt, from 1; [`HELD_ATTEMPT`] for a held message.
    pub attempt: u32,
    /// Until when (ms since the epoch) the message stays invisible.
    pub until: i64,
    /// The delivery's sequence number; its receipt handle must carry it.
    pub seq: u64,
}

impl Lease {
    /// The lease of a held message.
    pub const HELD: Lease = Lease {
        attempt: HELD_ATTEMPT,
        until: HELD_UNTIL,
        seq: 0,
    };

    pub fn is_held(&self) -> bool {
        self.attempt == HELD_ATTEMPT
    }
}

/// Which message group each in-flight offset belongs to.
#[derive(Debug, Default)]
struct Groups {
    /// In-flight offset -> its group's key, for the offsets whose group is
    /// known.
    key_of: HashMap<u64, u64>,
    /// Group key -> its in-flight offsets (never an empty set).
    members: HashMap<u64, BTreeSet<u64>>,
    /// The held offsets that are the head of their group: due now.
    ready: BTreeSet<u64>,
}

#[derive(Debug)]
pub(crate) struct QueueState {
    /// The queue's id in the journal.
    pub id: u32,
    /// The next never-delivered queue offset.
    next: u64,
    inflight: BTreeMap<u64, Lease>,
    /// `(until, offset)` of every in-flight delivery that is not held, to
    /// find expired ones without a scan.
    deadlines: BTreeSet<(i64, u64)>,
    /// The held offsets.
    held: BTreeSet<u64>,
    groups: Groups,
    /// The committed offset last handed to the store.
    pub committed_written: u64,
}

impl QueueState {
    pub fn new(id: u32, next: u64) -> Self {
        Self {
            id,
            next,
            inflight: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            held: BTreeSet::new(),
            groups: Groups::default(),
            committed_written: next,
        }
    }

    pub fn next(&self) -> u64 {
        self.next
    }

    /// Moves `next` up to `to` (never down).
    pub fn advance(&mut self, to: u64) {
        self.next = self.next.max(to);
    }

    /// Records a (re)delivery or hold of `offset`, replacing any earlier
    /// lease.
    pub fn lease(&mut self, offset: u64, lease: Lease) {
        let key = self.groups.key_of.get(&offset).copied();
        if let Some(k) = key {
            self.unmark(k);
        }
        if let Some(old) = self.inflight.insert(offset, lease) {
            self.deadlines.remove(&(old.until, offset));
            self.held.remove(&offset);
        }
        if lease.is_held() {
            self.held.insert(offset);
        } else {
            self.deadlines.insert((lease.until, offset));
        }
        if let Some(k) = key {
            self.mark(k);
        }
        self.advance(offset.saturating_add(1));
    }

    /// Records that in-flight `offset` belongs to the message group with
    /// key `key`. Ignored for an offset not in flight or already keyed.
    pub fn set_key(&mut self, offset: u64, key: u64) {
        if !self.inflight.contains_key(&offset) || self.groups.key_of.contains_key(&offset) {
            return;
        }
        self.unmark(key);
        self.groups.key_of.insert(offset, key);
        self.groups.members.entry(key).or_default().insert(offset);
        self.mark(key);
    }

    /// Marks `offset` done; returns its lease if it was in flight. If it
    /// was the head of its message group, the next one becomes the head.
    pub fn remove(&mut self, offset: u64) -> Option<Lease> {
        let old = self.inflight.remove(&offset)?;
        self.deadlines.remove(&(old.until, offset));
        self.held.remove(&offset);
        if let Some(k) = self.groups.key_of.remove(&offset) {
            self.unmark(k);
            self.groups.ready.remove(&offset);
            if let Some(set) = self.groups.members.get_mut(&k) {
                set.remove(&offset);
                if set.is_empty() {
                    self.groups.members.remove(&k);
                }
            }
            self.mark(k);
        }
        Some(old)
    }

    /// The head of group `key`: its lowest in-flight offset.
    fn head_of(&self, key: u64) -> Option<u64> {
        self.groups
            .members
            .get(&key)
            .and_then(|s| s.first().copied())
    }

    /// Takes group `key`'s head out of the due set (before a change).
    fn unmark(&mut self, key: u64) {
        if let Some(h) = self.head_of(key) {
            self.groups.ready.remove(&h);
        }
    }

    /// Puts group `key`'s head in the due set if it is held (after a
    /// change).
    fn mark(&mut self, key: u64) {
        if let Some(h) = self.head_of(key)
            && self.held.contains(&h)
        {
            self.groups.ready.insert(h);
        }
    }

    /// Whether the message group `key` has a message in flight or held,
    /// so a later message of it must be held.
    pub fn busy(&self, key: u64) -> bool {
        self.groups.members.contains_key(&key)
    }

    /// Whether `offset` is the head of its message group (false if its
    /// group is not known).
    pub fn is_head(&self, offset: u64) -> bool {
        self.groups
            .key_of
            .get(&offset)
            .is_some_and(|&k| self.head_of(k) == Some(offset))
    }

    /// The in-flight offsets whose message group is not known (after a
    /// restart, or a group made FIFO while it had messages in flight).
    pub fn unkeyed(&self) -> Vec<u64> {
        if self.groups.key_of.len() == self.inflight.len() {
            return Vec::new();
        }
        self.inflight
            .keys()
            .copied()
            .filter(|o| !self.groups.key_of.contains_key(o))
            .collect()
    }

    pub fn get(&self, offset: u64) -> Option<Lease> {
        self.inflight.get(&offset).copied()
    }

    /// The lease of `offset` if its sequence number is `seq` (never a
    /// held message's: it has no receipt).
    pub fn current(&self, offset: u64, seq: u64) -> Option<Lease> {
        self.get(offset).filter(|l| l.seq == seq && !l.is_held())
    }

    /// The first offset not yet done.
    pub fn committed(&self) -> u64 {
        self.inflight
            .first_key_value()
            .map_or(self.next, |(&o, _)| o)
    }

    /// The earliest end of invisibility of the deliveries in flight (held
    /// messages have none).
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|&(until, _)| until)
    }

    /// In-flight offsets, held ones included.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Held offsets.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// In-flight deliveries and holds, by offset.
    pub fn inflight(&self) -> impl Iterator<Item = (u64, Lease)> + '_ {
        self.inflight.iter().map(|(&o, &l)| (o, l))
    }

    /// Up to `limit` in-flight offsets that may be delivered again at
    /// `now`.
    ///
    /// Not `fifo`: every held offset (left from when the group was FIFO),
    /// then the offsets whose invisibility ended at or before `now`, by
    /// deadline. `fifo`: the heads of message groups whose invisibility
    /// ended (by deadline), then the held heads (by offset); an offset
    /// whose group is not known is never due.
    pub fn due(&self, now: i64, fifo: bool, limit: usize) -> Vec<u64> {
        let expired = self
            .deadlines
            .iter()
            .take_while(move |(until, _)| *until <= now)
            .map(|&(_, o)| o);
        if fifo {
            // Expired non-heads only arise from a group made FIFO with
            // several messages of a group out; bound the scan over them.
            let mut out: Vec<u64> = expired
                .take(limit.saturating_mul(8))
                .filter(|&o| self.is_head(o))
                .take(limit)
                .collect();
            let room = limit - out.len();
            out.extend(self.groups.ready.iter().copied().take(room));
            return out;
        }
        self.held
            .iter()
            .copied()
            .chain(expired)
            .take(limit)
            .collect()
    }

    /// Forgets deliveries outside `from..to` and clamps `next` into that
    /// range: used at open when the store's committed offset is ahead of
    /// the journal (`from`) or the store lost its tail in a crash (`to`).
    pub fn clamp(&mut self, from: u64, to: u64) {
        let stale: Vec<u64> = self
            .inflight
            .keys()
            .copied()
            .filter(|&o| o < from || o >= to)
            .collect();
        for o in stale {
            self.remove(o);
        }
        self.next = self.next.max(from).min(to.max(from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(attempt: u32, until: i64, seq: u64) -> Lease {
        Lease {
            attempt,
            until,
            seq,
        }
    }

    #[test]
    fn committed_follows_the_lowest_inflight() {
        let mut s = QueueState::new(0, 10);
        assert_eq!(s.committed(), 10);
        for o in 10..15 {
            s.lease(o, lease(1, 100 + o as i64, o));
        }
        assert_eq!((s.next(), s.committed()), (15, 10));
        assert!(s.remove(12).is_some());
        assert!(s.remove(12).is_none());
        assert_eq!(s.committed(), 10);
        s.remove(10);
        s.remove(11);
        assert_eq!(s.committed(), 13);
        s.remove(13);
        s.remove(14);
        assert_eq!(s.committed(), 15);
        assert_eq!(s.inflight_len(), 0);
    }

    #[test]
    fn expiry_and_replacement() {
        let mut s = QueueState::new(0, 0);
        s.lease(0, lease(1, 300, 1));
        s.lease(1, lease(1, 100, 2));
        s.lease(2, lease(1, 200, 3));
        assert_eq!(s.due(200, false, 10), vec![1, 2]);
        assert_eq!(s.due(200, false, 1), vec![1]);
        s.lease(1, lease(2, 500, 4));
        assert_eq!(s.due(200, false, 10), vec![2]);
        assert_eq!(s.current(1, 2), None);
        assert_eq!(s.current(1, 4), Some(lease(2, 500, 4)));
        assert_eq!(s.next_deadline(), Some(200));
    }

    #[test]
    fn clamp_drops_outside() {
        let mut s = QueueState::new(0, 0);
        for o in 0..10 {
            s.lease(o, lease(1, 1, o));
            s.set_key(o, group_key(Some("a")));
        }
        s.clamp(3, 7);
        assert_eq!(
            s.inflight().map(|(o, _)| o).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        assert!(s.is_head(3));
        assert_eq!(s.next(), 7);
        s.clamp(20, 7);
        assert_eq!((s.next(), s.inflight_len()), (20, 0));
        assert!(s.due(i64::MAX, false, 10).is_empty());
        assert!(!s.busy(group_key(Some("a"))), "an empty group is forgotten");
    }

    #[test]
    fn group_keys() {
        assert_eq!(group_key(None), 0);
        assert_ne!(group_key(Some("")), 0);
        assert_ne!(group_key(Some("a")), group_key(Some("b")));
        assert_eq!(group_key(Some("order-7")), group_key(Some("order-7")));
    }

    /// Leases `offset` for group `g` the way a FIFO receive does: held if
    /// the group is busy, else delivered until `until`.
    fn read(s: &mut QueueState, offset: u64, g: &str, until: i64) -> bool {
        let key = group_key(Some(g));
        let deliver = !s.busy(key);
        let l = if deliver {
            lease(1, until, offset + 100)
        } else {
            Lease::HELD
        };
        s.lease(offset, l);
        s.set_key(offset, key);
        deliver
    }

    #[test]
    fn held_messages_wait_for_their_group_head() {
        let mut s = QueueState::new(0, 0);
        let delivered: Vec<bool> = [(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "a"), (5, "c")]
            .into_iter()
            .map(|(o, g)| read(&mut s, o, g, 1000))
            .collect();
        assert_eq!(delivered, [true, false, true, false, false, true]);
        assert_eq!((s.held_len(), s.inflight_len(), s.committed()), (3, 6, 0));
        assert!(s.due(999, true, 10).is_empty(), "heads out, rest held");
        assert_eq!(s.next_deadline(), Some(1000), "held ones have no deadline");
        assert_eq!(s.current(1, 0), None, "a held message has no receipt");

        // Acking a's head makes its next message due; b still waits.
        s.remove(0);
        assert_eq!(s.due(999, true, 10), [1]);
        assert_eq!(s.committed(), 1);
        // Delivering it leaves 4 held behind it.
        s.lease(1, lease(1, 2000, 7));
        assert!(s.due(999, true, 10).is_empty());
        s.remove(1);
        assert_eq!(s.due(999, true, 10), [4]);
        s.remove(2);
        assert_eq!(s.due(999, true, 10), [3, 4]);
        assert_eq!(s.due(999, true, 1), [3]);
        // Not FIFO (the group changed): every held message is due.
        assert_eq!(s.due(0, false, 10), [3, 4]);
    }

    #[test]
    fn a_retry_keeps_its_group_waiting() {
        let mut s = QueueState::new(0, 0);
        read(&mut s, 0, "a", 100);
        read(&mut s, 1, "a", 100);
        read(&mut s, 2, "b", 500);
        // The head's invisibility ran out: only it is due, not 1.
        assert_eq!(s.due(100, true, 10), [0]);
        assert_eq!(s.due(500, true, 10), [0, 2]);
        s.lease(0, lease(2, 300, 9));
        assert!(s.due(200, true, 10).is_empty(), "retried head out again");
        assert_eq!(s.due(300, true, 10), [0]);
        // Changing the head's invisibility keeps 1 held.
        s.lease(0, lease(2, 400, 10));
        assert!(s.due(399, true, 10).is_empty());
        s.remove(0);
        assert_eq!(s.due(399, true, 10), [1]);
    }

    #[test]
    fn dead_lettering_the_head_moves_its_group_on() {
        let mut s = QueueState::new(0, 0);
        read(&mut s, 0, "a", 100);
        read(&mut s, 1, "a", 100);
        read(&mut s, 2, "a", 100);
        // Past its last attempt: held invisible while it is copied.
        s.lease(0, lease(3, 100 + 30_000, 11));
        assert!(s.due(200, true, 10).is_empty(), "group waits for the copy");
        s.remove(0);
        assert_eq!(s.due(200, true, 10), [1]);
        assert_eq!(s.committed(), 1);
    }

    #[test]
    fn messages_without_a_group_are_one_group() {
        let mut s = QueueState::new(0, 0);
        let none = group_key(None);
        for o in 0..3 {
            let l = if s.busy(none) {
                Lease::HELD
            } else {
                lease(1, 100, o)
            };
            s.lease(o, l);
            s.set_key(o, none);
        }
        assert_eq!(s.held_len(), 2);
        assert!(s.due(99, true, 10).is_empty());
        s.remove(0);
        assert_eq!(s.due(99, true, 10), [1]);
    }

    #[test]
    fn replayed_holds_wait_until_their_groups_are_known() {
        // As a journal replay leaves it: leases without groups.
        let mut s = QueueState::new(0, 0);
        s.lease(0, lease(1, 100, 1));
        s.lease(1, Lease::HELD);
        s.lease(2, lease(1, 100, 2));
        s.lease(3, Lease::HELD);
        s.lease(4, Lease::HELD);
        assert_eq!(s.unkeyed(), [0, 1, 2, 3, 4]);
        assert!(s.due(1000, true, 10).is_empty(), "nothing due unkeyed");
        assert_eq!(s.next_deadline(), Some(100));
        // Keys read back from the store, in any order.
        let (a, b) = (group_key(Some("a")), group_key(Some("b")));
        for (o, k) in [(4, b), (1, a), (3, a), (2, b), (0, a)] {
            s.set_key(o, k);
        }
        assert!(s.unkeyed().is_empty());
        // 4 (b) is held behind 2; 1 and 3 (a) behind 0.
        assert_eq!(s.due(99, true, 10), Vec::<u64>::new());
        assert_eq!(s.due(100, true, 10), [0, 2]);
        s.remove(2);
        assert_eq!(s.due(99, true, 10), [4]);
        s.remove(0);
        assert_eq!(s.due(99, true, 10), [1, 4]);
        s.remove(1);
        assert_eq!(s.due(99, true, 10), [3, 4]);
    }
}
