//! When each unresolved half message is checked next, as pure logic with
//! the time passed in.

use std::collections::{BTreeSet, HashMap};

use super::config::{Resolution, TransactionConfig};

/// What the schedule keeps of one unresolved half message (its body stays
/// parked on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its real topic.
    pub topic: String,
    pub message_id: String,
    /// When it was stored, in ms since the Unix epoch.
    pub stored_ms: i64,
    /// Checks done so far.
    pub checks: u32,
}

/// Work that came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Ask a producer of `pending.topic` to resolve the half message at
    /// `offset`; `pending.checks` already counts this check (persist it,
    /// and use it to take turns among the producers).
    Check { offset: u64, pending: Pending },
    /// The checks are used up: end it by `resolution`. It has left the
    /// schedule (the caller owns it; [`Schedule::restore`] it if ending it
    /// fails).
    Resolve {
        offset: u64,
        pending: Pending,
        resolution: Resolution,
    },
}

#[derive(Debug)]
struct Entry {
    pending: Pending,
    due_ms: i64,
}

/// The unresolved half messages by park offset, ordered by when each is
/// due.
#[derive(Debug)]
pub struct Schedule {
    cfg: TransactionConfig,
    entries: HashMap<u64, Entry>,
    /// `(due_ms, offset)` of every entry.
    by_due: BTreeSet<(i64, u64)>,
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When a half message stored at `stored_ms` with `checks` checks done is
/// next due, counting from its store time: the first check `first_check`
/// after it, each later one `check_interval` after the previous.
pub fn due_at(cfg: &TransactionConfig, stored_ms: i64, checks: u32) -> i64 {
    stored_ms
        .saturating_add(ms(cfg.first_check))
        .saturating_add(ms(cfg.check_interval).saturating_mul(i64::from(checks)))
}

impl Schedule {
    pub fn new(cfg: TransactionConfig) -> Self {
        Self {
            cfg,
            entries: HashMap::new(),
            by_due: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &TransactionConfig {
        &self.cfg
    }

    /// Adds the half message at `offset` (a new one, or one found again
    /// after a restart with its checks done), due at [`due_at`]; one
    /// already there is replaced.
    pub fn add(&mut self, offset: u64, pending: Pending) {
        let due_ms = due_at(&self.cfg, pending.stored_ms, pending.checks);
        self.insert(offset, pending, due_ms);
    }

    /// Puts back one taken out by [`Schedule::take`] or a
    /// [`Due::Resolve`] whose ending failed, due again `check_interval`
    /// after `now_ms`.
    pub fn restore(&mut self, offset: u64, pending: Pending, now_ms: i64) {
        let due_ms = now_ms.saturating_add(ms(self.cfg.check_interval));
        self.insert(offset, pending, due_ms);
    }

    fn insert(&mut self, offset: u64, pending: Pending, due_ms: i64) {
        self.take(offset);
        self.by_due.insert((due_ms, offset));
        self.entries.insert(offset, Entry { pending, due_ms });
    }

    /// Takes the half message at `offset` out (its transaction is being
    /// ended); `None` if it is not pending. Whoever takes it owns its end.
    pub fn take(&mut self, offset: u64) -> Option<Pending> {
        let e = self.entries.remove(&offset)?;
        self.by_due.remove(&(e.due_ms, offset));
        Some(e.pending)
    }

    /// The pending half message at `offset`.
    pub fn get(&self, offset: u64) -> Option<&Pending> {
        self.entries.get(&offset).map(|e| &e.pending)
    }

    /// Everything due at `now_ms`, at most `limit` items, earliest first.
    /// A check is counted and the message is due again `check_interval`
    /// after `now_ms`; one whose checks are used up leaves the schedule to
    /// be resolved by default.
    pub fn due(&mut self, now_ms: i64, limit: usize) -> Vec<Due> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(&(due_ms, offset)) = self.by_due.first() else {
                break;
            };
            if due_ms > now_ms {
                break;
            }
            let Some(mut pending) = self.take(offset) else {
                break;
            };
            if pending.checks >= self.cfg.max_checks {
                out.push(Due::Resolve {
                    offset,
                    pending,
                    resolution: self.cfg.default_resolution,
                });
                continue;
            }
            pending.checks = pending.checks.saturating_add(1);
            let next = now_ms.saturating_add(ms(self.cfg.check_interval));
            self.insert(offset, pending.clone(), next);
            out.push(Due::Check { offset, pending });
        }
        out
    }

    /// When the earliest pending half message is due.
    pub fn next_due(&self) -> Option<i64> {
        self.by_due.first().map(|&(due, _)| due)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn cfg(max_checks: u32, default_resolution: Resolution) -> TransactionConfig {
        TransactionConfig {
            first_check: Duration::from_secs(6),
            check_interval: Duration::from_secs(30),
            max_checks,
            default_resolution,
        }
    }

    fn pending(stored_ms: i64, checks: u32) -> Pending {
        Pending {
            topic: "t".to_owned(),
            message_id: format!("m{stored_ms}"),
            stored_ms,
            checks,
        }
    }

    fn offsets(due: &[Due]) -> Vec<(u64, u32, bool)> {
        due.iter()
            .map(|d| match d {
                Due::Check { offset, pending } => (*offset, pending.checks, false),
                Due::Resolve {
                    offset, pending, ..
                } => (*offset, pending.checks, true),
            })
            .collect()
    }

    #[test]
    fn first_check_after_the_delay_then_every_interval_then_the_default() {
        let mut s = Schedule::new(cfg(2, Resolution::Commit));
        s.add(7, pending(1_000, 0));
        assert_eq!(s.next_due(), Some(7_000));
        assert!(s.due(6_999, 10).is_empty());
        assert_eq!(offsets(&s.due(7_000, 10)), [(7, 1, false)]);
        assert!(s.due(36_999, 10).is_empty());
        assert_eq!(offsets(&s.due(37_500, 10)), [(7, 2, false)]);
        assert_eq!(s.next_due(), Some(67_500));
        let due = s.due(67_500, 10);
        assert_eq!(
            due,
            [Due::Resolve {
                offset: 7,
                pending: pending(1_000, 2),
                resolution: Resolution::Commit
            }]
        );
        assert!(s.is_empty());
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn a_taken_message_is_not_checked_and_can_be_taken_once() {
        let mut s = Schedule::new(cfg(15, Resolution::Rollback));
        s.add(1, pending(0, 0));
        s.add(2, pending(0, 0));
        assert_eq!(s.take(1).unwrap().message_id, "m0");
        assert!(s.take(1).is_none());
        assert_eq!(offsets(&s.due(10_000, 10)), [(2, 1, false)]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn after_a_restart_checks_done_are_kept_and_overdue_ones_come_at_once() {
        let c = cfg(15, Resolution::Rollback);
        assert_eq!(due_at(&c, 1_000, 0), 7_000);
        assert_eq!(due_at(&c, 1_000, 3), 97_000);
        let mut s = Schedule::new(c);
        s.add(1, pending(1_000, 3));
        s.add(2, pending(0, 15));
        s.add(3, pending(500_000, 0));
        // Due at 97 s, 456 s and 506 s.
        let due = offsets(&s.due(500_000, 10));
        assert_eq!(due, [(1, 4, false), (2, 15, true)]);
        assert_eq!(s.next_due(), Some(506_000));
        assert_eq!(offsets(&s.due(530_000, 10)), [(3, 1, false), (1, 5, false)]);
    }

    #[test]
    fn no_checks_allowed_resolves_at_the_first_due_time() {
        let mut s = Schedule::new(cfg(0, Resolution::Rollback));
        s.add(4, pending(0, 0));
        assert!(s.due(5_999, 10).is_empty());
        assert_eq!(offsets(&s.due(6_000, 10)), [(4, 0, true)]);
    }

    #[test]
    fn due_items_come_earliest_first_within_the_limit() {
        let mut s = Schedule::new(cfg(15, Resolution::Rollback));
        for (offset, stored) in [(10, 3_000), (11, 1_000), (12, 2_000)] {
            s.add(offset, pending(stored, 0));
        }
        assert_eq!(offsets(&s.due(60_000, 2)), [(11, 1, false), (12, 1, false)]);
        assert_eq!(offsets(&s.due(60_000, 2)), [(10, 1, false)]);
        // The two checked first are due again 30 s later.
        assert_eq!(s.next_due(), Some(90_000));
    }

    #[test]
    fn a_restored_message_is_due_an_interval_later() {
        let mut s = Schedule::new(cfg(1, Resolution::Commit));
        s.add(5, pending(0, 1));
        // One check done: due at 6 s + 30 s, and out of checks.
        let Due::Resolve { pending, .. } = s.due(36_000, 1).remove(0) else {
            panic!("resolve expected");
        };
        s.restore(5, pending, 36_000);
        assert_eq!(s.next_due(), Some(66_000));
        assert_eq!(s.get(5).unwrap().checks, 1);
    }
}
