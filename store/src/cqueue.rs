//! Consume queues: per (topic, queue id), fixed-size 32-byte entries, so the
//! record at a queue offset is found with one read. Files hold a fixed
//! number of entries and are named by the queue offset of their first entry.
//!
//! Entry layout (little-endian): commit-log position u64, record size u32,
//! CRC32C of the other 28 bytes u32, tag hash u64, store timestamp i64.
//! All-zero bytes mean "no entry yet". Only the dispatcher writes; it
//! writes each entry at the slot its queue offset names, so writing the
//! same entry twice (re-dispatch after a crash) is harmless.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::error::{Result, corrupt, io_err};
use crate::fsutil::{numbered_files, numbered_name, sync_dir};

pub(crate) const ENTRY_LEN: u64 = 32;

/// One consume-queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub position: u64,
    pub size: u32,
    pub tag_hash: u64,
    pub store_ts: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Empty,
    Corrupt,
    Entry(CqEntry),
}

impl CqEntry {
    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.position.to_le_bytes());
        b[8..12].copy_from_slice(&self.size.to_le_bytes());
        b[16..24].copy_from_slice(&self.tag_hash.to_le_bytes());
        b[24..32].copy_from_slice(&self.store_ts.to_le_bytes());
        let crc = entry_crc(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn end(&self) -> u64 {
        self.position + u64::from(self.size)
    }
}

fn entry_crc(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[0..12]), &b[16..32])
}

pub(crate) fn decode(b: &[u8]) -> Slot {
    if b.len() < 32 || b.iter().all(|&x| x == 0) {
        return Slot::Empty;
    }
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let stored = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    if stored != entry_crc(b) {
        return Slot::Corrupt;
    }
    Slot::Entry(CqEntry {
        position: u64_at(0),
        size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        tag_hash: u64_at(16),
        store_ts: u64_at(24) as i64,
    })
}

/// What opening one queue found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueRecovery {
    /// The queue's tail was damaged (a short file, a corrupt last entry);
    /// the commit log must be re-read from this position to repair it.
    pub repair_from: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct ConsumeQueue {
    dir: PathBuf,
    per_file: u64,
    files: RwLock<BTreeMap<u64, Arc<File>>>,
    /// Files written since the last sync.
    dirty: Mutex<BTreeSet<u64>>,
    /// Directories whose entries changed since the last sync (a file was
    /// created, and maybe the queue's and the topic's directories): they
    /// are synced with the next [`ConsumeQueue::sync`] (a checkpoint), not
    /// at once, so the dispatcher, which creates the files of new queues,
    /// does not wait for directory syncs per new queue.
    new_dirs: Mutex<Vec<PathBuf>>,
    /// One past the last dispatched entry.
    max: AtomicU64,
    /// The first entry whose record retention kept.
    min: AtomicU64,
}

impl ConsumeQueue {
    fn file_len(&self) -> u64 {
        self.per_file * ENTRY_LEN
    }

    pub fn create(dir: PathBuf, per_file: u64) -> Self {
        Self {
            dir,
            per_file,
            files: RwLock::new(BTreeMap::new()),
            dirty: Mutex::new(BTreeSet::new()),
            new_dirs: Mutex::new(Vec::new()),
            max: AtomicU64::new(0),
            min: AtomicU64::new(0),
        }
    }

    /// Opens an existing queue directory. Entries whose record is at or
    /// past `redo_from` are dropped (the dispatcher writes them again).
    pub fn open(dir: PathBuf, per_file: u64, redo_from: u64) -> Result<(Self, QueueRecovery)> {
        let q = Self::create(dir, per_file);
        let mut damaged = false;
        {
            let mut files = q.files.write();
            for (first, path) in numbered_files(&q.dir)? {
                if !first.is_multiple_of(per_file) {
                    tracing::warn!(file = %path.display(), "consume-queue file name is not aligned; ignored");
                    continue;
                }
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                let len = f.metadata().map_err(io_err(&path))?.len();
                if len != q.file_len() {
                    damaged = true;
                    tracing::warn!(file = %path.display(), len, "consume-queue file has the wrong size; repairing");
                    f.set_len(q.file_len()).map_err(io_err(&path))?;
                }
                files.insert(first / per_file, Arc::new(f));
            }
        }
        let (lo, hi) = q.span();
        // The first slot that is not (a valid entry below redo_from). Valid
        // entries below redo_from were made durable before the checkpoint
        // and so form a prefix.
        let mut saw_corrupt = false;
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            let before = match q.slot(mid)? {
                Slot::Entry(e) => e.position < redo_from,
                Slot::Corrupt => {
                    saw_corrupt = true;
                    false
                }
                Slot::Empty => false,
            };
            if before {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        let first_after = a;
        if first_after < hi && q.slot(first_after)? == Slot::Corrupt {
            saw_corrupt = true;
        }
        damaged |= saw_corrupt;
        let repair_from = if damaged {
            // Re-read the log from the end of the last good entry.
            let last_good = if first_after > lo {
                match q.slot(first_after - 1)? {
                    Slot::Entry(e) => Some(e.end()),
                    _ => None,
                }
            } else {
                None
            };
            Some(last_good.unwrap_or(0))
        } else {
            None
        };
        q.clear_from(first_after)?;
        q.max.store(first_after, Ordering::Release);
        q.min.store(lo.min(first_after), Ordering::Release);
        Ok((q, QueueRecovery { repair_from }))
    }

    /// First and one-past-last slot held by the files.
    fn span(&self) -> (u64, u64) {
        let files = self.files.read();
        match (files.keys().next(), files.keys().next_back()) {
            (Some(a), Some(b)) => (a * self.per_file, (b + 1) * self.per_file),
            _ => (0, 0),
        }
    }

    fn file(&self, idx: u64) -> Option<Arc<File>> {
        self.files.read().get(&idx).cloned()
    }

    fn path_of(&self, idx: u64) -> PathBuf {
        self.dir.join(numbered_name(idx * self.per_file))
    }

    pub(crate) fn slot(&self, offset: u64) -> Result<Slot> {
        let idx = offset / self.per_file;
        let Some(f) = self.file(idx) else {
            return Ok(Slot::Empty);
        };
        let mut b = [0u8; 32];
        let at = (offset % self.per_file) * ENTRY_LEN;
        match f.read_exact_at(&mut b, at) {
            Ok(()) => Ok(decode(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Slot::Empty),
            Err(e) => Err(io_err(self.path_of(idx))(e)),
        }
    }

    /// Zeroes every slot from `offset` on and removes files past it.
    fn clear_from(&self, offset: u64) -> Result<()> {
        let idx = offset / self.per_file;
        let mut files = self.files.write();
        let later: Vec<u64> = files.range(idx + 1..).map(|(k, _)| *k).collect();
        for k in later {
            files.remove(&k);
            let p = self.path_of(k);
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        if let Some(f) = files.get(&idx) {
            let keep = (offset % self.per_file) * ENTRY_LEN;
            let p = self.path_of(idx);
            f.set_len(keep).map_err(io_err(&p))?;
            f.set_len(self.file_len()).map_err(io_err(&p))?;
            f.sync_all().map_err(io_err(&p))?;
        }
        Ok(())
    }

    pub fn max_offset(&self) -> u64 {
        self.max.load(Ordering::Acquire)
    }

    pub fn min_offset(&self) -> u64 {
        self.min.load(Ordering::Acquire)
    }

    /// Writes entries for queue offsets `first..first + entries.len()`.
    pub fn write(&self, first: u64, entries: &[CqEntry]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * ENTRY_LEN as usize);
        let mut run_start = first;
        for (i, e) in entries.iter().enumerate() {
            let off = first + i as u64;
            if off != run_start && off.is_multiple_of(self.per_file) {
                self.write_run(run_start, &buf)?;
                buf.clear();
                run_start = off;
            }
            buf.extend_from_slice(&e.encode());
        }
        if !buf.is_empty() {
            self.write_run(run_start, &buf)?;
        }
        let end = first + entries.len() as u64;
        self.max.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    fn write_run(&self, first: u64, bytes: &[u8]) -> Result<()> {
        let idx = first / self.per_file;
        let f = match self.file(idx) {
            Some(f) => f,
            None => self.create_file(idx)?,
        };
        let at = (first % self.per_file) * ENTRY_LEN;
        f.write_all_at(bytes, at)
            .map_err(io_err(self.path_of(idx)))?;
        self.dirty.lock().insert(idx);
        Ok(())
    }

    fn create_file(&self, idx: u64) -> Result<Arc<File>> {
        let parent = self.dir.parent();
        let queue_dir_new = !self.dir.exists();
        let topic_dir_new = queue_dir_new && parent.is_some_and(|p| !p.exists());
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        {
            let mut dirs = self.new_dirs.lock();
            dirs.push(self.dir.clone());
            if let Some(p) = parent.filter(|_| queue_dir_new) {
                dirs.push(p.to_owned());
            }
            if let Some(gp) = parent.and_then(Path::parent).filter(|_| topic_dir_new) {
                dirs.push(gp.to_owned());
            }
        }
        let path = self.path_of(idx);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        f.set_len(self.file_len()).map_err(io_err(&path))?;
        let f = Arc::new(f);
        self.files.write().insert(idx, Arc::clone(&f));
        Ok(f)
    }

    /// Makes every entry written so far durable, and the entries of new
    /// files in their directories. What fails to sync stays to do (with
    /// what was not reached), for the next try.
    pub fn sync(&self) -> Result<()> {
        let dirs = std::mem::take(&mut *self.new_dirs.lock());
        let mut left = dirs.iter();
        while let Some(dir) = left.next() {
            if let Err(e) = sync_dir(dir) {
                let mut d = self.new_dirs.lock();
                d.push(dir.clone());
                d.extend(left.cloned());
                return Err(e);
            }
        }
        let dirty = std::mem::take(&mut *self.dirty.lock());
        let mut left = dirty.iter();
        while let Some(&idx) = left.next() {
            if let Some(f) = self.file(idx)
                && let Err(e) = f.sync_data()
            {
                let mut d = self.dirty.lock();
                d.insert(idx);
                d.extend(left);
                return Err(io_err(self.path_of(idx))(e));
            }
        }
        Ok(())
    }

    /// Whether entries were written since the last [`ConsumeQueue::sync`].
    pub fn is_dirty(&self) -> bool {
        !self.new_dirs.lock().is_empty() || !self.dirty.lock().is_empty()
    }

    /// Reads up to `count` entries from `from` (clamped to what exists).
    /// A damaged entry ends the read with a `Corrupt` error if it is the
    /// first, else the read stops just before it.
    pub fn read(&self, from: u64, count: usize) -> Result<Vec<CqEntry>> {
        let max = self.max_offset();
        let mut out = Vec::with_capacity(count.min(1024));
        let mut at = from;
        while out.len() < count && at < max {
            let idx = at / self.per_file;
            let file_end = (idx + 1) * self.per_file;
            let n = (count - out.len()) as u64;
            let upto = max.min(file_end).min(at + n);
            let Some(f) = self.file(idx) else {
                return Err(corrupt(self.path_of(idx), "consume-queue file is missing"));
            };
            let mut buf = vec![0u8; ((upto - at) * ENTRY_LEN) as usize];
            f.read_exact_at(&mut buf, (at % self.per_file) * ENTRY_LEN)
                .map_err(io_err(self.path_of(idx)))?;
            for chunk in buf.chunks_exact(ENTRY_LEN as usize) {
                match decode(chunk) {
                    Slot::Entry(e) => out.push(e),
                    _ if out.is_empty() => {
                        return Err(corrupt(
                            self.path_of(idx),
                            format!("entry for queue offset {at} is damaged"),
                        ));
                    }
                    _ => return Ok(out),
                }
                at += 1;
            }
        }
        Ok(out)
    }

    /// The first queue offset at or after `from` whose entry passes `pred`,
    /// assuming `pred` is false then true along the queue (binary search).
    pub fn first_where(&self, lo: u64, hi: u64, pred: impl Fn(&CqEntry) -> bool) -> Result<u64> {
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            let yes = match self.slot(mid)? {
                Slot::Entry(e) => pred(&e),
                // Missing or damaged entries count as "not yet".
                _ => false,
            };
            if yes {
                b = mid;
            } else {
                a = mid + 1;
            }
        }
        Ok(a)
    }

    /// Moves the minimum past entries whose records are below `log_min`
    /// and deletes files that hold only such entries (never the last one).
    pub fn trim(&self, log_min: u64) -> Result<()> {
        let max = self.max_offset();
        let min = self.first_where(self.min_offset(), max, |e| e.position >= log_min)?;
        self.min.fetch_max(min, Ordering::AcqRel);
        let keep_from = min / self.per_file;
        let mut files = self.files.write();
        let last = files.keys().next_back().copied();
        let old: Vec<u64> = files
            .range(..keep_from)
            .map(|(k, _)| *k)
            .filter(|k| Some(*k) != last)
            .collect();
        for k in old {
            files.remove(&k);
            let p = self.path_of(k);
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(position: u64) -> CqEntry {
        CqEntry {
            position,
            size: 100,
            tag_hash: 7,
            store_ts: 1000 + position as i64,
        }
    }

    #[test]
    fn entry_round_trip_and_damage() {
        let b = e(42).encode();
        assert_eq!(decode(&b), Slot::Entry(e(42)));
        assert_eq!(decode(&[0u8; 32]), Slot::Empty);
        for i in 0..32 {
            let mut c = b;
            c[i] ^= 0x10;
            assert_eq!(decode(&c), Slot::Corrupt, "byte {i}");
        }
    }

    #[test]
    fn write_read_across_files_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let q = ConsumeQueue::create(dir.path().join("q"), 16);
        let entries: Vec<_> = (0..40).map(|i| e(i * 100)).collect();
        q.write(0, &entries[..10]).unwrap();
        q.write(10, &entries[10..]).unwrap();
        q.sync().unwrap();
        assert_eq!(q.max_offset(), 40);
        assert_eq!(q.read(5, 20).unwrap(), entries[5..25].to_vec());
        assert_eq!(q.read(38, 10).unwrap(), entries[38..].to_vec());
        drop(q);

        // Reopen with everything below 2500 durable: entries 25.. are dropped.
        let (q, rec) = ConsumeQueue::open(dir.path().join("q"), 16, 2500).unwrap();
        assert!(rec.repair_from.is_none());
        assert_eq!(q.max_offset(), 25);
        assert_eq!(q.slot(30).unwrap(), Slot::Empty);
        assert_eq!(q.first_where(0, 25, |x| x.position >= 1000).unwrap(), 10);
    }

    #[test]
    fn damaged_tail_asks_for_repair() {
        let dir = tempfile::tempdir().unwrap();
        let q = ConsumeQueue::create(dir.path().join("q"), 16);
        q.write(0, &(0..10).map(|i| e(i * 100)).collect::<Vec<_>>())
            .unwrap();
        drop(q);
        let path = dir.path().join("q").join(numbered_name(0));
        let mut bytes = fs::read(&path).unwrap();
        bytes[9 * 32 + 3] ^= 0xff; // last entry
        fs::write(&path, &bytes).unwrap();
        let (q, rec) = ConsumeQueue::open(dir.path().join("q"), 16, u64::MAX).unwrap();
        assert_eq!(q.max_offset(), 9);
        assert_eq!(rec.repair_from, Some(900));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_entry_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
