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
//!
//! Modules: `commitlog` (with its recovery scan and flusher), `cqueue`,
//! `index`, `offsets`; `state`, the state the background threads share;
//! `dispatch` and its checkpoint, `retention`, `recovery` (opening the
//! store), `read` (reads), `prepared` (prepared copies) and `sync` (the
//! signal threads wait on). This file holds [`Store`], the public face
//! over them; no module imports from it.
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
mod prepared;
mod read;
pub mod record;
mod recovery;
mod retention;
mod state;
mod sync;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tern_model::Message;

pub use commitlog::{Appended, LogRecovery};
pub use config::{FlushPolicy, StoreConfig};
pub use error::{Result, StoreError};
pub use listener::StoreListener;
pub use prepared::{CopyOf, PreparedCopies};
pub use read::QueueRead;
pub use record::StoredMessage;
pub use recovery::RecoveryReport;
pub use retention::RetentionReport;

use state::Inner;

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

/// A batch of messages validated and encoded as commit-log records, not
/// yet written ([`Store::encode`]). Its bytes ([`Encoded::as_bytes`]) carry
/// it to another replica, which reads it back with [`Encoded::from_bytes`].
#[derive(Debug)]
pub struct Encoded {
    batch: record::Batch,
}

impl Encoded {
    /// The records' bytes (positions, queue offsets and store times not
    /// yet filled in).
    pub fn as_bytes(&self) -> &[u8] {
        &self.batch.buf
    }

    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        self.batch.records.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.batch.records.is_empty()
    }

    /// A batch from bytes of [`Encoded::as_bytes`]; every record's length,
    /// format and topic are checked.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        record::Batch::from_buf(bytes)
            .map(|batch| Self { batch })
            .map_err(|detail| StoreError::Corrupt {
                path: PathBuf::from("(encoded batch)"),
                detail,
            })
    }
}

/// The storage engine. Cheap to share by reference across threads.
#[derive(Debug)]
pub struct Store {
    inner: Arc<Inner>,
    /// What opening the store found and did.
    recovery: RecoveryReport,
    threads: Vec<JoinHandle<()>>,
}

impl Store {
    /// Opens (or creates) the store in `cfg.dir`, recovering from whatever
    /// state a crash left, and starts its flusher, dispatcher and cleaner.
    pub fn open(cfg: StoreConfig) -> Result<Self> {
        let (inner, recovery) = recovery::open(cfg)?;
        let inner = Arc::new(inner);
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
        Ok(Self {
            inner,
            recovery,
            threads,
        })
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
        if self.inner.cfg.replica_only {
            return done(Err(StoreError::ReplicaOnly));
        }
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

    /// Validates and encodes `msgs` as one batch of records, without
    /// writing them: what a replicated broker group's leader puts in its
    /// Raft log, for every replica to write with [`Store::append_encoded`].
    pub fn encode(&self, msgs: &[Message]) -> Result<Encoded> {
        let mut batch = record::Batch::default();
        for m in msgs {
            m.validate(self.inner.cfg.max_body_bytes)?;
            batch.push(m);
        }
        Ok(Encoded { batch })
    }

    /// Appends a batch made by [`Store::encode`] (here or on another
    /// replica) with the store time `store_time_ms` (raised to the log's
    /// last store time if lower), and calls `done` once it is durable, as
    /// [`Store::append_then`] does. Two stores holding the same bytes
    /// that append the same encoded batches with the same store times, in
    /// the same order, write the same bytes at the same positions: the
    /// segment size must be the same too.
    pub fn append_encoded(
        &self,
        encoded: Encoded,
        store_time_ms: i64,
        done: impl FnOnce(Result<Vec<Appended>>) + Send + 'static,
    ) {
        let mut batch = encoded.batch;
        if batch.records.is_empty() {
            return done(Ok(Vec::new()));
        }
        batch.store_time = Some(store_time_ms);
        self.inner.log.append(&mut batch, Box::new(done));
    }

    /// How far the commit log is fsynced: a crash keeps at least this
    /// much.
    pub fn flushed_offset(&self) -> u64 {
        self.inner.log.flushed()
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
        PreparedCopies::prepare(&self.inner.log, copies)
    }

    /// The second half of [`Store::append_copies`]: writes copies laid out
    /// by [`Store::prepare_copies`] (positions, queue offsets and store
    /// times are assigned now), all or nothing, returning once durable
    /// under the flush policy. Blocking.
    pub fn append_prepared(&self, copies: PreparedCopies) -> Result<Vec<Appended>> {
        if self.inner.cfg.replica_only {
            return Err(StoreError::ReplicaOnly);
        }
        copies.append(&self.inner.log)
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
        self.inner
            .read_queue(topic, queue_id, from, max_messages, max_bytes)
    }

    /// The message at one queue offset.
    pub fn get(&self, topic: &str, queue_id: u32, offset: u64) -> Result<StoredMessage> {
        self.inner.get(topic, queue_id, offset)
    }

    /// `(min, max)` offsets of a queue: readable offsets are `min..max`.
    pub fn queue_range(&self, topic: &str, queue_id: u32) -> (u64, u64) {
        self.inner.queue_range(topic, queue_id)
    }

    /// The first queue offset stored at or after `timestamp_ms` (the
    /// queue's max offset if none).
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        queue_id: u32,
        timestamp_ms: i64,
    ) -> Result<u64> {
        self.inner
            .offset_for_timestamp(topic, queue_id, timestamp_ms)
    }

    /// Messages with this message id (normally one; more if a producer
    /// reused the id).
    pub fn find_by_message_id(&self, message_id: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.inner.find_by_message_id(message_id, limit)
    }

    /// Messages of `topic` carrying `key`, newest first.
    pub fn find_by_key(&self, topic: &str, key: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.inner.find_by_key(topic, key, limit)
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
        self.inner.holds.lock().set(holder, position);
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

    /// Share of the file system holding the store's directory that is in
    /// use, 0.0 to 1.0, as `df` counts it (blocks reserved for root count
    /// as unavailable); 0.0 if it cannot be read. The figure retention
    /// compares with the disk limits.
    pub fn disk_usage(&self) -> f64 {
        fsutil::disk_usage(&self.inner.cfg.dir).unwrap_or(0.0)
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
            queues: i.queue_count(),
            flushes: i.log.flush_count.load(Ordering::Relaxed),
            flush_seconds_total: i.log.flush_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            disk_full: i.log.disk_full.load(Ordering::Acquire),
            recovery: self.recovery.clone(),
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
