//! Send de-duplication: a repeated send of a message id is answered with
//! the original result instead of being stored again.
//!
//! The official producers retry a failed send with the same message id,
//! so a send that timed out after its write succeeded would otherwise be
//! stored (and delivered) twice. The guarantee, per broker:
//!
//! - a message is a duplicate when a message of the **same topic** with
//!   the **same message id** was stored by this broker within the last
//!   [`DedupConfig::window`]; it is not written again, and its send result
//!   carries the original queue offset (it stays in the original queue);
//! - two sends of one id racing are stored once: the later one waits for
//!   the earlier one's outcome and, if that write failed, writes itself;
//! - after a restart, ids written by the previous run are found in the
//!   store's message-id index for one window after opening (each new id
//!   costs an index lookup then), and remembered for the rest of their
//!   own window (counted from their store time); a write the previous run lost (not
//!   fsynced before a machine crash under `async`) is not found, so its
//!   retry is stored;
//! - memory is bounded by [`DedupConfig::max_entries`] ids (about 220
//!   bytes each): when more distinct ids arrive within one window, the
//!   oldest are forgotten first, so the window is effectively shortened
//!   to `max_entries / send rate`;
//! - not de-duplicated: the same id on another topic or another broker,
//!   and a retry that arrives after the window. (A send without a
//!   message id is refused at the edge; the check skips one anyway.)

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tern_model::now_ms;
use tern_store::Store;
use tokio::sync::watch;

/// How long and how many message ids are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupConfig {
    /// How long a stored message id is remembered. Zero turns
    /// de-duplication off. Default 5 minutes.
    pub window: Duration,
    /// Most ids remembered at once; past it the oldest are forgotten
    /// first. Zero turns de-duplication off. Default 1 000 000.
    pub max_entries: usize,
}

impl DedupConfig {
    /// Default [`DedupConfig::window`].
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
    /// Default [`DedupConfig::max_entries`].
    pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;
    /// De-duplication off.
    pub const OFF: Self = Self {
        window: Duration::ZERO,
        max_entries: 0,
    };

    /// Whether sends are de-duplicated at all.
    pub fn enabled(&self) -> bool {
        !self.window.is_zero() && self.max_entries > 0
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window: Self::DEFAULT_WINDOW,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Where a message was stored: what a repeated send is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The queue the message is in.
    pub queue_id: u32,
    /// Its offset in that queue.
    pub queue_offset: u64,
}

/// What [`Dedup::begin`] found for one (topic, message id).
#[derive(Debug)]
pub enum Begin {
    /// Stored within the window: answer with this, write nothing.
    Stored(Stored),
    /// The caller writes it, then completes the claim (dropping it
    /// without [`Claim::stored`] means the write failed).
    Claimed(Claim),
    /// Another send of the id is being written: wait for it with
    /// [`wait`], then begin again.
    Wait(watch::Receiver<bool>),
}

/// Memory of recently stored message ids, shared by all sends.
#[derive(Debug)]
pub struct Dedup {
    cfg: DedupConfig,
    table: Mutex<Table>,
    /// Commit-log end when the broker opened: records below it were
    /// written by an earlier run and are looked up in the index.
    boot_end: u64,
    /// Until then, ids not in memory are looked up in the index.
    recall_until: Instant,
    /// Ids forgotten before their window ended (memory bound reached).
    evicted_early: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    map: HashMap<Arc<str>, Slot>,
    /// Stored ids in the order they were stored, with their sequence
    /// number (an id stored again after expiry gets a new one).
    order: VecDeque<(u64, Instant, Arc<str>)>,
    next_seq: u64,
    /// When the last early eviction was logged.
    warned: Option<Instant>,
}

#[derive(Debug)]
enum Slot {
    Pending(watch::Receiver<bool>),
    Done {
        seq: u64,
        at: Instant,
        stored: Stored,
    },
}

/// Most expired ids forgotten per call, so that a call after a quiet
/// period (possibly on the store's flusher thread) stays quick; lookups
/// treat expired ids still in the table as absent.
const EXPIRE_BATCH: usize = 64;
/// Upper bound of candidates read from the index per id.
const RECALL_CANDIDATES: usize = 8;
/// How long a recall waits for the index to cover the previous run.
const RECALL_INDEX_WAIT: Duration = Duration::from_secs(5);

impl Dedup {
    /// De-duplication over `store`, which the broker just opened.
    pub fn new(cfg: DedupConfig, store: &Store) -> Self {
        Self::starting_at(cfg, store.max_offset())
    }

    fn starting_at(cfg: DedupConfig, boot_end: u64) -> Self {
        Self {
            cfg,
            table: Mutex::new(Table::default()),
            boot_end,
            recall_until: Instant::now() + cfg.window,
            evicted_early: AtomicU64::new(0),
        }
    }

    /// Whether sends are de-duplicated at all.
    pub fn enabled(&self) -> bool {
        self.cfg.enabled()
    }

    /// Ids forgotten before their window ended because of the memory
    /// bound.
    #[cfg(test)]
    fn evicted_early(&self) -> u64 {
        self.evicted_early.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent table (every
        // change is one insert or remove), so poisoning is ignored.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks up `message_id` of `topic`, claiming it if nobody stored or
    /// is storing it.
    pub fn begin(self: &Arc<Self>, topic: &str, message_id: &str) -> Begin {
        let key: Arc<str> = Arc::from(format!("{topic}\0{message_id}"));
        let now = Instant::now();
        let mut t = self.lock();
        self.expire(&mut t, now);
        match t.map.get(&key) {
            Some(Slot::Done { at, stored, .. })
                if now.saturating_duration_since(*at) < self.cfg.window =>
            {
                return Begin::Stored(*stored);
            }
            Some(Slot::Pending(rx)) => return Begin::Wait(rx.clone()),
            // Expired (not yet forgotten), or unknown.
            Some(Slot::Done { .. }) | None => {}
        }
        let (tx, rx) = watch::channel(false);
        t.map.insert(Arc::clone(&key), Slot::Pending(rx));
        Begin::Claimed(Claim {
            dedup: Arc::clone(self),
            key,
            tx,
            done: false,
        })
    }

    /// Forgets ids past their window (at most [`EXPIRE_BATCH`]), and the
    /// oldest ones past the memory bound.
    fn expire(&self, t: &mut Table, now: Instant) {
        let mut expired = 0;
        while let Some((seq, at, key)) = t.order.front() {
            let old = now.saturating_duration_since(*at) >= self.cfg.window;
            let over = t.order.len() > self.cfg.max_entries;
            if !over && (!old || expired >= EXPIRE_BATCH) {
                break;
            }
            expired += usize::from(old);
            if !old {
                let total = self.evicted_early.fetch_add(1, Ordering::Relaxed) + 1;
                if t.warned
                    .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60))
                {
                    t.warned = Some(now);
                    tracing::warn!(
                        max_entries = self.cfg.max_entries,
                        evicted_early = total,
                        "send de-duplication forgets ids before their window ends: \
                         more distinct message ids than max_entries within the window"
                    );
                }
            }
            let (seq, key) = (*seq, Arc::clone(key));
            t.order.pop_front();
            if matches!(t.map.get(&key), Some(Slot::Done { seq: s, .. }) if *s == seq) {
                t.map.remove(&key);
            }
        }
    }

    /// Whether ids not in memory may still be in the index from the
    /// previous run (the first window after opening).
    pub fn recalling(&self) -> bool {
        self.boot_end > 0 && Instant::now() < self.recall_until
    }

    /// During the first window after opening, the previous run's record
    /// of this id (same topic, stored within the window), from the
    /// store's message-id index. Blocking.
    /// Returns where it is and how long ago it was stored.
    pub fn recall(
        &self,
        store: &Store,
        topic: &str,
        message_id: &str,
    ) -> Option<(Stored, Duration)> {
        if !self.recalling() {
            return None;
        }
        if !store.wait_dispatched(self.boot_end, RECALL_INDEX_WAIT) {
            tracing::warn!(
                boot_end = self.boot_end,
                "the index does not cover the previous run yet; a retried send may be stored twice"
            );
        }
        let now = now_ms();
        let since =
            now.saturating_sub(i64::try_from(self.cfg.window.as_millis()).unwrap_or(i64::MAX));
        let found = match store.find_by_message_id(message_id, RECALL_CANDIDATES) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, message_id, "message-id lookup failed; the send is stored");
                return None;
            }
        };
        found
            .into_iter()
            .find(|m| {
                m.message.topic.as_str() == topic
                    && m.position < self.boot_end
                    && m.store_timestamp_ms >= since
            })
            .map(|m| {
                let age_ms = now.saturating_sub(m.store_timestamp_ms);
                let stored = Stored {
                    queue_id: m.message.queue_id,
                    queue_offset: m.queue_offset,
                };
                (
                    stored,
                    Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)),
                )
            })
    }
}

/// Waits until the send that owns a pending id has its outcome.
pub async fn wait(mut rx: watch::Receiver<bool>) {
    // An error means the owner is gone: its outcome is in the table too.
    let _ = rx.wait_for(|done| *done).await;
}

/// The right to write one (topic, message id); other sends of it wait
/// until [`Claim::stored`] or the claim is dropped (the write failed, so
/// the next one writes).
#[derive(Debug)]
pub struct Claim {
    dedup: Arc<Dedup>,
    key: Arc<str>,
    tx: watch::Sender<bool>,
    done: bool,
}

impl Claim {
    /// Records where the message was stored. Quick: may run on the
    /// store's flusher thread.
    pub fn stored(self, stored: Stored) {
        self.stored_ago(stored, Duration::ZERO);
    }

    /// Records where the message was stored `age` ago (by an earlier
    /// run): it is remembered for the rest of its window only.
    pub fn stored_ago(mut self, stored: Stored, age: Duration) {
        let d = Arc::clone(&self.dedup);
        let now = Instant::now();
        let at = now.checked_sub(age).unwrap_or(now);
        let mut t = d.lock();
        let seq = t.next_seq;
        t.next_seq += 1;
        t.map.insert(
            Arc::clone(&self.key),
            Slot::Done {
                seq,
                at: now,
                stored,
            },
        );
        t.order.push_back((seq, at, Arc::clone(&self.key)));
        d.expire(&mut t, now);
        drop(t);
        self.done = true;
        self.tx.send_replace(true);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut t = self.dedup.lock();
        if matches!(t.map.get(&self.key), Some(Slot::Pending(_))) {
            t.map.remove(&self.key);
        }
        drop(t);
        self.tx.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn dedup(window: Duration, max_entries: usize) -> Arc<Dedup> {
        Arc::new(Dedup::starting_at(
            DedupConfig {
                window,
                max_entries,
            },
            0,
        ))
    }

    fn at(queue_offset: u64) -> Stored {
        Stored {
            queue_id: 1,
            queue_offset,
        }
    }

    fn claim(d: &Arc<Dedup>, topic: &str, id: &str) -> Claim {
        match d.begin(topic, id) {
            Begin::Claimed(c) => c,
            other => panic!("{topic}/{id}: expected a claim, got {other:?}"),
        }
    }

    #[test]
    fn stored_ids_are_answered_with_the_original_result() {
        let d = dedup(Duration::from_secs(60), 10);
        claim(&d, "t", "a").stored(at(7));
        assert!(matches!(d.begin("t", "a"), Begin::Stored(s) if s == at(7)));
        // Another topic, another id: not duplicates.
        claim(&d, "u", "a").stored(at(0));
        claim(&d, "t", "b").stored(at(8));
        assert!(matches!(d.begin("u", "a"), Begin::Stored(s) if s == at(0)));
    }

    #[test]
    fn a_pending_id_makes_others_wait_and_a_failure_lets_them_write() {
        let d = dedup(Duration::from_secs(60), 10);
        let first = claim(&d, "t", "a");
        let Begin::Wait(rx) = d.begin("t", "a") else {
            panic!("expected to wait");
        };
        assert!(!*rx.borrow());
        drop(first); // the write failed
        assert!(*rx.borrow());
        let second = claim(&d, "t", "a");
        let Begin::Wait(rx) = d.begin("t", "a") else {
            panic!("expected to wait");
        };
        second.stored(at(3));
        assert!(*rx.borrow());
        assert!(matches!(d.begin("t", "a"), Begin::Stored(s) if s == at(3)));
    }

    #[test]
    fn ids_are_forgotten_after_the_window() {
        let d = dedup(Duration::from_millis(50), 10);
        claim(&d, "t", "a").stored(at(1));
        assert!(matches!(d.begin("t", "a"), Begin::Stored(_)));
        std::thread::sleep(Duration::from_millis(80));
        claim(&d, "t", "a").stored(at(2));
        assert!(matches!(d.begin("t", "a"), Begin::Stored(s) if s == at(2)));
        assert_eq!(d.lock().order.len(), 1, "the expired entry is gone");
        assert_eq!(d.evicted_early(), 0);
    }

    #[test]
    fn expiry_is_bounded_per_call_and_lookups_check_age() {
        let d = dedup(Duration::from_millis(50), 1000);
        for i in 0..400 {
            claim(&d, "t", &format!("id-{i}")).stored(at(i));
        }
        std::thread::sleep(Duration::from_millis(80));
        // A call forgets a batch, not all 400 (here two calls)...
        claim(&d, "t", "id-399").stored(at(500));
        assert!(d.lock().order.len() > 200, "{}", d.lock().order.len());
        // ...but an expired id still in the table is not a duplicate.
        assert!(matches!(d.begin("t", "id-350"), Begin::Claimed(_)));
        assert!(matches!(d.begin("t", "id-399"), Begin::Stored(s) if s == at(500)));
        assert_eq!(d.evicted_early(), 0);
    }

    #[test]
    fn an_id_stored_by_an_earlier_run_keeps_its_own_window() {
        let d = dedup(Duration::from_secs(60), 10);
        claim(&d, "t", "old").stored_ago(at(1), Duration::from_secs(61));
        claim(&d, "t", "recent").stored_ago(at(2), Duration::from_secs(30));
        assert!(matches!(d.begin("t", "old"), Begin::Claimed(_)));
        assert!(matches!(d.begin("t", "recent"), Begin::Stored(s) if s == at(2)));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let d = dedup(Duration::from_secs(60), 3);
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            claim(&d, "t", id).stored(at(i as u64));
        }
        assert_eq!(d.lock().map.len(), 3);
        assert_eq!(d.evicted_early(), 1);
        // "a" was forgotten, the others are remembered.
        claim(&d, "t", "a").stored(at(9));
        assert!(matches!(d.begin("t", "c"), Begin::Stored(s) if s == at(2)));
        assert!(matches!(d.begin("t", "d"), Begin::Stored(s) if s == at(3)));
        assert!(matches!(d.begin("t", "b"), Begin::Claimed(_)));
    }

    #[test]
    fn off_and_on() {
        assert!(DedupConfig::default().enabled());
        assert!(!DedupConfig::OFF.enabled());
        let zero = DedupConfig {
            max_entries: 0,
            ..DedupConfig::default()
        };
        assert!(!zero.enabled());
    }
}
