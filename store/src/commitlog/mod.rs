//! The commit log: one append-only log per broker, split into segment files
//! named by the position of their first byte. Records never span segments.
//!
//! Writers take the `tail` lock only to assign positions and queue offsets,
//! fold three fields into each prepared record's checksum, and hand the
//! batch to the kernel in one positional write. A flusher thread fsyncs
//! ([`flush`]); under the sync policy the appender waits for it, so
//! concurrent appends share one fsync (group commit). Opening the log scans
//! for its valid end ([`recover`]).
//!
//! This module holds the log itself, appending, reading and deleting
//! segments.

mod flush;
mod recover;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tern_model::now_ms;

use crate::config::FlushPolicy;
use crate::error::{Result, StoreError, corrupt, io_err};
use crate::fsutil::{numbered_name, sync_dir};
use crate::listener::StoreListener;
use crate::record::{Batch, RecordView, peek_len};
use crate::sync::Signal;

use flush::Waiting;
pub use recover::LogRecovery;
use recover::scan_segment;

/// One segment file. Readers keep an `Arc` so a segment deleted by
/// retention stays readable until they are done with it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub path: PathBuf,
    pub file: File,
}

/// Where one appended message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Appended {
    pub position: u64,
    pub size: u32,
    pub queue_offset: u64,
    pub store_timestamp_ms: i64,
}

/// Reads at least this large ask the kernel to fetch what follows.
const READ_AHEAD_FROM: u64 = 256 * 1024;

/// Called with an append's outcome once it is durable as its flush policy
/// promises, or has failed. Runs on the flusher thread under sync: it must
/// be quick.
pub type Durable = Box<dyn FnOnce(Result<Vec<Appended>>) + Send>;

#[derive(Debug)]
struct Tail {
    active: Arc<Segment>,
    active_len: u64,
    /// Sealed segments whose data may not be fsynced yet.
    unsynced: Vec<Arc<Segment>>,
    /// Next queue offset per topic and queue.
    queue_next: HashMap<String, HashMap<u32, u64>>,
    last_ts: i64,
}

#[derive(Debug)]
pub(crate) struct CommitLog {
    dir: PathBuf,
    segment_size: u64,
    policy: FlushPolicy,
    flush_interval: Duration,
    flush_dirty_bytes: u64,
    tail: Mutex<Tail>,
    segments: RwLock<Vec<Arc<Segment>>>,
    written: AtomicU64,
    flushed: AtomicU64,
    min: AtomicU64,
    /// The flusher wakes on this.
    flush_wanted: Signal,
    /// Under sync: appends waiting for their fsync, in log order.
    waiting: Mutex<Waiting>,
    /// New data readers may see.
    pub readable: Signal,
    failed: Mutex<Option<String>>,
    pub closed: AtomicBool,
    pub disk_full: AtomicBool,
    pub flush_count: AtomicU64,
    pub flush_nanos: AtomicU64,
    /// Set once by [`crate::Store::set_listener`].
    pub listener: OnceLock<Arc<dyn StoreListener>>,
}

fn open_segment(path: &Path, base: u64, create: bool) -> Result<Segment> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .open(path)
        .map_err(io_err(path))?;
    Ok(Segment {
        base,
        path: path.to_owned(),
        file,
    })
}

/// Reads as much of `buf` as the file holds at `at`; short only at EOF.
fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl CommitLog {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the next queue offset of every queue (after recovery).
    pub fn set_queue_next(&self, next: HashMap<String, HashMap<u32, u64>>) {
        self.tail.lock().queue_next = next;
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    pub fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }

    pub fn min_offset(&self) -> u64 {
        self.min.load(Ordering::Acquire)
    }

    /// The end of what readers may see: under sync only durable data.
    pub fn readable_end(&self) -> u64 {
        match self.policy {
            FlushPolicy::Sync => self.flushed(),
            FlushPolicy::Async => self.written(),
        }
    }

    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        if let Some(why) = self.failed.lock().as_ref() {
            return Err(StoreError::Failed(why.clone()));
        }
        if self.disk_full.load(Ordering::Acquire) {
            return Err(StoreError::DiskFull {
                detail: "disk use is above the hard limit; appends resume when space is freed"
                    .into(),
            });
        }
        Ok(())
    }

    /// Appends a prepared batch atomically: all of it or none of it, and
    /// calls `done` with where each message went once that is durable under
    /// the policy (at once under async, after the covering fsync under
    /// sync), or with the error.
    pub fn append(&self, batch: &mut Batch, done: Durable) {
        let mut done = Some(done);
        match self.write(batch, &mut done) {
            Ok((end, results)) => {
                if self.policy == FlushPolicy::Sync {
                    self.flush_wanted.notify();
                    return;
                }
                self.readable.notify();
                if end.saturating_sub(self.flushed()) >= self.flush_dirty_bytes {
                    self.flush_wanted.notify();
                }
                if let Some(done) = done {
                    done(Ok(results));
                }
            }
            Err(e) => {
                if let Some(done) = done {
                    done(Err(e));
                }
            }
        }
    }

    /// Writes the batch. Under sync, moves `done` into the waiting queue
    /// (under the tail lock, so the queue stays in log order).
    fn write(&self, batch: &mut Batch, done: &mut Option<Durable>) -> Result<(u64, Vec<Appended>)> {
        self.check_writable()?;
        let len = batch.len_bytes();
        if len > self.segment_size {
            return Err(StoreError::BatchTooLarge {
                len,
                segment_size: self.segment_size,
            });
        }
        let count = batch.records.len();
        let mut results = Vec::with_capacity(count);
        let mut tail = self.tail.lock();
        if tail.active_len + len > self.segment_size {
            self.roll(&mut tail)?;
        }
        let start = tail.active.base + tail.active_len;
        let ts = batch.store_time.unwrap_or_else(now_ms).max(tail.last_ts);
        tail.last_ts = ts;
        let mut pos = start;
        for i in 0..count {
            let (topic, queue) = batch.target(i);
            let next = next_offset_slot(&mut tail.queue_next, topic, queue);
            let queue_offset = *next;
            *next += 1;
            batch.seal(i, pos, queue_offset, ts);
            let size = batch.records[i].len;
            results.push(Appended {
                position: pos,
                size,
                queue_offset,
                store_timestamp_ms: ts,
            });
            pos += u64::from(size);
        }
        let at = tail.active_len;
        if let Err(e) = tail.active.file.write_all_at(&batch.buf, at) {
            // Undo: give the queue offsets back and cut any partial write.
            for i in (0..count).rev() {
                let (topic, queue) = batch.target(i);
                *next_offset_slot(&mut tail.queue_next, topic, queue) -= 1;
            }
            let err = io_err(&tail.active.path)(e);
            if let Err(e2) = tail.active.file.set_len(at) {
                self.fail(format!("could not cut a failed write: {e2}"));
            }
            return Err(err);
        }
        tail.active_len += len;
        self.written.store(pos, Ordering::Release);
        if self.policy == FlushPolicy::Sync
            && let Some(d) = done.take()
        {
            self.waiting.lock().0.push_back((pos, results, d));
            return Ok((pos, Vec::new()));
        }
        Ok((pos, results))
    }

    fn roll(&self, tail: &mut Tail) -> Result<()> {
        let base = tail.active.base + tail.active_len;
        let path = self.dir.join(numbered_name(base));
        let seg = Arc::new(open_segment(&path, base, true)?);
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut tail.active, Arc::clone(&seg));
        tail.unsynced.push(old);
        tail.active_len = 0;
        self.segments.write().push(seg);
        Ok(())
    }

    /// One flush: fsync everything written so far. Returns the new durable end.
    /// The segment holding `pos`, and where the next one starts (if any).
    fn segment_and_end(&self, pos: u64) -> Result<(Arc<Segment>, Option<u64>)> {
        let segs = self.segments.read();
        let i = segs.partition_point(|s| s.base <= pos);
        if i == 0 {
            return Err(StoreError::Deleted {
                requested: pos,
                min: self.min_offset(),
            });
        }
        Ok((Arc::clone(&segs[i - 1]), segs.get(i).map(|s| s.base)))
    }

    /// Reads up to `len` bytes at `pos`, stopping at the end of its
    /// segment (records never span segments) and at the readable end.
    pub fn read_span(&self, pos: u64, len: u64) -> Result<(Vec<u8>, Arc<Segment>)> {
        let min = self.min_offset();
        if pos < min {
            return Err(StoreError::Deleted {
                requested: pos,
                min,
            });
        }
        let end = self.readable_end();
        if pos >= end {
            return Err(StoreError::BeyondEnd {
                requested: pos,
                end,
            });
        }
        let (seg, seg_end) = self.segment_and_end(pos)?;
        let len = len
            .min(end - pos)
            .min(seg_end.map_or(u64::MAX, |e| e - pos));
        let mut buf = vec![0u8; len as usize];
        let off = pos - seg.base;
        let n = read_full_at(&seg.file, &mut buf, off).map_err(io_err(&seg.path))?;
        buf.truncate(n);
        if len >= READ_AHEAD_FROM {
            // A large read is likely followed by the next one: have the
            // kernel fetch it while the caller decodes this one.
            let _ = rustix::fs::fadvise(
                &seg.file,
                off + len,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::WillNeed,
            );
        }
        Ok((buf, seg))
    }

    /// Reads and checks the record at `pos`. `size` (from a consume-queue
    /// entry) saves one read when known.
    pub fn read_raw(&self, pos: u64, size: Option<u32>) -> Result<Vec<u8>> {
        let len = match size {
            Some(s) => s,
            None => {
                let (h, seg) = self.read_span(pos, 4)?;
                peek_len(&h).ok_or_else(|| corrupt(&seg.path, format!("bad length at {pos}")))?
            }
        };
        let (buf, seg) = self.read_span(pos, u64::from(len))?;
        if buf.len() < len as usize {
            return Err(corrupt(
                &seg.path,
                format!("record at {pos} runs past its segment or the readable end"),
            ));
        }
        match RecordView::parse(&buf) {
            Ok(v) if v.position == pos => Ok(buf),
            Ok(_) => Err(corrupt(
                &seg.path,
                format!("record at {pos} names another position"),
            )),
            Err(why) => Err(corrupt(&seg.path, format!("record at {pos}: {why}"))),
        }
    }

    /// Calls `f` for each record in `[from, to)`, which must start on a
    /// record boundary. Stops with an error at a record that fails its checks.
    pub fn scan(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(&RecordView<'_>) -> Result<()>,
    ) -> Result<u64> {
        let mut at = from;
        while at < to {
            let (seg, next) = self.segment_and_end(at)?;
            let seg_end = next.map_or(to, |n| n.min(to));
            let (reached, why) = scan_segment(&seg, at - seg.base, seg_end - seg.base, &mut f)?;
            at = seg.base + reached;
            if let Some(why) = why {
                return Err(corrupt(&seg.path, format!("at {at}: {why}")));
            }
        }
        Ok(at)
    }

    /// Deletes the oldest segment if it is sealed, entirely below `limit`,
    /// and `pick` agrees. Returns the bytes freed.
    pub fn delete_oldest(&self, limit: u64, pick: impl Fn(&Segment) -> bool) -> Result<u64> {
        let mut segs = self.segments.write();
        if segs.len() < 2 || segs[1].base > limit || !pick(&segs[0]) {
            return Ok(0);
        }
        let old = segs.remove(0);
        self.min.store(segs[0].base, Ordering::Release);
        drop(segs);
        fs::remove_file(&old.path).map_err(io_err(&old.path))?;
        let freed = self.min_offset() - old.base;
        tracing::info!(segment = %old.path.display(), freed, "retention deleted a commit-log segment");
        Ok(freed)
    }
}

fn next_offset_slot<'a>(
    map: &'a mut HashMap<String, HashMap<u32, u64>>,
    topic: &str,
    queue: u32,
) -> &'a mut u64 {
    if !map.contains_key(topic) {
        map.insert(topic.to_owned(), HashMap::new());
    }
    map.get_mut(topic)
        .map(|q| q.entry(queue).or_insert(0))
        .unwrap_or_else(|| unreachable!("inserted above"))
}
