//! Tern's storage engine: how a broker keeps messages on disk.
//!
//! - The **commit log** ([`commitlog`]) holds every message of every topic
//!   in one append-only sequence of segment files. Each record carries a
//!   CRC32C and its own position, so recovery can find the valid end.
//! - **Consume queues** ([`cqueue`]) hold, per topic and queue, fixed-size
//!   entries pointing into the commit log: reading at a queue offset is one
//!   read. A dispatcher thread tails the commit log and writes them.
//! - The **index** ([`index`]) finds messages by message id and by key;
//!   consume-queue entries carry store times, so a queue offset is found
//!   by timestamp with a binary search.
//! - **Flushing** follows the [`FlushPolicy`]; under `sync`, appends wait
//!   for a shared fsync and readers see only durable data.
//! - A **checkpoint** records how far consume queues and the index are
//!   durable; recovery re-reads the commit log from there.
//! - **Retention** deletes whole old segments by age or disk use, and
//!   refuses appends above a hard disk limit.
//! - **Consumer offsets** are kept per group, topic and queue.
//!
//! The API is blocking and thread-safe; async callers use a blocking pool.
#![forbid(unsafe_code)]

mod commitlog;
mod config;
mod cqueue;
mod dispatch;
pub mod durable;
mod error;
mod fsutil;
mod index;
mod listener;
mod offsets;
pub mod record;
mod recovery;
mod retention;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tern_model::{Message, TopicName};

pub use commitlog::{Appended, LogRecovery};
pub use config::{FlushPolicy, StoreConfig};
pub use error::{Result, StoreError};
pub use listener::StoreListener;
pub use record::StoredMessage;
pub use retention::RetentionReport;

use commitlog::{CommitLog, Signal, lock};
use cqueue::ConsumeQueue;
use index::{Index, KeyKind};
use offsets::Offsets;

/// What opening the store found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    /// Whether a checkpoint was found (a clean or checkpointed history).
    pub had_checkpoint: bool,
    pub log: LogRecovery,
    /// Where consume queues and the index were rebuilt from.
    pub redispatched_from: u64,
    /// Records re-dispatched.
    pub redispatched_records: u64,
    /// Consume queues whose tail was damaged and repaired.
    pub repaired_queues: Vec<String>,
    pub duration_ms: u64,
}

/// A snapshot of the store's state.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStats {
    pub segments: usize,
    pub min_offset: u64,
    pub max_offset: u64,
    pub flushed_offset: u64,
    pub dispatched_offset: u64,
    pub queues: usize,
    pub flushes: u64,
    pub flush_seconds_total: f64,
    pub disk_full: bool,
    pub recovery: RecoveryReport,
}

/// Messages read from one queue.
#[derive(Debug, Clone)]
pub struct QueueRead {
    pub messages: Vec<StoredMessage>,
    /// The offset to read next.
    pub next_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
}

type QueueMap = HashMap<String, HashMap<u32, Arc<ConsumeQueue>>>;

/// Largest single read when a queue's records lie next to each other.
const MAX_SPAN: u64 = 4 << 20;

#[derive(Debug)]
struct Inner {
    cfg: StoreConfig,
    log: CommitLog,
    queues: RwLock<QueueMap>,
    index: Mutex<Index>,
    offsets: Offsets,
    dispatched: AtomicU64,
    dispatched_signal: Signal,
    /// Wakes the cleaner at shutdown.
    shutdown: Signal,
    recovery: RecoveryReport,
    /// Commit-log positions retention must keep, by holder (see
    /// [`Store::hold_retention`]).
    holds: Mutex<Holds>,
    _lock: File,
}

/// Retention holds: positions by holder, and the configured holders that
/// have not reported yet (until they have, nothing is deleted).
#[derive(Debug, Default)]
struct Holds {
    at: BTreeMap<String, u64>,
    awaited: std::collections::BTreeSet<String>,
}

impl Holds {
    /// The lowest position retention must keep.
    fn floor(&self) -> u64 {
        if self.awaited.is_empty() {
            self.at.values().copied().min().unwrap_or(u64::MAX)
        } else {
            0
        }
    }
}

/// One record to copy with [`Store::append_copies`].
#[derive(Debug, Clone, Copy)]
pub struct CopyOf<'a> {
    /// Where the record is in the commit log.
    pub position: u64,
    /// The topic and queue the copy goes to.
    pub topic: &'a TopicName,
    pub queue_id: u32,
}

/// Copies of stored records read, checked and laid out by
/// [`Store::prepare_copies`], not yet written.
#[derive(Debug, Default)]
pub struct PreparedCopies {
    batch: record::Batch,
}

impl PreparedCopies {
    /// How many copies.
    pub fn len(&self) -> usize {
        self.batch.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.batch.records.is_empty()
    }

    /// Bytes the copies take (in memory now, in the log once written).
    pub fn bytes(&self) -> u64 {
        self.batch.len_bytes()
    }
}

/// Bytes read at once when copying records (records next to each other
/// share a read).
const COPY_SPAN: u64 = 4 << 20;

/// The storage engine. Cheap to share by reference across threads.
#[derive(Debug)]
pub struct Store {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Store {
    /// Opens (or creates) the store in `cfg.dir`, recovering from whatever
    /// state a crash left, and starts its flusher, dispatcher and cleaner.
    pub fn open(cfg: StoreConfig) -> Result<Self> {
        let inner = Arc::new(recovery::open(cfg)?);
        let mut threads = Vec::new();
        let spawn = |name: &str, f: fn(&Inner)| {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || f(&inner))
                .map_err(|e| StoreError::Io {
                    path: PathBuf::from(name),
                    source: e,
                })
        };
        threads.push(spawn("tern-flusher", |i| i.log.run_flusher())?);
        threads.push(spawn("tern-dispatch", dispatch::run)?);
        threads.push(spawn("tern-cleaner", retention::run)?);
        Ok(Self { inner, threads })
    }

    /// Appends a batch: every message or none. Returns where each went,
    /// once the batch is durable as the flush policy promises (under sync,
    /// after the fsync that covers it).
    pub fn append(&self, msgs: &[Message]) -> Result<Vec<Appended>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.append_then(msgs, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Like [`Store::append`], but returns at once and calls `done` with the
    /// result when the batch is durable. Under sync, `done` runs on the
    /// flusher thread and must be quick (e.g. send on a channel): this lets
    /// many appends wait for one fsync without a thread each.
    pub fn append_then(
        &self,
        msgs: &[Message],
        done: impl FnOnce(Result<Vec<Appended>>) + Send + 'static,
    ) {
        let mut batch = record::Batch::default();
        for m in msgs {
            if let Err(e) = m.validate(self.inner.cfg.max_body_bytes) {
                return done(Err(e.into()));
            }
            batch.push(m);
        }
        if msgs.is_empty() {
            return done(Ok(Vec::new()));
        }
        self.inner.log.append(&mut batch, Box::new(done));
    }

    /// Writes the records at `copies`' positions again, each as a new
    /// message of its `topic` and `queue_id`, with the same message id,
    /// tag, keys, properties, body, flags and born time: one batch, all or
    /// nothing, like [`Store::append`] (and returning, like it, once
    /// durable under the flush policy). The records are copied byte for
    /// byte after their checksums are verified, not decoded: this is how
    /// held-back messages are released in bulk. Blocking.
    pub fn append_copies(&self, copies: &[CopyOf<'_>]) -> Result<Vec<Appended>> {
        self.append_prepared(self.prepare_copies(copies)?)
    }

    /// The first half of [`Store::append_copies`]: reads the records at
    /// `copies`' positions, verifies their checksums and lays out their
    /// copies, without writing anything. What it returns can wait (for a
    /// due time, say) and be written with [`Store::append_prepared`]:
    /// the slow part of a bulk release done ahead of time. Blocking.
    pub fn prepare_copies(&self, copies: &[CopyOf<'_>]) -> Result<PreparedCopies> {
        let mut batch = record::Batch::default();
        // The last read: where it starts, its bytes, its segment file.
        let mut span: Option<(u64, Vec<u8>, PathBuf)> = None;
        for c in copies {
            // Reuse the last read when it holds the whole record.
            let held = span.as_ref().and_then(|(at, buf, _)| {
                let off = usize::try_from(c.position.checked_sub(*at)?).ok()?;
                let len = record::peek_len(buf.get(off..)?)? as usize;
                buf.get(off..off + len).map(|_| off)
            });
            let off = match held {
                Some(off) => off,
                None => {
                    let (mut buf, mut seg) = self.inner.log.read_span(c.position, COPY_SPAN)?;
                    if let Some(len) = record::peek_len(&buf)
                        && len as usize > buf.len()
                    {
                        (buf, seg) = self.inner.log.read_span(c.position, u64::from(len))?;
                    }
                    span = Some((c.position, buf, seg.path.clone()));
                    0
                }
            };
            let Some((_, buf, path)) = span.as_ref() else {
                return Err(StoreError::Closed);
            };
            let rec = &buf[off..];
            let view = record::RecordView::parse(rec)
                .ok()
                .filter(|v| v.position == c.position)
                .ok_or_else(|| StoreError::Corrupt {
                    path: path.clone(),
                    detail: format!("no valid record at position {} to copy", c.position),
                })?;
            batch.push_copy(&rec[..view.len as usize], c.topic.as_str(), c.queue_id);
        }
        Ok(PreparedCopies { batch })
    }

    /// The second half of [`Store::append_copies`]: writes copies laid out
    /// by [`Store::prepare_copies`] (positions, queue offsets and store
    /// times are assigned now), all or nothing, returning once durable
    /// under the flush policy. Blocking.
    pub fn append_prepared(&self, copies: PreparedCopies) -> Result<Vec<Appended>> {
        let mut batch = copies.batch;
        if batch.records.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.log.append(
            &mut batch,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Installs the one [`StoreListener`] of this store; `false` (and no
    /// change) if one is installed already.
    pub fn set_listener(&self, listener: Arc<dyn StoreListener>) -> bool {
        self.inner.log.listener.set(listener).is_ok()
    }

    /// Bytes appended to the commit log and not yet fsynced: under `sync`,
    /// what appends waiting for their group commit hold; under `async`,
    /// what a machine crash could lose now.
    pub fn unflushed_bytes(&self) -> u64 {
        self.inner
            .log
            .written()
            .saturating_sub(self.inner.log.flushed())
    }

    /// Reads the message at a commit-log position.
    pub fn read(&self, position: u64) -> Result<StoredMessage> {
        self.inner.read_at(position, None)
    }

    /// Reads up to `max_messages` (and about `max_bytes`) from a queue,
    /// starting at `from` (moved up to the queue's minimum if older).
    pub fn read_queue(
        &self,
        topic: &str,
        queue_id: u32,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<QueueRead> {
        let Some(q) = self.inner.queue(topic, queue_id) else {
            return Ok(QueueRead {
                messages: Vec::new(),
                next_offset: 0,
                min_offset: 0,
                max_offset: 0,
            });
        };
        let (min, max) = (q.min_offset(), q.max_offset());
        let start = from.max(min);
        let entries = q.read(start, max_messages)?;
        let mut messages = Vec::with_capacity(entries.len());
        let mut bytes = 0usize;
        let mut i = 0;
        'runs: while i < entries.len() {
            // Entries adjacent in the log are read with one call.
            let run_start = entries[i].position;
            let mut run_end = run_start;
            let mut j = i;
            while j < entries.len()
                && entries[j].position == run_end
                && (j == i || run_end - run_start + u64::from(entries[j].size) <= MAX_SPAN)
            {
                run_end += u64::from(entries[j].size);
                j += 1;
            }
            let (buf, seg) = self.inner.log.read_span(run_start, run_end - run_start)?;
            let progress = i;
            while i < j {
                let e = &entries[i];
                if !messages.is_empty() && bytes + e.size as usize > max_bytes {
                    break 'runs;
                }
                let off = (e.position - run_start) as usize;
                let Some(raw) = buf.get(off..off + e.size as usize) else {
                    break; // the run crossed into the next segment
                };
                let offset = start + i as u64;
                let m = record::RecordView::parse(raw)
                    .ok()
                    .filter(|v| v.position == e.position)
                    .and_then(|v| v.to_stored().ok())
                    .filter(|m| {
                        m.message.topic.as_str() == topic
                            && m.message.queue_id == queue_id
                            && m.queue_offset == offset
                    })
                    .ok_or_else(|| StoreError::Corrupt {
                        path: seg.path.clone(),
                        detail: format!(
                            "record at {} does not match entry {offset} of {topic}:{queue_id}",
                            e.position
                        ),
                    })?;
                bytes += e.size as usize;
                messages.push(m);
                i += 1;
            }
            if i == progress {
                return Err(StoreError::Corrupt {
                    path: seg.path.clone(),
                    detail: format!("record at {run_start} runs past its segment"),
                });
            }
        }
        Ok(QueueRead {
            next_offset: start + messages.len() as u64,
            messages,
            min_offset: min,
            max_offset: max,
        })
    }

    /// The message at one queue offset.
    pub fn get(&self, topic: &str, queue_id: u32, offset: u64) -> Result<StoredMessage> {
        let r = self.read_queue(topic, queue_id, offset, 1, usize::MAX)?;
        match r.messages.into_iter().next() {
            Some(m) if m.queue_offset == offset => Ok(m),
            _ if offset < r.min_offset => Err(StoreError::Deleted {
                requested: offset,
                min: r.min_offset,
            }),
            _ => Err(StoreError::BeyondEnd {
                requested: offset,
                end: r.max_offset,
            }),
        }
    }

    /// `(min, max)` offsets of a queue: readable offsets are `min..max`.
    pub fn queue_range(&self, topic: &str, queue_id: u32) -> (u64, u64) {
        self.inner
            .queue(topic, queue_id)
            .map_or((0, 0), |q| (q.min_offset(), q.max_offset()))
    }

    /// The first queue offset stored at or after `timestamp_ms` (the
    /// queue's max offset if none).
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        queue_id: u32,
        timestamp_ms: i64,
    ) -> Result<u64> {
        let Some(q) = self.inner.queue(topic, queue_id) else {
            return Ok(0);
        };
        q.first_where(q.min_offset(), q.max_offset(), |e| {
            e.store_ts >= timestamp_ms
        })
    }

    /// Messages with this message id (normally one; more if a producer
    /// reused the id).
    pub fn find_by_message_id(&self, message_id: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.inner
            .find(KeyKind::MessageId, "", message_id, limit, |m| {
                m.message.message_id == message_id
            })
    }

    /// Messages of `topic` carrying `key`, newest first.
    pub fn find_by_key(&self, topic: &str, key: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.inner.find(KeyKind::Key, topic, key, limit, |m| {
            m.message.topic.as_str() == topic && m.message.keys.iter().any(|k| k == key)
        })
    }

    /// Records a consumer group's next offset for a queue (in memory; made
    /// durable at the next checkpoint or by [`Store::flush_offsets`]).
    pub fn commit_offset(&self, group: &str, topic: &str, queue_id: u32, offset: u64) {
        self.inner.offsets.commit(group, topic, queue_id, offset);
    }

    pub fn committed_offset(&self, group: &str, topic: &str, queue_id: u32) -> Option<u64> {
        self.inner.offsets.get(group, topic, queue_id)
    }

    /// Every committed offset of a group: topic -> queue -> offset.
    pub fn group_offsets(&self, group: &str) -> BTreeMap<String, BTreeMap<u32, u64>> {
        self.inner.offsets.group(group)
    }

    /// Writes consumer offsets durably now.
    pub fn flush_offsets(&self) -> Result<()> {
        self.inner.offsets.persist()
    }

    /// Fsyncs the commit log now (whatever the policy).
    pub fn flush(&self) -> Result<u64> {
        self.inner.log.flush()
    }

    /// Keeps retention from deleting the segment holding `position` or
    /// any later one, on behalf of `holder` (a broker part whose records
    /// must outlive the retention time, such as delayed messages); `None`
    /// lifts the hold. Holds apply even above the disk high-water mark;
    /// the hard disk limit still refuses appends. Holders named in
    /// [`StoreConfig::retention_holders`] hold everything until their
    /// first call.
    pub fn hold_retention(&self, holder: &str, position: Option<u64>) {
        let mut holds = self
            .inner
            .holds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        holds.awaited.remove(holder);
        match position {
            Some(p) => holds.at.insert(holder.to_owned(), p),
            None => holds.at.remove(holder),
        };
    }

    /// Runs retention and the disk-limit check now.
    pub fn enforce_retention(&self) -> Result<RetentionReport> {
        retention::clean(&self.inner)
    }

    /// Waits until everything below `position` is in the consume queues.
    /// Returns whether it got there before `timeout`.
    pub fn wait_dispatched(&self, position: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.inner.dispatched_signal.generation();
            if self.inner.dispatched.load(Ordering::Acquire) >= position {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.inner.dispatched_signal.wait(seen, deadline - now);
        }
    }

    /// The end of the commit log as writers see it.
    pub fn max_offset(&self) -> u64 {
        self.inner.log.written()
    }

    pub fn stats(&self) -> StoreStats {
        let i = &self.inner;
        StoreStats {
            segments: i.log.segment_count(),
            min_offset: i.log.min_offset(),
            max_offset: i.log.written(),
            flushed_offset: i.log.flushed(),
            dispatched_offset: i.dispatched.load(Ordering::Acquire),
            queues: i
                .queues
                .read()
                .map_or(0, |q| q.values().map(HashMap::len).sum()),
            flushes: i.log.flush_count.load(Ordering::Relaxed),
            flush_seconds_total: i.log.flush_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            disk_full: i.log.disk_full.load(Ordering::Acquire),
            recovery: i.recovery.clone(),
        }
    }

    /// Stops the background threads after a final flush and checkpoint.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.threads.is_empty() {
            return Ok(());
        }
        self.inner.log.closed.store(true, Ordering::Release);
        self.inner.log.wake_flusher();
        self.inner.log.readable.notify();
        self.inner.dispatched_signal.notify();
        self.inner.shutdown.notify();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.inner.log.flush()?;
        dispatch::catch_up(&self.inner)?;
        dispatch::checkpoint(&self.inner)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "store did not close cleanly; recovery will run at next open");
        }
    }
}

impl Inner {
    fn offsets_dirty(&self) -> bool {
        self.offsets.is_dirty()
    }

    fn queue(&self, topic: &str, queue_id: u32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().ok()?.get(topic)?.get(&queue_id).cloned()
    }

    fn queue_or_create(&self, topic: &str, queue_id: u32) -> Result<Arc<ConsumeQueue>> {
        if let Some(q) = self.queue(topic, queue_id) {
            return Ok(q);
        }
        let mut map = self
            .queues
            .write()
            .map_err(|_| StoreError::Failed("queue map lock poisoned".into()))?;
        let q = map
            .entry(topic.to_owned())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| {
                Arc::new(ConsumeQueue::create(
                    self.cfg
                        .dir
                        .join("consumequeue")
                        .join(topic)
                        .join(queue_id.to_string()),
                    self.cfg.cq_entries_per_file,
                ))
            });
        Ok(Arc::clone(q))
    }

    fn all_queues(&self) -> Vec<Arc<ConsumeQueue>> {
        self.queues.read().map_or_else(
            |_| Vec::new(),
            |m| m.values().flat_map(|q| q.values().cloned()).collect(),
        )
    }

    fn read_at(&self, position: u64, size: Option<u32>) -> Result<StoredMessage> {
        let raw = self.log.read_raw(position, size)?;
        let view = record::RecordView::parse(&raw).map_err(|why| StoreError::Corrupt {
            path: self.log.dir().to_owned(),
            detail: format!("record at {position}: {why}"),
        })?;
        view.to_stored().map_err(|why| StoreError::Corrupt {
            path: self.log.dir().to_owned(),
            detail: format!("record at {position}: {why}"),
        })
    }

    fn find(
        &self,
        kind: KeyKind,
        topic: &str,
        key: &str,
        limit: usize,
        matches: impl Fn(&StoredMessage) -> bool,
    ) -> Result<Vec<StoredMessage>> {
        // Ask for extra candidates: some are hash collisions.
        let candidates =
            lock(&self.index).lookup(kind, topic, key, limit.saturating_mul(4).max(16))?;
        let mut out = Vec::new();
        for pos in candidates {
            match self.read_at(pos, None) {
                Ok(m) if matches(&m) => out.push(m),
                // The index is a hint: a candidate may be a collision, may be
                // gone, or may point where recovery cut the log.
                Ok(_)
                | Err(
                    StoreError::Deleted { .. }
                    | StoreError::BeyondEnd { .. }
                    | StoreError::Corrupt { .. },
                ) => {}
                Err(e) => return Err(e),
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
