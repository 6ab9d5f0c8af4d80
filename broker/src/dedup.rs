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
//! - memory is bounded by [`DedupConfig::max_entries`] ids, about 40
//!   bytes each ([`BYTES_PER_ENTRY`]): when more distinct ids arrive
//!   within one window, the oldest are forgotten first, so the window is
//!   effectively shortened to `max_entries / send rate`;
//! - an id is remembered as a keyed 96-bit hash of topic and id, not as
//!   text: two different ids of a topic are taken for one only if both
//!   hashes collide, about once in 2^96 / `max_entries` sends (the keys
//!   are random per run, so ids cannot be chosen to collide);
//! - not de-duplicated: the same id on another topic or another broker,
//!   and a retry that arrives after the window (a delayed message due
//!   later than the window is parked again by such a retry). (A send
//!   without a message id is refused at the edge; the check skips one
//!   anyway.)

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
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
    /// The random keys of the two hashes that name an id.
    keys: (RandomState, RandomState),
    /// Times are kept as microseconds since then (plus [`TIME_BIAS_US`]).
    epoch: Instant,
    /// Commit-log end when the broker opened: records below it were
    /// written by an earlier run and are looked up in the index.
    boot_end: u64,
    /// Until then, ids not in memory are looked up in the index.
    recall_until: Instant,
    /// Ids forgotten before their window ended (memory bound reached).
    evicted_early: AtomicU64,
}

/// Memory per remembered id at the default [`DedupConfig::max_entries`],
/// in bytes: a 32-byte [`Entry`] and its share of the hash table's 4-byte
/// slots (at most 3/4 of them used, a power of two many).
pub const BYTES_PER_ENTRY: usize = 40;

/// A (topic, message id) as the table keeps it: two hashes of it with
/// independent random keys, 96 bits in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    hash: u64,
    check: u32,
}

/// One remembered id, in the order stored (32 bytes).
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    /// When it was stored: microseconds since [`Dedup::epoch`] plus
    /// [`TIME_BIAS_US`] (so that an id recalled from an earlier run, stored
    /// before this one started, has a time too).
    at_us: u64,
    /// Queue offset or park offset.
    offset: u64,
    check: u32,
    /// The queue id, or [`PLACE_TIMER`] / [`PLACE_HALF`] for a park.
    place: u32,
}

/// [`Entry::place`] of a message parked by the delay timer.
const PLACE_TIMER: u32 = u32::MAX;
/// [`Entry::place`] of a parked half message.
const PLACE_HALF: u32 = u32::MAX - 1;
/// Added to every time, about 35 years.
const TIME_BIAS_US: u64 = 1 << 50;
/// A used slot of the hash table: this bit, and the low 31 bits of the
/// entry's sequence number (entries alive at once are fewer than 2^31).
const SLOT_USED: u32 = 1 << 31;
const SEQ_MASK: u32 = SLOT_USED - 1;
/// Most ids remembered, whatever the configuration says.
const MAX_ENTRIES_LIMIT: usize = SEQ_MASK as usize;
/// Entries reserved when the table is made (their pages become resident
/// only when written); a larger table grows as it fills.
const RESERVE_ENTRIES: usize = 1 << 21;

impl Entry {
    fn key(&self) -> Key {
        Key {
            hash: self.hash,
            check: self.check,
        }
    }

    fn outcome(&self) -> Outcome {
        match self.place {
            PLACE_TIMER => Outcome::Parked(ParkedAt {
                park: ParkKind::Timer,
                offset: self.offset,
            }),
            PLACE_HALF => Outcome::Parked(ParkedAt {
                park: ParkKind::Half,
                offset: self.offset,
            }),
            queue_id => Outcome::Stored(Stored {
                queue_id,
                queue_offset: self.offset,
            }),
        }
    }
}

/// The ids stored within the window, oldest first, in a ring of
/// [`Entry`] (`max_entries` at most) with an open-addressing hash table
/// (linear probing, 4-byte slots naming an entry by its sequence number)
/// from each key to its newest entry. An id stored again gets a new entry;
/// the older one stays in the ring, unnamed by the table, until it is the
/// oldest and dropped. Sends being written are in `pending`.
#[derive(Debug)]
struct Table {
    ring: VecDeque<Entry>,
    /// Sequence number of `ring[0]`; entry `seq` is `ring[seq - front_seq]`.
    front_seq: u64,
    /// `0` (free) or `SLOT_USED | (seq & SEQ_MASK)`; a power of two many.
    slots: Vec<u32>,
    /// Used slots.
    named: usize,
    /// Ids claimed and being written.
    pending: HashMap<Key, watch::Receiver<bool>>,
    /// Most entries.
    max_entries: usize,
    /// When the last early eviction was logged.
    warned: Option<Instant>,
}

impl Table {
    fn new(max_entries: usize) -> Self {
        let max_entries = max_entries.min(MAX_ENTRIES_LIMIT);
        // At most 3/4 of the slots in use: short probe sequences.
        let slots = (max_entries + max_entries / 3).next_power_of_two().max(16);
        Self {
            ring: VecDeque::with_capacity(max_entries.min(RESERVE_ENTRIES)),
            front_seq: 0,
            slots: vec![0; slots],
            named: 0,
            pending: HashMap::new(),
            max_entries,
            warned: None,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The entry a used slot names.
    fn entry_of(&self, slot: u32) -> &Entry {
        let ahead = (slot & SEQ_MASK).wrapping_sub(self.front_seq as u32) & SEQ_MASK;
        &self.ring[ahead as usize]
    }

    /// The slot naming `key`'s newest entry.
    fn find(&self, key: Key) -> Option<usize> {
        let mask = self.mask();
        let mut i = key.hash as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            let e = self.entry_of(s);
            if e.hash == key.hash && e.check == key.check {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The newest entry of `key`.
    fn get(&self, key: Key) -> Option<&Entry> {
        self.find(key).map(|i| self.entry_of(self.slots[i]))
    }

    /// Appends an entry and names it as its key's newest. The caller
    /// made room (`ring.len() < max_entries`).
    fn push(&mut self, e: Entry) {
        if self.ring.len() == self.ring.capacity() {
            // Grow to at most `max_entries`, not to the next power of two.
            let want = (self.ring.capacity() * 2)
                .max(16)
                .min(self.max_entries.max(1));
            self.ring.reserve_exact(want - self.ring.len());
        }
        let seq = self.front_seq + self.ring.len() as u64;
        let slot = SLOT_USED | (seq as u32 & SEQ_MASK);
        let found = self.find(e.key());
        self.ring.push_back(e);
        match found {
            Some(i) => self.slots[i] = slot,
            None => {
                let mask = self.mask();
                let mut i = e.hash as usize & mask;
                while self.slots[i] != 0 {
                    i = (i + 1) & mask;
                }
                self.slots[i] = slot;
                self.named += 1;
            }
        }
    }

    /// Drops the oldest entry (and its slot, if it is its key's newest).
    fn pop(&mut self) {
        let Some(&e) = self.ring.front() else {
            return;
        };
        if let Some(i) = self.find(e.key())
            && self.slots[i] & SEQ_MASK == self.front_seq as u32 & SEQ_MASK
        {
            self.free(i);
        }
        self.ring.pop_front();
        self.front_seq += 1;
    }

    /// Frees slot `i`, moving later slots of its probe sequence back
    /// (no tombstones).
    fn free(&mut self, i: usize) {
        let mask = self.mask();
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = self.entry_of(s).hash as usize & mask;
            // It may fill the hole if its home is not after the hole on
            // the way to `j`.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        self.named -= 1;
    }
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
        let now = Instant::now();
        let max_entries = if cfg.enabled() { cfg.max_entries } else { 0 };
        Self {
            cfg,
            table: Mutex::new(Table::new(max_entries)),
            keys: (RandomState::new(), RandomState::new()),
            epoch: now,
            boot_end,
            recall_until: now + cfg.window,
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

    fn key(&self, topic: &str, message_id: &str) -> Key {
        let hash = |keys: &RandomState| {
            let mut h = keys.build_hasher();
            // Topic names cannot hold a NUL: the pair is unambiguous.
            h.write(topic.as_bytes());
            h.write_u8(0);
            h.write(message_id.as_bytes());
            h.finish()
        };
        Key {
            hash: hash(&self.keys.0),
            check: hash(&self.keys.1) as u32,
        }
    }

    /// Microseconds since [`Dedup::epoch`] plus [`TIME_BIAS_US`].
    fn time_us(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch).as_micros();
        TIME_BIAS_US.saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    fn window_us(&self) -> u64 {
        u64::try_from(self.cfg.window.as_micros()).unwrap_or(u64::MAX)
    }

    /// Looks up `message_id` of `topic`, claiming it if nobody stored or
    /// is storing it.
    pub fn begin(self: &Arc<Self>, topic: &str, message_id: &str) -> Begin {
        let key = self.key(topic, message_id);
        let now = Instant::now();
        let now_us = self.time_us(now);
        let mut t = self.lock();
        self.expire(&mut t, now, 0);
        if let Some(e) = t.get(key)
            && now_us.saturating_sub(e.at_us) < self.window_us()
        {
            return match e.outcome() {
                Outcome::Stored(s) => Begin::Stored(s),
                Outcome::Parked(p) => Begin::Parked(p),
            };
        }
        // Expired (not yet forgotten), or unknown: pending, or free.
        if let Some(rx) = t.pending.get(&key) {
            return Begin::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(false);
        t.pending.insert(key, rx);
        Begin::Claimed(Claim {
            dedup: Arc::clone(self),
            key,
            tx,
            done: false,
        })
    }

    /// Forgets ids past their window (at most [`EXPIRE_BATCH`]), and the
    /// oldest ones past the memory bound, keeping room for `room` more.
    fn expire(&self, t: &mut Table, now: Instant, room: usize) {
        let now_us = self.time_us(now);
        let window_us = self.window_us();
        let mut expired = 0;
        while let Some(front) = t.ring.front() {
            let old = now_us.saturating_sub(front.at_us) >= window_us;
            let over = t.ring.len() + room > t.max_entries;
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
            t.pop();
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
    key: Key,
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
        let age_us = u64::try_from(age.as_micros()).unwrap_or(u64::MAX);
        let (place, offset) = match outcome {
            Outcome::Stored(s) => {
                debug_assert!(s.queue_id < PLACE_HALF, "queue ids are below 1024");
                (s.queue_id, s.queue_offset)
            }
            Outcome::Parked(ParkedAt {
                park: ParkKind::Timer,
                offset,
            }) => (PLACE_TIMER, offset),
            Outcome::Parked(ParkedAt {
                park: ParkKind::Half,
                offset,
            }) => (PLACE_HALF, offset),
        };
        let entry = Entry {
            hash: self.key.hash,
            at_us: d.time_us(now).saturating_sub(age_us),
            offset,
            check: self.key.check,
            place,
        };
        let mut t = d.lock();
        t.pending.remove(&self.key);
        d.expire(&mut t, now, 1);
        t.push(entry);
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
        t.pending.remove(&self.key);
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
        assert_eq!(d.lock().ring.len(), 1, "the expired entry is gone");
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
        assert!(d.lock().ring.len() > 200, "{}", d.lock().ring.len());
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
        assert_eq!(d.lock().named, 3);
        assert_eq!(d.evicted_early(), 1);
        // "a" was forgotten, the others are remembered.
        claim(&d, "t", "a").stored(at(9));
        assert!(matches!(d.begin("t", "c"), Begin::Stored(s) if s == at(2)));
        assert!(matches!(d.begin("t", "d"), Begin::Stored(s) if s == at(3)));
        assert!(matches!(d.begin("t", "b"), Begin::Claimed(_)));
    }

    /// The ring and hash table against a plain map, through wrap-arounds
    /// of the ring, of the probe sequences and of the 31-bit sequence
    /// numbers, with ids stored again and hashes sharing home slots.
    #[test]
    fn the_table_names_the_newest_entry_of_each_key_until_it_is_dropped() {
        let mut t = Table::new(20);
        assert_eq!(t.slots.len(), 32);
        t.front_seq = u64::from(SEQ_MASK) - 30;
        let mut model: VecDeque<(Key, u64)> = VecDeque::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000u64 {
            let r = next();
            // 40 keys, several per home slot: some share the low bits.
            let k = r % 40;
            let key = Key {
                hash: (k % 7) | ((k / 7) << 40),
                check: k as u32,
            };
            if r >> 60 < 11 && t.ring.len() < t.max_entries {
                t.push(Entry {
                    hash: key.hash,
                    at_us: 0,
                    offset: round,
                    check: key.check,
                    place: 0,
                });
                model.push_back((key, round));
            } else {
                t.pop();
                model.pop_front();
            }
            assert_eq!(t.ring.len(), model.len());
            let mut named = 0;
            for k in 0..40u64 {
                let key = Key {
                    hash: (k % 7) | ((k / 7) << 40),
                    check: k as u32,
                };
                let want = model.iter().rev().find(|(m, _)| *m == key).map(|e| e.1);
                named += usize::from(want.is_some());
                assert_eq!(t.get(key).map(|e| e.offset), want, "round {round}, key {k}");
                // Same hash, another check: another id.
                let other = Key { check: 99, ..key };
                assert!(t.get(other).is_none());
            }
            assert_eq!(t.named, named);
        }
        assert!(t.front_seq > u64::from(SEQ_MASK), "the sequence wrapped");
    }

    #[test]
    fn an_entry_costs_about_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        let t = Table::new(DedupConfig::DEFAULT_MAX_ENTRIES);
        let bytes = t.ring.capacity() * std::mem::size_of::<Entry>() + t.slots.len() * 4;
        assert_eq!(t.ring.capacity(), DedupConfig::DEFAULT_MAX_ENTRIES);
        assert!(
            bytes <= BYTES_PER_ENTRY * DedupConfig::DEFAULT_MAX_ENTRIES + (1 << 20),
            "{bytes}"
        );
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
