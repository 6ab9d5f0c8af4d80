//! POP-style consumption: what RocketMQ 5 simple and push consumers use.
//!
//! A consumer group receives messages from a topic's queues; each
//! delivery makes the message invisible to the group for a while and comes
//! with a receipt handle. Acknowledging the handle finishes the message;
//! if the invisibility runs out first, the message is delivered again with
//! its attempt number raised. After [`crate::GroupConfig::max_deliveries`]
//! deliveries it goes to the group's dead-letter topic `%DLQ%<group>`
//! instead: moved by the next receive from its queue, or by the background
//! sweep (every `sweep_interval`) if no member receives any more. Every group gets every message; members of one group share
//! them.
//!
//! State is kept per (group, topic, queue) (the `state` module): the next
//! never-delivered offset and the deliveries in flight. The group's
//! committed offset in the store follows the lowest offset not yet done.
//!
//! **FIFO groups** get the messages of each message group in queue
//! order: a message is delivered only once every earlier message of its
//! message group is done (acknowledged or dead-lettered), including
//! retries; different message groups proceed in parallel. Messages read
//! ahead of their turn are held in the state (at most
//! [`MAX_HELD`] per queue) and journaled like deliveries, so they
//! stay held across a restart.
//!
//! **Where a new group starts.** The first time a group receives from a
//! queue, it starts at the group's committed offset in the store if it has
//! one, otherwise at the queue's *minimum* offset: every message still
//! stored, including those sent before the group's first receive, is
//! delivered. (RocketMQ clients can ask to start at the end instead; that
//! choice, if wanted, belongs to the caller via `Store::commit_offset`.)
//!
//! **Durability.** Every state change is appended to the journal
//! (`<dir>/pop.journal`, format in the `journal` module) and fsynced by a background
//! thread every `flush_interval` (default 10 ms), many changes to one
//! fsync. A crash loses at most that window of changes: an acknowledgement
//! lost that way means one more delivery (at-least-once), and a delivery
//! lost that way makes the message visible again at once. Nothing that was
//! durable is forgotten. At open, the journal is replayed (a torn tail is
//! ignored), reconciled with the store's committed offsets and queue
//! ends, and rewritten as a snapshot; it is compacted the same way when it
//! grows past `compact_bytes`.
//!
//! **Concurrency.** Each queue's state has its own mutex, found through
//! two read-mostly maps. A receive locks one queue at a time and reads the
//! store while holding it, so only members of one group reading the same
//! queue wait for each other; a receive from any queue skips queues that
//! another member is busy with. Dead-letter appends and registry writes
//! happen with no queue locked. The API is blocking; async callers use a
//! blocking pool.

mod dlq;
mod forget;
mod journal;
mod positions;
mod receive;
mod recover;
mod settle;
mod state;
mod sweep;

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tern_model::{GroupName, TopicName, now_ms};
use tern_store::{Store, StoredMessage};

pub use dlq::{
    PROP_DELIVERY_ATTEMPTS, PROP_ORIGIN_MESSAGE_ID, PROP_ORIGIN_QUEUE_ID, PROP_ORIGIN_QUEUE_OFFSET,
    PROP_ORIGIN_TOPIC,
};

pub use positions::Positions;
pub use receive::{HeldDeadLetters, MAX_HELD};

use crate::error::{BrokerError, Result};
use crate::fsutil::{ensure_dir, lock_file};
use crate::meta::Registry;
use crate::receipt::ReceiptCodec;
use journal::{Journal, Record};
use recover::{restore, snapshot};
use state::QueueState;

/// The journal's file name inside [`PopConfig::dir`].
pub const JOURNAL_FILE: &str = "pop.journal";
const LOCK_NAME: &str = "pop.lock";

/// Sequence numbers of one broker run are `epoch << SEQ_EPOCH_SHIFT` plus
/// a counter, so a handle issued before a crash whose delivery was not yet
/// durable can never match a delivery made after it.
const SEQ_EPOCH_SHIFT: u32 = 40;

/// How long a message stays invisible while it is being copied to the
/// dead-letter queue; if the copy fails, it is retried after this.
const DLQ_HOLD_MS: i64 = 30_000;

/// Least time between two compactions that drop forgotten state from the
/// journal.
const FORGOTTEN_COMPACT_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of the consumption state.
#[derive(Debug, Clone)]
pub struct PopConfig {
    /// Directory of the journal and the receipt key.
    pub dir: PathBuf,
    /// Longest time a state change waits for its fsync. Default 10 ms.
    pub flush_interval: Duration,
    /// The journal is compacted once larger than this and twice its last
    /// snapshot. Default 64 MiB.
    pub compact_bytes: u64,
    /// How often messages past their delivery limit whose invisibility
    /// ran out are moved to the dead-letter queue when no receive did it
    /// first. Default 1 s.
    pub sweep_interval: Duration,
}

impl PopConfig {
    /// The defaults, with files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            flush_interval: Duration::from_millis(10),
            compact_bytes: 64 << 20,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// One message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: StoredMessage,
    /// Present it to ack, change the invisibility, or dead-letter.
    pub receipt: String,
    /// Delivery attempt, from 1.
    pub attempt: u32,
    pub invisible_until_ms: i64,
}

/// Where one group stands in one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub queue_id: u32,
    /// The next never-delivered offset.
    pub next_offset: u64,
    /// The first offset not yet done (what the store has as the group's
    /// committed offset).
    pub committed_offset: u64,
    /// Deliveries awaiting an ack.
    pub in_flight: usize,
    /// Messages a FIFO group has read but holds back until the earlier
    /// messages of their message group are done.
    pub held: usize,
}

/// The consumption state of every group, topic and queue.
#[derive(Debug)]
pub struct Pop {
    inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
}

type QueueRef = Arc<Mutex<QueueState>>;
/// group -> topic -> subscription state.
type SubMap = HashMap<String, HashMap<String, Arc<Sub>>>;

/// One group reading one topic.
#[derive(Debug)]
struct Sub {
    group: GroupName,
    topic: TopicName,
    /// Where the next any-queue receive starts, for fairness.
    cursor: AtomicU32,
    queues: RwLock<HashMap<u32, QueueRef>>,
}

#[derive(Debug)]
struct Inner {
    cfg: PopConfig,
    store: Arc<Store>,
    registry: Arc<Registry>,
    codec: ReceiptCodec,
    journal: Journal,
    subs: RwLock<SubMap>,
    next_id: AtomicU32,
    epoch: u64,
    seq: AtomicU64,
    stop: Mutex<bool>,
    stop_signal: Condvar,
    /// Told the topics whose messages the background sweep moved to a
    /// dead-letter queue (a FIFO group may then go on): see
    /// [`Pop::on_swept`].
    swept: OnceLock<Swept>,
    /// State of a deleted topic or group was forgotten: the flusher
    /// compacts the journal so it goes from disk too.
    compact_soon: AtomicBool,
    /// One process per journal.
    _lock: File,
}

/// The callback of [`Pop::on_swept`].
struct Swept(Box<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Swept")
    }
}

impl Pop {
    /// Opens the consumption state in `cfg.dir`: loads (or creates) the
    /// receipt key, replays the journal, reconciles it with `store`, and
    /// starts the journal's flusher thread.
    pub fn open(cfg: PopConfig, store: Arc<Store>, registry: Arc<Registry>) -> Result<Self> {
        ensure_dir(&cfg.dir)?;
        let lock_file = lock_file(&cfg.dir, LOCK_NAME)?;
        let codec = ReceiptCodec::load_or_create(&cfg.dir)?;
        let path = cfg.dir.join(JOURNAL_FILE);
        let replay = journal::read(&path)?;
        if !replay.dropped.is_empty() {
            let keep = path.with_file_name(format!("{JOURNAL_FILE}.dropped"));
            tracing::warn!(
                path = %path.display(),
                bytes = replay.dropped.len(),
                saved_to = %keep.display(),
                "pop journal has a torn or damaged tail; ignoring it"
            );
            if let Err(e) = std::fs::write(&keep, &replay.dropped) {
                tracing::warn!(error = %e, "could not save the ignored journal tail");
            }
        }
        let (queues, last_epoch) = restore(&replay.records, &store);
        let queues = forget::registered(queues, &registry);
        let epoch = last_epoch + 1;
        let mut subs = SubMap::new();
        let mut max_id = 0;
        for (group, topic, queue, st) in queues {
            max_id = max_id.max(st.id);
            let sub = subs
                .entry(group.to_string())
                .or_default()
                .entry(topic.to_string())
                .or_insert_with(|| Arc::new(Sub::new(group, topic)));
            sub.queues.write().insert(queue, Arc::new(Mutex::new(st)));
        }
        let subs = RwLock::new(subs);
        let journal = Journal::create(&path, &snapshot(epoch, &subs))?;
        let inner = Inner {
            journal,
            cfg,
            store,
            registry,
            codec,
            subs,
            next_id: AtomicU32::new(max_id + 1),
            epoch,
            seq: AtomicU64::new((epoch << SEQ_EPOCH_SHIFT) + 1),
            stop: Mutex::new(false),
            stop_signal: Condvar::new(),
            swept: OnceLock::new(),
            compact_soon: AtomicBool::new(false),
            _lock: lock_file,
        };
        let inner = Arc::new(inner);
        let flusher = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("tern-pop-flush".into())
                .spawn(move || inner.run_flusher())
                .map_err(|e| BrokerError::Failed(format!("cannot start the pop flusher: {e}")))?
        };
        Ok(Self {
            inner,
            flusher: Some(flusher),
        })
    }

    /// The codec of this broker's receipt handles.
    pub fn receipts(&self) -> &ReceiptCodec {
        &self.inner.codec
    }

    /// Where `group` stands in each queue of `topic` it has received from,
    /// by queue id.
    pub fn stats(&self, group: &str, topic: &str) -> Vec<QueueStats> {
        let Some(sub) = self.inner.find_sub(group, topic) else {
            return Vec::new();
        };
        let queues: Vec<(u32, QueueRef)> = sub
            .queues
            .read()
            .iter()
            .map(|(&q, s)| (q, Arc::clone(s)))
            .collect();
        let mut out: Vec<QueueStats> = queues
            .into_iter()
            .map(|(queue_id, st)| {
                let st = st.lock();
                QueueStats {
                    queue_id,
                    next_offset: st.next(),
                    committed_offset: st.committed(),
                    in_flight: st.inflight_len() - st.held_len(),
                    held: st.held_len(),
                }
            })
            .collect();
        out.sort_by_key(|s| s.queue_id);
        out
    }

    /// Every (group, topic) with consumption state.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.inner
            .subs
            .read()
            .iter()
            .flat_map(|(g, topics)| topics.keys().map(move |t| (g.clone(), t.clone())))
            .collect()
    }

    /// Installs the callback the background dead-letter sweep calls with
    /// each topic it moved messages of, so waiting receivers can look
    /// again (a FIFO group's next message may now be due). Only the first
    /// call installs one.
    pub fn on_swept(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.inner.swept.set(Swept(Box::new(f)));
    }

    /// When (ms since the epoch) the earliest in-flight message of
    /// `group` in `topic` becomes visible again, if any: a long poll
    /// waits at most until then. Messages a FIFO group holds back have no
    /// such time: settling the message ahead of them (an ack) makes them
    /// due.
    pub fn next_expiry(&self, group: &str, topic: &str) -> Option<i64> {
        let sub = self.inner.find_sub(group, topic)?;
        let queues: Vec<QueueRef> = sub.queues.read().values().cloned().collect();
        queues.iter().filter_map(|q| q.lock().next_deadline()).min()
    }

    /// Makes every state change so far durable now.
    pub fn sync(&self) -> Result<()> {
        self.inner.journal.flush()
    }

    /// Stops the flusher after a final flush.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(t) = self.flusher.take() else {
            return Ok(());
        };
        *self.inner.stop.lock() = true;
        self.inner.stop_signal.notify_all();
        let _ = t.join();
        self.inner.journal.flush()
    }
}

impl Drop for Pop {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "pop journal not flushed at close; recent consumption state may be replayed");
        }
    }
}

impl Sub {
    fn new(group: GroupName, topic: TopicName) -> Self {
        Self {
            group,
            topic,
            cursor: AtomicU32::new(0),
            queues: RwLock::new(HashMap::new()),
        }
    }
}

impl Inner {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The state of `group` reading `topic`, created if new.
    fn sub(&self, group: &GroupName, topic: &TopicName) -> Arc<Sub> {
        if let Some(s) = self.find_sub(group.as_str(), topic.as_str()) {
            return s;
        }
        let mut subs = self.subs.write();
        Arc::clone(
            subs.entry(group.to_string())
                .or_default()
                .entry(topic.to_string())
                .or_insert_with(|| Arc::new(Sub::new(group.clone(), topic.clone()))),
        )
    }

    fn find_sub(&self, group: &str, topic: &str) -> Option<Arc<Sub>> {
        self.subs.read().get(group)?.get(topic).cloned()
    }

    /// The state of one queue, created if new: starting at the group's
    /// committed offset, else at the queue's minimum offset.
    fn queue(&self, sub: &Sub, queue: u32) -> QueueRef {
        if let Some(q) = sub.queues.read().get(&queue) {
            return Arc::clone(q);
        }
        let (group, topic) = (sub.group.as_str(), sub.topic.as_str());
        let (min, max) = self.store.queue_range(topic, queue);
        let start = self
            .store
            .committed_offset(group, topic, queue)
            .map_or(min, |c| c.max(min).min(max.max(min)));
        let mut queues = sub.queues.write();
        Arc::clone(queues.entry(queue).or_insert_with(|| {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            // Under the map's write lock, so it precedes any record of `id`.
            self.journal.append(&Record::Open {
                id,
                group: group.to_owned(),
                topic: topic.to_owned(),
                queue,
                next: start,
            });
            Arc::new(Mutex::new(QueueState::new(id, start)))
        }))
    }

    /// Hands the queue's committed offset to the store if it moved.
    fn commit(&self, sub: &Sub, queue: u32, st: &mut QueueState) {
        let c = st.committed();
        if c > st.committed_written {
            self.store
                .commit_offset(sub.group.as_str(), sub.topic.as_str(), queue, c);
            st.committed_written = c;
        }
    }

    /// The background thread: flushes the journal every `flush_interval`,
    /// compacts it when due, and sweeps dead letters every
    /// `sweep_interval`.
    fn run_flusher(&self) {
        let mut last_sweep = std::time::Instant::now();
        let mut last_forgot = last_sweep;
        let mut stop = self.stop.lock();
        loop {
            self.stop_signal
                .wait_for(&mut stop, self.cfg.flush_interval);
            if *stop {
                return;
            }
            drop(stop);
            // Failures are logged by the journal, once per change of state.
            let _ = self.journal.flush();
            // At most once a second, however many deletions follow.
            let forgot = last_forgot.elapsed() >= FORGOTTEN_COMPACT_INTERVAL
                && self.compact_soon.swap(false, Ordering::AcqRel);
            if forgot {
                last_forgot = std::time::Instant::now();
            }
            if (forgot || self.journal.wants_compaction(self.cfg.compact_bytes))
                && let Err(e) = self.journal.compact(|| snapshot(self.epoch, &self.subs))
            {
                self.compact_soon.fetch_or(forgot, Ordering::AcqRel);
                tracing::warn!(error = %e, "pop journal compaction failed; will retry");
            }
            if last_sweep.elapsed() >= self.cfg.sweep_interval {
                self.sweep_dead_letters(now_ms());
                last_sweep = std::time::Instant::now();
            }
            stop = self.stop.lock();
        }
    }
}
