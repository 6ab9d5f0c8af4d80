//! Transactional messages: half messages held back until their
//! transaction ends.
//!
//! A half message is parked (the park `half`, see [`crate::park`]): stored
//! durably in a system topic, invisible to consumers. EndTransaction
//! COMMIT releases it to its topic, ROLLBACK discards it. One that stays
//! unresolved is checked ([`TransactionConfig`]): `first_check` after it
//! was stored and then every `check_interval`, the broker asks a live
//! producer of its topic to resolve it (the gRPC edge pushes
//! `recover_orphaned_transaction_command` on the producer's Telemetry
//! stream; the producer answers with EndTransaction). After `max_checks`
//! checks it ends by `default_resolution`, logged and counted.
//!
//! - `config`: [`TransactionConfig`] and [`Resolution`];
//! - `schedule`: when each unresolved half message is due, pure logic
//!   with the time passed in;
//! - [`Transactions`]: the park and the schedule together, rebuilt from
//!   the park at open (unfinished half messages and the checks each has
//!   had, kept with [`crate::park::Park::note`]).
//!
//! A transaction id names the half message's park offset, so it stays
//! valid across a restart.

pub mod config;
pub(crate) mod producers;
pub mod schedule;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

use tern_model::Message;
use tern_store::Store;

pub use config::{Resolution, TransactionConfig};
pub(crate) use producers::{Check, Producers};
pub use schedule::{Due, Pending, Schedule};

use crate::error::Result;
use crate::park::{Park, Parked};

/// The name of the park holding half messages.
pub const PARK_NAME: &str = "half";

/// The prefix of Tern's transaction ids.
const ID_PREFIX: &str = "tern-half-";

/// The transaction id of the half message parked at `offset`.
pub fn transaction_id(offset: u64) -> String {
    format!("{ID_PREFIX}{offset}")
}

/// The park offset a transaction id names; `None` if `id` is not one of
/// this broker's.
pub fn parse_transaction_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix(ID_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The half messages of one broker: parked, and scheduled for checks.
#[derive(Debug)]
pub struct Transactions {
    park: Arc<Park>,
    schedule: Mutex<Schedule>,
    /// Half messages ended by the default resolution.
    defaulted: AtomicU64,
    /// Checks sent to producers.
    checks_sent: AtomicU64,
}

impl Transactions {
    /// Opens the half-message park of `store` (journal in `dir`) and
    /// schedules every unfinished half message again, with the checks it
    /// has had. Blocking.
    pub fn open(store: Arc<Store>, dir: &Path, cfg: TransactionConfig) -> Result<Self> {
        let park = Park::open(store, dir, PARK_NAME)?;
        let mut schedule = Schedule::new(cfg);
        park.pending(|p| schedule.add(p.offset, pending_of(&p)))?;
        if !schedule.is_empty() {
            tracing::info!(
                pending = schedule.len(),
                "unresolved half messages scheduled for checks again"
            );
        }
        Ok(Self {
            park,
            schedule: Mutex::new(schedule),
            defaulted: AtomicU64::new(0),
            checks_sent: AtomicU64::new(0),
        })
    }

    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock()
    }

    pub fn config(&self) -> TransactionConfig {
        *self.schedule().config()
    }

    /// Parks half messages (each with its real topic) and calls `done`
    /// with their park offsets once the store has them; they are
    /// scheduled for checks before `done` runs, even if the caller is gone
    /// by then.
    pub fn park(
        self: &Arc<Self>,
        msgs: Vec<Message>,
        done: impl FnOnce(Result<Vec<u64>>) + Send + 'static,
    ) {
        let pending: Vec<Pending> = msgs
            .iter()
            .map(|m| Pending {
                topic: m.topic.to_string(),
                message_id: m.message_id.clone(),
                stored_ms: 0,
                checks: 0,
            })
            .collect();
        let this = Arc::clone(self);
        self.park.park(msgs, move |r| {
            if let Ok(offsets) = &r {
                let now = tern_model::now_ms();
                let mut s = this.schedule();
                for (&offset, mut p) in offsets.iter().zip(pending) {
                    p.stored_ms = now;
                    s.add(offset, p);
                }
            }
            done(r);
        });
    }

    /// The unresolved half message at `offset`, if any.
    pub fn pending(&self, offset: u64) -> Option<Pending> {
        self.schedule().get(offset).cloned()
    }

    /// Takes the half message at `offset` out of the schedule to end it:
    /// whoever takes it owns its end ([`Transactions::end`], or
    /// [`Transactions::restore`] if that fails).
    pub fn take(&self, offset: u64) -> Option<Pending> {
        self.schedule().take(offset)
    }

    /// Puts back a half message whose end failed, due a check interval
    /// after `now_ms`.
    pub fn restore(&self, offset: u64, pending: Pending, now_ms: i64) {
        self.schedule().restore(offset, pending, now_ms);
    }

    /// What is due at `now_ms` (at most `limit` items).
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<Due> {
        self.schedule().due(now_ms, limit)
    }

    /// When the earliest check is due.
    pub fn next_due(&self) -> Option<i64> {
        self.schedule().next_due()
    }

    /// The parked half message at `offset` (`None` once it has ended).
    /// Blocking.
    pub(crate) fn get(&self, offset: u64) -> Result<Option<Parked>> {
        self.park.get(offset)
    }

    /// Records that check number `checks` of the half message at `offset`
    /// is made (durably, so a restart goes on counting). Blocking.
    pub fn note_check(&self, offset: u64, checks: u32) -> Result<()> {
        self.park.note(offset, checks)
    }

    /// Counts a check that reached a producer.
    pub fn check_sent(&self) {
        self.checks_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends the half message at `offset`: `Some(message)` (its queue set
    /// by the caller) is written to its topic, `None` discards it.
    /// Returns whether this call ended it (false: it had ended already).
    /// Blocking.
    pub fn end(&self, offset: u64, release: Option<Message>) -> Result<bool> {
        let ended = match release {
            Some(m) => self.park.release(vec![(offset, m)])?,
            None => self.park.discard(&[offset])?,
        };
        Ok(!ended.is_empty())
    }

    /// Counts a half message ended by the default resolution.
    pub fn defaulted(&self) {
        self.defaulted.fetch_add(1, Ordering::Relaxed);
    }

    /// Half messages ended by the default resolution since open.
    pub fn defaulted_count(&self) -> u64 {
        self.defaulted.load(Ordering::Relaxed)
    }

    /// Checks sent to producers since open.
    pub fn checks_sent_count(&self) -> u64 {
        self.checks_sent.load(Ordering::Relaxed)
    }

    /// Unresolved half messages.
    pub fn pending_count(&self) -> usize {
        self.schedule().len()
    }
}

/// What the schedule keeps of a parked half message.
fn pending_of(p: &Parked) -> Pending {
    Pending {
        topic: p.message.topic.to_string(),
        message_id: p.message.message_id.clone(),
        stored_ms: p.store_timestamp_ms,
        checks: p.note,
    }
}

#[cfg(test)]
mod tests;
