//! Send de-duplication: a repeated send of a message id is answered with
//! the original result instead of being stored again.
//!
//! The official producers retry a failed send with the same message id,
//! so a send that timed out after its write succeeded would otherwise be
//! stored (and delivered) twice. The guarantee, per broker:
//!
//! - a message is a duplicate when a message of the **same topic** with
//!   the **same message id** was accepted by this broker within the last
//!   [`DedupConfig::window`], whatever its kind; it is not written or
//!   parked again, and its send result is the original one ([`Outcome`]):
//!   for a message written to its topic, the original queue offset (it
//!   stays in the original queue); for a delayed message, the original
//!   park offset and recall handle; for a transactional half message, the
//!   original park offset and transaction id;
//! - this holds whatever happened to the original since: a delayed
//!   message that was delivered (or recalled) in the meantime, or a half
//!   message whose transaction has ended, is still answered with its
//!   original result, and nothing new is parked or delivered (a retry of
//!   a delayed message whose time has passed by then is answered the
//!   same way);
//! - two sends of one id racing are stored once: the later one waits for
//!   the earlier one's outcome and, if that write failed, writes itself;
//! - after a restart, ids accepted by the previous run are found in the
//!   store's message-id index for one window after opening (each new id
//!   costs an index lookup then), and remembered for the rest of their
//!   own window (counted from their store time). The index holds every
//!   record's message id whatever its topic, so parked records (in the
//!   `%PARK%` system topics, the real topic in a reserved property) are
//!   found too; of the records of the id and topic, the oldest is the
//!   original (a delivered delayed message or committed half message has
//!   a later copy in its topic). A write the previous run lost (not
//!   fsynced before a machine crash under `async`) is not found, so its
//!   retry is stored;
//! - memory is bounded by [`DedupConfig::max_entries`] ids (about 220
//!   bytes each): when more distinct ids arrive within one window, the
//!   oldest are forgotten first, so the window is effectively shortened
//!   to `max_entries / send rate`;
//! - not de-duplicated: the same id on another topic or another broker,
//!   and a retry that arrives after the window (a delayed message due
//!   later than the window is parked again by such a retry). (A send
//!   without a message id is refused at the edge; the check skips one
//!   anyway.)

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tern_model::{now_ms, system};
use tern_store::{Store, StoredMessage};
use tokio::sync::watch;

use crate::{park, timer, txn};

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

/// Where a message was written to its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The queue the message is in.
    pub queue_id: u32,
    /// Its offset in that queue.
    pub queue_offset: u64,
}

/// The park a delayed or transactional message waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkKind {
    /// The delay timer's park: the recall handle names the offset.
    Timer,
    /// The half-message park: the transaction id names the offset.
    Half,
}

/// Where a delayed or transactional message was parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkedAt {
    pub park: ParkKind,
    /// Its offset in the park's topic.
    pub offset: u64,
}

/// What the first send of an id produced: what a repeated send is
/// answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored(Stored),
    Parked(ParkedAt),
}

/// What [`Dedup::begin`] found for one (topic, message id).
#[derive(Debug)]
pub enum Begin {
    /// Written to its topic within the window: answer with this, write
    /// nothing.
    Stored(Stored),
    /// Parked within the window: answer with this, park nothing.
    Parked(ParkedAt),
    /// The caller writes it, then completes the claim (dropping it
    /// without completing it means the write failed).
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
        outcome: Outcome,
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
        self.table.lock()
    }

    /// Looks up `message_id` of `topic`, claiming it if nobody stored or
    /// is storing it.
    pub fn begin(self: &Arc<Self>, topic: &str, message_id: &str) -> Begin {
        let key: Arc<str> = Arc::from(format!("{topic}\0{message_id}"));
        let now = Instant::now();
        let mut t = self.lock();
        self.expire(&mut t, now);
        match t.map.get(&key) {
            Some(Slot::Done { at, outcome, .. })
                if now.saturating_duration_since(*at) < self.cfg.window =>
            {
                return match *outcome {
                    Outcome::Stored(s) => Begin::Stored(s),
                    Outcome::Parked(p) => Begin::Parked(p),
                };
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

    /// During the first window after opening, what the previous run
    /// made of this id (same topic, accepted within the window), from
    /// the store's message-id index. Blocking.
    /// Returns the outcome and how long ago it was stored.
    pub fn recall(
        &self,
        store: &Store,
        topic: &str,
        message_id: &str,
    ) -> Option<(Outcome, Duration)> {
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
        // The oldest record of the id for this topic is the original: a
        // released delayed or committed half message also has a later
        // copy in its topic.
        found
            .into_iter()
            .filter(|m| m.position < self.boot_end && m.store_timestamp_ms >= since)
            .filter_map(|m| Some((m.position, m.store_timestamp_ms, outcome_of(&m, topic)?)))
            .min_by_key(|(position, _, _)| *position)
            .map(|(_, stored_ms, outcome)| {
                let age_ms = now.saturating_sub(stored_ms);
                (
                    outcome,
                    Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)),
                )
            })
    }
}

/// What stored record `m` is the outcome of, if it is a message of
/// `topic`: written to it, or parked for it.
fn outcome_of(m: &StoredMessage, topic: &str) -> Option<Outcome> {
    let stored = m.message.topic.as_str();
    if stored == topic {
        return Some(Outcome::Stored(Stored {
            queue_id: m.message.queue_id,
            queue_offset: m.queue_offset,
        }));
    }
    if m.message
        .properties
        .get(system::REAL_TOPIC)
        .map(String::as_str)
        != Some(topic)
    {
        return None;
    }
    let park = if stored == park::topic_of(timer::PARK_NAME) {
        ParkKind::Timer
    } else if stored == park::topic_of(txn::PARK_NAME) {
        ParkKind::Half
    } else {
        return None;
    };
    Some(Outcome::Parked(ParkedAt {
        park,
        offset: m.queue_offset,
    }))
}

/// Waits until the send that owns a pending id has its outcome.
pub async fn wait(mut rx: watch::Receiver<bool>) {
    // An error means the owner is gone: its outcome is in the table too.
    let _ = rx.wait_for(|done| *done).await;
}

/// The right to write one (topic, message id); other sends of it wait
/// until it is completed ([`Claim::stored`], [`Claim::parked`]) or
/// dropped (the write failed, so the next one writes).
#[derive(Debug)]
pub struct Claim {
    dedup: Arc<Dedup>,
    key: Arc<str>,
    tx: watch::Sender<bool>,
    done: bool,
}

impl Claim {
    /// Records where the message was written. Quick: may run on the
    /// store's flusher thread.
    pub fn stored(self, stored: Stored) {
        self.complete(Outcome::Stored(stored), Duration::ZERO);
    }

    /// Records where the message was parked. Quick, like
    /// [`Claim::stored`].
    pub fn parked(self, parked: ParkedAt) {
        self.complete(Outcome::Parked(parked), Duration::ZERO);
    }

    /// Records the outcome of the id, reached `age` ago (by an earlier
    /// run when not zero: it is remembered for the rest of its window
    /// only).
    pub fn complete(mut self, outcome: Outcome, age: Duration) {
        let d = Arc::clone(&self.dedup);
        let now = Instant::now();
        let at = now.checked_sub(age).unwrap_or(now);
        let mut t = d.lock();
        let seq = t.next_seq;
        t.next_seq += 1;
        t.map
            .insert(Arc::clone(&self.key), Slot::Done { seq, at, outcome });
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
        claim(&d, "t", "old").complete(Outcome::Stored(at(1)), Duration::from_secs(61));
        claim(&d, "t", "recent").complete(Outcome::Stored(at(2)), Duration::from_secs(30));
        assert!(matches!(d.begin("t", "old"), Begin::Claimed(_)));
        assert!(matches!(d.begin("t", "recent"), Begin::Stored(s) if s == at(2)));
    }

    #[test]
    fn an_id_recalled_from_an_earlier_run_expires_at_the_end_of_its_own_window() {
        let d = dedup(Duration::from_millis(200), 10);
        claim(&d, "t", "old").complete(Outcome::Stored(at(1)), Duration::from_millis(120));
        claim(&d, "t", "new").stored(at(2));
        assert!(matches!(d.begin("t", "old"), Begin::Stored(s) if s == at(1)));
        std::thread::sleep(Duration::from_millis(120));
        assert!(matches!(d.begin("t", "old"), Begin::Claimed(_)));
        assert!(matches!(d.begin("t", "new"), Begin::Stored(s) if s == at(2)));
    }

    #[test]
    fn parked_ids_are_answered_with_their_park_offset() {
        let d = dedup(Duration::from_secs(60), 10);
        let delayed = ParkedAt {
            park: ParkKind::Timer,
            offset: 4,
        };
        let half = ParkedAt {
            park: ParkKind::Half,
            offset: 4,
        };
        claim(&d, "t", "d").parked(delayed);
        claim(&d, "t", "h").parked(half);
        assert!(matches!(d.begin("t", "d"), Begin::Parked(p) if p == delayed));
        assert!(matches!(d.begin("t", "h"), Begin::Parked(p) if p == half));
        assert!(matches!(d.begin("u", "d"), Begin::Claimed(_)));
    }

    fn record(topic: &str, real: Option<&str>, queue_offset: u64) -> StoredMessage {
        let mut properties = std::collections::BTreeMap::new();
        if let Some(real) = real {
            properties.insert(system::REAL_TOPIC.to_owned(), real.to_owned());
        }
        StoredMessage {
            position: 0,
            size: 0,
            queue_offset,
            store_timestamp_ms: 0,
            message: tern_model::Message {
                topic: tern_model::TopicName::new(topic).unwrap(),
                queue_id: 2,
                message_id: "ID".into(),
                tag: None,
                keys: Vec::new(),
                properties,
                body: Vec::new(),
                born_timestamp_ms: 0,
                flags: 0,
            },
        }
    }

    #[test]
    fn index_records_are_read_as_outcomes_of_their_real_topic() {
        let timer = park::topic_of(timer::PARK_NAME);
        let half = park::topic_of(txn::PARK_NAME);
        let stored = |queue_offset| {
            Some(Outcome::Stored(Stored {
                queue_id: 2,
                queue_offset,
            }))
        };
        let parked = |park, offset| Some(Outcome::Parked(ParkedAt { park, offset }));
        assert_eq!(outcome_of(&record("t", None, 3), "t"), stored(3));
        // A released copy is in its topic, still carrying the property.
        assert_eq!(outcome_of(&record("t", Some("t"), 5), "t"), stored(5));
        assert_eq!(
            outcome_of(&record(&timer, Some("t"), 7), "t"),
            parked(ParkKind::Timer, 7)
        );
        assert_eq!(
            outcome_of(&record(&half, Some("t"), 8), "t"),
            parked(ParkKind::Half, 8)
        );
        // Another topic, parked or not, or a park record of another one.
        assert_eq!(outcome_of(&record("u", None, 3), "t"), None);
        assert_eq!(outcome_of(&record("u", Some("t"), 3), "t"), None);
        assert_eq!(outcome_of(&record(&timer, Some("u"), 7), "t"), None);
        assert_eq!(outcome_of(&record(&half, None, 7), "t"), None);
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
