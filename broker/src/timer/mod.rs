//! Delayed messages: held in the `TIMER` park ([`crate::park`]) until their
//! delivery time, then written to their topic.
//!
//! The timer keeps, in memory, the park offset and topic of each pending
//! message by its slot: the delivery time rounded up to the precision. A
//! thread wakes at every slot boundary and releases everything whose slot
//! has come, in batches of 16384 spread over up to four threads: each
//! batch is one journal fsync and one store batch of byte-for-byte copies
//! of the parked records (nothing decoded). So a message is never
//! delivered before its time, and normally within one precision after it.
//! The slots are rebuilt from the park at open, so pending messages
//! survive a restart or a crash; the park makes each release happen
//! exactly once.
//!
//! The slow part of a release (reading the parked records, checking their
//! checksums, laying out the copies) is done ahead of time: after each
//! release the thread stages the slots due within [`STAGE_AHEAD_MS`] (or
//! one precision, if longer) with [`Park::stage_copies`], up to
//! [`DelayConfig::stage_max_bytes`] in memory, so at the due time only the journal
//! fsync and the write remain. A staged
//! message can still be recalled (its release then falls back to the
//! ordinary path, which skips it); messages scheduled into a slot after it
//! was staged are released the ordinary way.
//!
//! A released message keeps its kind and delivery time (consumers see
//! DELAY and `delivery_timestamp`); it goes to the next queue of its topic
//! in turn.

mod config;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tern_model::{Message, TopicName, now_ms};
use tern_store::Store;

pub use config::DelayConfig;

use crate::error::{BrokerError, Result};
use crate::meta::Registry;
use crate::park::{Park, Parked, Staged};

/// The timer's park.
pub(crate) const PARK_NAME: &str = "TIMER";
/// Messages released in one batch.
const RELEASE_BATCH: usize = 16_384;
/// Most threads releasing one burst.
const MAX_WORKERS: usize = 4;
/// Wait before retrying a release that failed.
const RETRY_MS: i64 = 1000;
/// How far ahead slots are staged, at least (ms).
pub const STAGE_AHEAD_MS: i64 = 2000;

/// A pending message: its park offset and its topic.
type Due = (u64, Arc<TopicName>);

/// A batch of one slot staged ahead of its time.
#[derive(Debug)]
struct StagedBatch {
    slot: i64,
    due: Vec<Due>,
    staged: Staged,
}

/// The delayed-message timer.
#[derive(Debug)]
pub struct Timer {
    park: Arc<Park>,
    registry: Arc<Registry>,
    precision_ms: i64,
    max_delay_ms: i64,
    /// Most bytes of copies staged ahead of their slots (the rest is read
    /// when due).
    stage_max_bytes: u64,
    /// Pending park offsets and their topics, by slot (ms since the
    /// epoch).
    slots: Mutex<BTreeMap<i64, Vec<Due>>>,
    /// Batches of slots not yet due, read ahead ([`Timer::stage`]).
    staged: Mutex<Vec<StagedBatch>>,
    /// Bytes `staged` holds.
    staged_bytes: AtomicU64,
    /// One shared copy of each topic name the slots refer to.
    names: Mutex<HashMap<TopicName, Arc<TopicName>>>,
    /// Turns the queues of released messages.
    turn: AtomicU32,
    stop: Arc<Stop>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Tells the timer thread to end.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    signal: Condvar,
}

impl Stop {
    fn set(&self) {
        *self.stopped.lock() = true;
        self.signal.notify_all();
    }

    /// Waits up to `ms`; whether stop was set.
    fn wait(&self, ms: i64) -> bool {
        let mut g = self.stopped.lock();
        let timeout = Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(1));
        self.signal
            .wait_while_for(&mut g, |stopped| !*stopped, timeout);
        *g
    }
}

impl Timer {
    /// Opens the timer's park in `dir`, schedules what it holds, and
    /// starts the timer thread. Blocking.
    pub fn open(
        store: Arc<Store>,
        registry: Arc<Registry>,
        dir: &Path,
        cfg: DelayConfig,
    ) -> Result<Arc<Timer>> {
        cfg.validate()?;
        let park = Park::open(store, dir, PARK_NAME)?;
        let timer = Arc::new(Timer {
            park,
            registry,
            precision_ms: millis(cfg.precision),
            max_delay_ms: millis(cfg.max_delay),
            stage_max_bytes: cfg.stage_max_bytes,
            slots: Mutex::new(BTreeMap::new()),
            staged: Mutex::new(Vec::new()),
            staged_bytes: AtomicU64::new(0),
            names: Mutex::new(HashMap::new()),
            turn: AtomicU32::new(0),
            stop: Arc::new(Stop::default()),
            thread: Mutex::new(None),
        });
        let mut due = Vec::new();
        timer
            .park
            .pending(|p| due.push((p.offset, deliver_at(&p), p.message.topic)))?;
        timer.add(due.into_iter());
        let (weak, stop) = (Arc::downgrade(&timer), Arc::clone(&timer.stop));
        let handle = std::thread::Builder::new()
            .name("tern-timer".into())
            .spawn(move || run(&weak, &stop))
            .map_err(|e| BrokerError::Failed(format!("cannot start the timer thread: {e}")))?;
        *timer.thread.lock() = Some(handle);
        Ok(timer)
    }

    /// The longest delay a message may ask for, in ms.
    pub fn max_delay_ms(&self) -> i64 {
        self.max_delay_ms
    }

    /// Messages waiting for their time.
    pub fn pending(&self) -> usize {
        self.park.len()
    }

    /// Parks `msgs` (delayed messages, each with its delivery time) and
    /// calls `done` with their park offsets once stored.
    pub fn schedule(
        self: &Arc<Self>,
        msgs: Vec<Message>,
        done: impl FnOnce(Result<Vec<u64>>) + Send + 'static,
    ) {
        let keys: Vec<(i64, TopicName)> = msgs
            .iter()
            .map(|m| (m.deliver_at_ms().unwrap_or(0), m.topic.clone()))
            .collect();
        let this = Arc::clone(self);
        self.park.park(msgs, move |r| {
            if let Ok(offsets) = &r {
                this.add(
                    offsets
                        .iter()
                        .zip(keys)
                        .map(|(&o, (at, topic))| (o, at, topic)),
                );
            }
            done(r);
        });
    }

    /// Cancels the delayed message of `topic` that `handle` names (from
    /// [`recall_handle`]); returns its message id. MESSAGE_NOT_FOUND if it
    /// was delivered or recalled already.
    pub fn recall(&self, topic: &TopicName, handle: &str) -> Result<String> {
        let (offset, id) = parse_handle(handle)?;
        let gone = || {
            BrokerError::MessageNotFound(format!(
                "delayed message {id} of {topic} was delivered or recalled already"
            ))
        };
        let Some(p) = self.park.get(offset)? else {
            return Err(gone());
        };
        if p.message.message_id != id || p.message.topic != *topic {
            return Err(BrokerError::Invalid(format!(
                "recall handle {handle:?} does not belong to topic {topic}"
            )));
        }
        if self.park.discard(&[offset])?.is_empty() {
            return Err(gone());
        }
        let slot = self.slot(deliver_at(&p));
        if let Some(v) = self.slots.lock().get_mut(&slot) {
            v.retain(|&(o, _)| o != offset);
        }
        tracing::debug!(%topic, message_id = %id, "delayed message recalled");
        Ok(id.to_owned())
    }

    /// Stops the timer thread and waits for it (pending messages stay
    /// parked). Dropping the timer stops it too, without waiting.
    pub fn close(&self) {
        self.stop.set();
        let handle = self.thread.lock().take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
        if let Err(e) = self.park.sync() {
            tracing::warn!(error = %e, "could not sync the timer's park journal at close");
        }
    }

    /// The slot of a delivery time: rounded up to the precision.
    fn slot(&self, at: i64) -> i64 {
        let p = self.precision_ms;
        at.div_euclid(p)
            .saturating_add(i64::from(at.rem_euclid(p) != 0))
            * p
    }

    fn add(&self, items: impl Iterator<Item = (u64, i64, TopicName)>) {
        let mut names = self.names.lock();
        let mut slots = self.slots.lock();
        for (offset, at, topic) in items {
            let name = match names.get(&topic) {
                Some(n) => Arc::clone(n),
                None => {
                    let n = Arc::new(topic.clone());
                    names.insert(topic, Arc::clone(&n));
                    n
                }
            };
            slots.entry(self.slot(at)).or_default().push((offset, name));
        }
    }

    /// Releases everything whose slot has come, then stages the slots
    /// due soon; returns the wait to the next slot boundary.
    fn tick(&self) -> i64 {
        let now = now_ms();
        let staged: Vec<StagedBatch> = {
            let mut st = self.staged.lock();
            let (ready, later) = std::mem::take(&mut *st)
                .into_iter()
                .partition(|b| b.slot <= now);
            *st = later;
            ready
        };
        let freed: u64 = staged.iter().map(|b| b.staged.bytes()).sum();
        self.staged_bytes.fetch_sub(freed, Ordering::Relaxed);
        let due = {
            let mut slots = self.slots.lock();
            let later = slots.split_off(&(now + 1));
            std::mem::replace(&mut *slots, later)
        };
        let mut due: Vec<Due> = due.into_values().flatten().collect();
        due.sort_unstable_by_key(|(o, _)| *o);
        let released = !due.is_empty() || !staged.is_empty();
        // Staged batches first: one journal fsync, then only writes.
        let mut batches = self.release_staged(staged, now);
        batches.extend(due.chunks(RELEASE_BATCH).map(<[Due]>::to_vec));
        // The rest is read now, by several threads: reading and copying
        // take most of the time, the store's append lock is short, and
        // one thread's journal fsync overlaps another's copying (so more
        // threads than cores still help).
        fan_out(batches, |b| self.release_or_retry(b, now));
        if released && let Err(e) = self.park.sync() {
            tracing::warn!(error = %e, "could not sync the timer's park journal");
        }
        self.stage(now_ms());
        let now = now_ms();
        self.slot(now + 1) - now
    }

    /// Reads ahead the messages due within [`STAGE_AHEAD_MS`] (or one
    /// precision) of `now`, up to [`DelayConfig::stage_max_bytes`] staged
    /// in all; what
    /// is not staged stays in its slot.
    fn stage(&self, now: i64) {
        if self.staged_bytes.load(Ordering::Relaxed) >= self.stage_max_bytes {
            return;
        }
        let ahead = now + self.precision_ms.max(STAGE_AHEAD_MS);
        let soon = {
            let mut slots = self.slots.lock();
            let later = slots.split_off(&(ahead + 1));
            std::mem::replace(&mut *slots, later)
        };
        if soon.is_empty() {
            return;
        }
        let mut batches = Vec::new();
        for (slot, mut due) in soon {
            due.sort_unstable_by_key(|(o, _)| *o);
            batches.extend(due.chunks(RELEASE_BATCH).map(|c| (slot, c.to_vec())));
        }
        let count = AtomicUsize::new(0);
        fan_out(batches, |(slot, due)| {
            let staged = if self.staged_bytes.load(Ordering::Relaxed) < self.stage_max_bytes {
                self.stage_batch(&due)
            } else {
                None
            };
            match staged {
                Some(staged) => {
                    self.staged_bytes
                        .fetch_add(staged.bytes(), Ordering::Relaxed);
                    count.fetch_add(staged.len(), Ordering::Relaxed);
                    self.staged.lock().push(StagedBatch { slot, due, staged });
                }
                None => self.slots.lock().entry(slot).or_default().extend(due),
            }
        });
        tracing::debug!(
            staged = count.into_inner(),
            bytes = self.staged_bytes.load(Ordering::Relaxed),
            "delayed messages read ahead of their time"
        );
    }

    /// Stages one batch; `None` if it could not be read (it is then
    /// released the ordinary way, which reports the problem).
    fn stage_batch(&self, due: &[Due]) -> Option<Staged> {
        let (items, orphans) = self.assign(due);
        if !orphans.is_empty() {
            return None;
        }
        match self.park.stage_copies(&items) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(error = %e, "could not read delayed messages ahead of time");
                None
            }
        }
    }

    /// Writes the staged batches; returns those to release the ordinary
    /// way (a message recalled or a topic deleted since they were
    /// staged). Failed ones are retried later.
    fn release_staged(&self, staged: Vec<StagedBatch>, now: i64) -> Vec<Vec<Due>> {
        let mut fallback = Vec::new();
        let mut ready = Vec::with_capacity(staged.len());
        let mut dues = Vec::with_capacity(staged.len());
        for b in staged {
            let mut topics: Vec<&Arc<TopicName>> = b.due.iter().map(|(_, t)| t).collect();
            topics.dedup_by(|a, b| Arc::ptr_eq(a, b));
            if topics
                .iter()
                .all(|t| self.registry.topic(t.as_str()).is_ok())
            {
                ready.push(b.staged);
                dues.push(b.due);
            } else {
                fallback.push(b.due);
            }
        }
        for (r, due) in self.park.release_staged(ready).into_iter().zip(dues) {
            match r {
                Ok(true) => {}
                Ok(false) => fallback.push(due),
                Err(e) => self.retry(&e, due, now),
            }
        }
        fallback
    }

    fn release_or_retry(&self, due: Vec<Due>, now: i64) {
        if let Err(e) = self.release(&due) {
            self.retry(&e, due, now);
        }
    }

    fn retry(&self, e: &BrokerError, due: Vec<Due>, now: i64) {
        tracing::warn!(error = %e, count = due.len(),
            "could not deliver delayed messages; retrying");
        self.slots
            .lock()
            .entry(self.slot(now + RETRY_MS))
            .or_default()
            .extend(due);
    }

    /// Copies the parked messages of `due` to their topics, each to the
    /// next queue of its topic in turn.
    fn release(&self, due: &[Due]) -> Result<()> {
        let (items, orphans) = self.assign(due);
        if !orphans.is_empty() {
            tracing::warn!(
                count = orphans.len(),
                "delayed messages are due but their topic no longer exists; dropping them"
            );
            self.park.discard(&orphans)?;
        }
        if !items.is_empty() {
            self.park.release_copies(&items)?;
        }
        Ok(())
    }

    /// The queue of each message of `due` (the next of its topic in
    /// turn), and the offsets of those whose topic no longer exists.
    fn assign<'a>(&self, due: &'a [Due]) -> (Vec<(u64, &'a TopicName, u32)>, Vec<u64>) {
        let mut queues: HashMap<&TopicName, Option<u32>> = HashMap::new();
        let mut items = Vec::with_capacity(due.len());
        let mut orphans = Vec::new();
        for (offset, topic) in due {
            let count = *queues
                .entry(topic)
                .or_insert_with(|| self.registry.topic(topic.as_str()).ok().map(|t| t.queues()));
            match count {
                Some(n) => {
                    let q = self.turn.fetch_add(1, Ordering::Relaxed) % n.max(1);
                    items.push((*offset, &**topic, q));
                }
                None => orphans.push(*offset),
            }
        }
        (items, orphans)
    }
}

/// Runs `work` on each job, on up to [`MAX_WORKERS`] threads taking the
/// next job as they finish one.
fn fan_out<T: Send>(jobs: Vec<T>, work: impl Fn(T) + Sync) {
    let workers = MAX_WORKERS.min(jobs.len());
    if workers <= 1 {
        jobs.into_iter().for_each(work);
        return;
    }
    let jobs = Mutex::new(jobs.into_iter());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let job = jobs.lock().next();
                    match job {
                        Some(j) => work(j),
                        None => return,
                    }
                }
            });
        }
    });
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.stop.set();
    }
}

/// The timer thread: holds the timer only while releasing, so dropping
/// the last other reference ends it.
fn run(timer: &Weak<Timer>, stop: &Stop) {
    loop {
        let Some(t) = timer.upgrade() else { return };
        let wait = t.tick();
        drop(t);
        if stop.wait(wait) {
            return;
        }
    }
}

fn deliver_at(p: &Parked) -> i64 {
    p.message.deliver_at_ms().unwrap_or(p.store_timestamp_ms)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The recall handle of the delayed message parked at `offset`.
pub fn recall_handle(offset: u64, message_id: &str) -> String {
    format!("{offset:x}:{message_id}")
}

fn parse_handle(handle: &str) -> Result<(u64, &str)> {
    handle
        .split_once(':')
        .and_then(|(o, id)| Some((u64::from_str_radix(o, 16).ok()?, id)))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| BrokerError::Invalid(format!("malformed recall handle {handle:?}")))
}

#[cfg(test)]
mod tests;
