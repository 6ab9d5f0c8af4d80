//! The commit log: one append-only log per broker, split into segment files
//! named by the position of their first byte. Records never span segments.
//!
//! Writers take the `tail` lock only to assign positions and queue offsets,
//! fold three fields into each prepared record's checksum, and hand the
//! batch to the kernel in one positional write. A flusher thread fsyncs;
//! under the sync policy the appender waits for it, so concurrent appends
//! share one fsync (group commit).

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::config::{FlushPolicy, StoreConfig};
use crate::error::{Result, StoreError, corrupt, io_err};
use crate::fsutil::{numbered_files, numbered_name, sync_dir};
use crate::listener::StoreListener;
use crate::record::{Batch, HEADER_LEN, RecordView, peek_len};

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

/// A counter with a condition variable: waiters sleep until it moves.
/// `notify` costs two atomic operations when nobody waits, so hot paths
/// may call it on every append.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    generation: AtomicU64,
    waiters: AtomicU64,
    mu: Mutex<()>,
    cv: Condvar,
}

impl Signal {
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.mu);
            self.cv.notify_all();
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Waits until the generation differs from `seen` or `timeout` passes.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let g = lock(&self.mu);
        let _unused = self
            .cv
            .wait_timeout_while(g, timeout, |_| {
                self.generation.load(Ordering::SeqCst) == seen
            })
            .map(|(g, _)| drop(g));
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of the store's locks cannot leave the data
    // on disk inconsistent (the disk is the truth); carry on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) use tern_model::now_ms;

/// What recovery found at the end of the log.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LogRecovery {
    /// Position recovery started scanning from.
    pub scanned_from: u64,
    /// The valid end of the log.
    pub valid_end: u64,
    /// Bytes cut from the tail (moved to `quarantine/`).
    pub truncated_bytes: u64,
    /// Why the scan stopped before the end of the files, if it did.
    pub stop_reason: Option<String>,
}

/// Appends waiting for their fsync: (end position, results, callback).
struct Waiting(VecDeque<(u64, Vec<Appended>, Durable)>);

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} appends waiting", self.0.len())
    }
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

/// Calls `f` for every valid record of `seg` from `from` (a record
/// boundary, relative to the segment) up to `to`; stops at the first record
/// that fails its checks or whose position field is not its own. Returns
/// the offset reached (relative) and, if the scan stopped early, why.
pub(crate) fn scan_segment(
    seg: &Segment,
    from: u64,
    to: u64,
    mut f: impl FnMut(&RecordView<'_>) -> Result<()>,
) -> Result<(u64, Option<String>)> {
    const CHUNK: usize = 4 << 20;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK.min(to.saturating_sub(from) as usize));
    let mut buf_at = from; // file offset of buf[0]
    let mut off = from;
    loop {
        if off >= to {
            return Ok((off, None));
        }
        let in_buf = (off - buf_at) as usize;
        let have = buf.len() - in_buf;
        let need = if have >= 4 {
            match peek_len(&buf[in_buf..]) {
                Some(len) => len as usize,
                None => return Ok((off, Some("bad length field".into()))),
            }
        } else {
            HEADER_LEN
        };
        if have < need {
            // Refill: keep the unread part, read up to a chunk more.
            buf.drain(..in_buf);
            buf_at = off;
            let want = need.max(CHUNK).min((to - off) as usize);
            if want < need {
                return Ok((off, Some("record runs past the end of the data".into())));
            }
            let start = buf.len();
            buf.resize(want, 0);
            let n = read_full_at(&seg.file, &mut buf[start..], off + start as u64)
                .map_err(io_err(&seg.path))?;
            buf.truncate(start + n);
            if buf.len() < need {
                return Ok((off, Some("record runs past the end of the file".into())));
            }
            continue;
        }
        let view = match RecordView::parse(&buf[in_buf..]) {
            Ok(v) => v,
            Err(why) => return Ok((off, Some(why.into()))),
        };
        if view.position != seg.base + off {
            return Ok((off, Some("record position field does not match".into())));
        }
        f(&view)?;
        off += u64::from(view.len);
    }
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

/// Moves bytes `[from, len)` of `path` into `quarantine/` and cuts them off.
fn quarantine_tail(dir: &Path, seg: &Segment, from: u64, len: u64) -> Result<()> {
    let qdir = dir.join("quarantine");
    fs::create_dir_all(&qdir).map_err(io_err(&qdir))?;
    let qpath = qdir.join(format!("{}-{}", numbered_name(seg.base + from), now_ms()));
    let mut bytes = vec![0u8; (len - from) as usize];
    let n = read_full_at(&seg.file, &mut bytes, from).map_err(io_err(&seg.path))?;
    bytes.truncate(n);
    fs::write(&qpath, &bytes).map_err(io_err(&qpath))?;
    seg.file.set_len(from).map_err(io_err(&seg.path))?;
    seg.file.sync_all().map_err(io_err(&seg.path))?;
    Ok(())
}

impl CommitLog {
    /// Opens the log, scanning from the segment that holds `scan_hint` (a
    /// position known durable, from the checkpoint) to find the valid end.
    /// Everything past it is cut off and kept in `quarantine/`.
    pub fn open(cfg: &StoreConfig, scan_hint: u64) -> Result<(Self, LogRecovery)> {
        let dir = cfg.dir.join("commitlog");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut files = numbered_files(&dir)?;
        if files.is_empty() {
            let path = dir.join(numbered_name(0));
            open_segment(&path, 0, true)?;
            sync_dir(&dir)?;
            files.push((0, path));
        }
        let mut segments = Vec::with_capacity(files.len());
        for (base, path) in &files {
            segments.push(Arc::new(open_segment(path, *base, false)?));
        }

        // Scan from the segment holding the hint (the last one at or below it).
        let first = segments
            .iter()
            .rposition(|s| s.base <= scan_hint)
            .unwrap_or(0);
        let mut rec = LogRecovery {
            scanned_from: segments[first].base,
            ..LogRecovery::default()
        };
        // The hint is a record boundary when the checkpoint is right; only
        // what follows it needs checking.
        let mut end = segments[first].base;
        let mut keep = segments.len();
        for (i, seg) in segments.iter().enumerate().skip(first) {
            let len = seg.file.metadata().map_err(io_err(&seg.path))?.len();
            if seg.base != end {
                rec.stop_reason = Some(format!(
                    "segment {} does not start where the previous one ends ({end})",
                    seg.path.display()
                ));
                keep = i;
                break;
            }
            let hint = scan_hint.saturating_sub(seg.base);
            let (mut reached, mut why) = (0, None);
            if i == first && hint > 0 && hint <= len {
                (reached, why) = scan_segment(seg, hint, len, |_| Ok(()))?;
                rec.scanned_from = seg.base + hint;
            }
            if (reached == hint && why.is_some()) || reached == 0 {
                // No record where the hint says: check the whole segment.
                rec.scanned_from = seg.base;
                (reached, why) = scan_segment(seg, 0, len, |_| Ok(()))?;
            }
            end = seg.base + reached;
            if reached < len {
                rec.stop_reason = why;
                rec.truncated_bytes += len - reached;
                quarantine_tail(&dir, seg, reached, len)?;
                keep = i + 1;
                break;
            }
        }
        // Whole segments after the valid end go to quarantine too.
        for seg in segments.drain(keep..) {
            let len = seg.file.metadata().map_err(io_err(&seg.path))?.len();
            rec.truncated_bytes += len;
            let qdir = cfg.dir.join("commitlog").join("quarantine");
            fs::create_dir_all(&qdir).map_err(io_err(&qdir))?;
            let to = qdir.join(format!("{}-{}", numbered_name(seg.base), now_ms()));
            fs::rename(&seg.path, &to).map_err(io_err(&seg.path))?;
        }
        sync_dir(&dir)?;
        if rec.truncated_bytes > 0 {
            tracing::warn!(
                valid_end = end,
                truncated_bytes = rec.truncated_bytes,
                reason = rec.stop_reason.as_deref().unwrap_or(""),
                "commit log tail cut at recovery; the cut bytes are kept in commitlog/quarantine"
            );
        }
        rec.valid_end = end;
        // Whatever the scan read may sit only in the page cache: make it durable.
        for seg in &segments[first..] {
            seg.file.sync_data().map_err(io_err(&seg.path))?;
        }

        let active = Arc::clone(segments.last().unwrap_or_else(|| &segments[0]));
        let log = Self {
            dir,
            segment_size: cfg.segment_size,
            policy: cfg.flush,
            flush_interval: cfg.flush_interval,
            flush_dirty_bytes: cfg.flush_dirty_bytes,
            tail: Mutex::new(Tail {
                active_len: end - active.base,
                active,
                unsynced: Vec::new(),
                queue_next: HashMap::new(),
                last_ts: 0,
            }),
            min: AtomicU64::new(segments[0].base),
            segments: RwLock::new(segments),
            written: AtomicU64::new(end),
            flushed: AtomicU64::new(end),
            flush_wanted: Signal::default(),
            waiting: Mutex::new(Waiting(VecDeque::new())),
            readable: Signal::default(),
            failed: Mutex::new(None),
            closed: AtomicBool::new(false),
            disk_full: AtomicBool::new(false),
            flush_count: AtomicU64::new(0),
            flush_nanos: AtomicU64::new(0),
            listener: OnceLock::new(),
        };
        Ok((log, rec))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the next queue offset of every queue (after recovery).
    pub fn set_queue_next(&self, next: HashMap<String, HashMap<u32, u64>>) {
        lock(&self.tail).queue_next = next;
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
        self.segments.read().map_or(0, |s| s.len())
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        if let Some(why) = lock(&self.failed).as_ref() {
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
        let mut tail = lock(&self.tail);
        if tail.active_len + len > self.segment_size {
            self.roll(&mut tail)?;
        }
        let start = tail.active.base + tail.active_len;
        let ts = now_ms().max(tail.last_ts);
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
            lock(&self.waiting).0.push_back((pos, results, d));
            return Ok((pos, Vec::new()));
        }
        Ok((pos, results))
    }

    fn fail(&self, why: String) {
        tracing::error!(reason = %why, "commit log failed; appends refused until reopened");
        *lock(&self.failed) = Some(why.clone());
        let waiting = std::mem::take(&mut lock(&self.waiting).0);
        for (_, _, done) in waiting {
            done(Err(StoreError::Failed(why.clone())));
        }
    }

    fn roll(&self, tail: &mut Tail) -> Result<()> {
        let base = tail.active.base + tail.active_len;
        let path = self.dir.join(numbered_name(base));
        let seg = Arc::new(open_segment(&path, base, true)?);
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut tail.active, Arc::clone(&seg));
        tail.unsynced.push(old);
        tail.active_len = 0;
        self.segments
            .write()
            .map_err(|_| StoreError::Failed("segment list lock poisoned".into()))?
            .push(seg);
        Ok(())
    }

    /// One flush: fsync everything written so far. Returns the new durable end.
    pub fn flush(&self) -> Result<u64> {
        let (target, files) = {
            let mut tail = lock(&self.tail);
            let mut files = std::mem::take(&mut tail.unsynced);
            files.push(Arc::clone(&tail.active));
            (self.written(), files)
        };
        if target <= self.flushed() {
            return Ok(target);
        }
        let started = Instant::now();
        for seg in &files {
            if let Err(e) = seg.file.sync_data() {
                // After a failed fsync the page cache state is unknown.
                self.fail(format!("fsync of {} failed: {e}", seg.path.display()));
                return Err(io_err(&seg.path)(e));
            }
        }
        let took = started.elapsed();
        self.flush_count.fetch_add(1, Ordering::Relaxed);
        self.flush_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let before = self.flushed.fetch_max(target, Ordering::AcqRel);
        if let Some(l) = self.listener.get() {
            l.flushed(took, target.saturating_sub(before));
        }
        if self.policy == FlushPolicy::Sync {
            self.readable.notify();
            let done: Vec<_> = {
                let mut w = lock(&self.waiting);
                let n = w.0.partition_point(|(end, _, _)| *end <= target);
                w.0.drain(..n).collect()
            };
            for (_, results, d) in done {
                d(Ok(results));
            }
        }
        Ok(target)
    }

    /// The flusher thread's loop; returns once the log is closed and flushed.
    pub fn run_flusher(&self) {
        let wait = match self.policy {
            FlushPolicy::Sync => Duration::from_millis(50),
            FlushPolicy::Async => self.flush_interval,
        };
        // Waits first: recovery left nothing unflushed, and under async
        // the first fsync comes one interval (or the dirty-byte mark)
        // after the first append, however late this thread starts.
        loop {
            let seen = self.flush_wanted.generation();
            let closed = self.closed.load(Ordering::Acquire);
            if !closed {
                self.flush_wanted.wait(seen, wait);
            }
            if self.written() > self.flushed() && self.flush().is_err() {
                return;
            }
            if closed {
                return;
            }
        }
    }

    /// Wakes the flusher (used at close).
    pub fn wake_flusher(&self) {
        self.flush_wanted.notify();
    }

    /// The segment holding `pos`, and where the next one starts (if any).
    fn segment_and_end(&self, pos: u64) -> Result<(Arc<Segment>, Option<u64>)> {
        let segs = self
            .segments
            .read()
            .map_err(|_| StoreError::Failed("segment list lock poisoned".into()))?;
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
        let mut segs = self
            .segments
            .write()
            .map_err(|_| StoreError::Failed("segment list lock poisoned".into()))?;
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
