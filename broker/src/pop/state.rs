//! The consumption state of one (group, topic, queue): pure data, no I/O.
//!
//! Every queue offset below `next` has been delivered at least once or
//! skipped. Of those, the ones in `inflight` are out with a consumer; all
//! others are done (acknowledged, filtered out, dead-lettered or deleted
//! by retention). So the acknowledged offsets above the committed offset
//! need no set of their own: they are the gaps of `inflight` below `next`,
//! and the committed offset (the first offset not yet done) is the lowest
//! in-flight offset, or `next` when nothing is in flight.

use std::collections::{BTreeMap, BTreeSet};

/// One outstanding delivery of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Delivery attempt, from 1.
    pub attempt: u32,
    /// Until when (ms since the epoch) the message stays invisible.
    pub until: i64,
    /// The delivery's sequence number; its receipt handle must carry it.
    pub seq: u64,
}

#[derive(Debug)]
pub(crate) struct QueueState {
    /// The queue's id in the journal.
    pub id: u32,
    /// The next never-delivered queue offset.
    next: u64,
    inflight: BTreeMap<u64, Lease>,
    /// `(until, offset)` of every in-flight delivery, to find expired ones
    /// without a scan.
    deadlines: BTreeSet<(i64, u64)>,
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

    /// Records a (re)delivery of `offset`, replacing any earlier lease.
    pub fn lease(&mut self, offset: u64, lease: Lease) {
        if let Some(old) = self.inflight.insert(offset, lease) {
            self.deadlines.remove(&(old.until, offset));
        }
        self.deadlines.insert((lease.until, offset));
        self.advance(offset.saturating_add(1));
    }

    /// Marks `offset` done; returns its lease if it was in flight.
    pub fn remove(&mut self, offset: u64) -> Option<Lease> {
        let old = self.inflight.remove(&offset)?;
        self.deadlines.remove(&(old.until, offset));
        Some(old)
    }

    pub fn get(&self, offset: u64) -> Option<Lease> {
        self.inflight.get(&offset).copied()
    }

    /// The lease of `offset` if its sequence number is `seq`.
    pub fn current(&self, offset: u64, seq: u64) -> Option<Lease> {
        self.get(offset).filter(|l| l.seq == seq)
    }

    /// The first offset not yet done.
    pub fn committed(&self) -> u64 {
        self.inflight
            .first_key_value()
            .map_or(self.next, |(&o, _)| o)
    }

    /// The earliest end of invisibility of the deliveries in flight.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|&(until, _)| until)
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// In-flight deliveries, by offset.
    pub fn inflight(&self) -> impl Iterator<Item = (u64, Lease)> + '_ {
        self.inflight.iter().map(|(&o, &l)| (o, l))
    }

    /// Up to `limit` offsets whose invisibility ended at or before `now`,
    /// by deadline.
    /// With `in_order` (FIFO groups), only the expired prefix of the
    /// in-flight offsets, by offset: a message is never redelivered while
    /// an earlier one is still invisible.
    pub fn expired(&self, now: i64, in_order: bool, limit: usize) -> Vec<u64> {
        if in_order {
            return self
                .inflight
                .iter()
                .take_while(|(_, l)| l.until <= now)
                .map(|(&o, _)| o)
                .take(limit)
                .collect();
        }
        self.deadlines
            .iter()
            .take_while(|(until, _)| *until <= now)
            .map(|&(_, o)| o)
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
        assert_eq!(s.expired(200, false, 10), vec![1, 2]);
        assert_eq!(s.expired(200, false, 1), vec![1]);
        assert_eq!(s.expired(1000, true, 10), vec![0, 1, 2]);
        assert_eq!(s.expired(200, true, 10), Vec::<u64>::new());
        s.lease(0, lease(1, 50, 5));
        assert_eq!(s.expired(200, true, 10), vec![0, 1, 2]);
        assert_eq!(s.expired(150, true, 10), vec![0, 1]);
        s.lease(0, lease(1, 300, 1));
        s.lease(1, lease(2, 500, 4));
        assert_eq!(s.expired(200, false, 10), vec![2]);
        assert_eq!(s.current(1, 2), None);
        assert_eq!(s.current(1, 4), Some(lease(2, 500, 4)));
    }

    #[test]
    fn clamp_drops_outside() {
        let mut s = QueueState::new(0, 0);
        for o in 0..10 {
            s.lease(o, lease(1, 1, o));
        }
        s.clamp(3, 7);
        assert_eq!(
            s.inflight().map(|(o, _)| o).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        assert_eq!(s.next(), 7);
        s.clamp(20, 7);
        assert_eq!((s.next(), s.inflight_len()), (20, 0));
        assert!(s.expired(i64::MAX, false, 10).is_empty());
    }
}
