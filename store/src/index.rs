//! The message index: finds commit-log positions by message id or by
//! (topic, key). A chain of hash-table files, each with a header, a slot
//! table and an entry area:
//!
//! - header (64 bytes): magic `TIDX`, version u32, slot count u32, entry
//!   capacity u32, entry count u32, covered end u64 (every record below this
//!   commit-log position is indexed), first and last position u64, CRC32C
//!   of the bytes before it u32;
//! - slots: u32 per slot, 1-based number of the newest entry in that slot;
//! - entries (24 bytes): key hash u64, position u64, previous entry in the
//!   same slot u32 (1-based, 0 for none), reserved u32.
//!
//! The newest file lives in memory and is written out at each checkpoint;
//! lookups return candidate positions that the caller checks against the
//! record (hashes collide; entries may point at records cut by recovery).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, corrupt, io_err};
use crate::fsutil::{numbered_files, numbered_name, sync_dir};
use crate::record::RecordView;

const MAGIC: &[u8; 4] = b"TIDX";
const HEADER_LEN: u64 = 64;
const ENTRY_LEN: u64 = 24;

/// Kinds of key kept in one hash space.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyKind {
    MessageId,
    Key,
}

/// FNV-1a over a kind byte, the topic and the key.
pub(crate) fn key_hash(kind: KeyKind, topic: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match kind {
        KeyKind::MessageId => feed(&[0]),
        KeyKind::Key => {
            feed(&[1]);
            feed(topic.as_bytes());
            feed(&[0]);
        }
    }
    feed(key.as_bytes());
    h
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    hash: u64,
    position: u64,
    prev: u32,
}

#[derive(Debug)]
struct Header {
    slots: u32,
    capacity: u32,
    count: u32,
    covered_end: u64,
    first_pos: u64,
    last_pos: u64,
}

impl Header {
    fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..12].copy_from_slice(&self.slots.to_le_bytes());
        b[12..16].copy_from_slice(&self.capacity.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20..28].copy_from_slice(&self.covered_end.to_le_bytes());
        b[28..36].copy_from_slice(&self.first_pos.to_le_bytes());
        b[36..44].copy_from_slice(&self.last_pos.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if b.len() < 64 || &b[0..4] != MAGIC || u32_at(4) != 1 {
            return None;
        }
        if crc32c::crc32c(&b[0..44]) != u32_at(44) {
            return None;
        }
        let h = Self {
            slots: u32_at(8),
            capacity: u32_at(12),
            count: u32_at(16),
            covered_end: u64_at(20),
            first_pos: u64_at(28),
            last_pos: u64_at(36),
        };
        (h.slots > 0 && h.count <= h.capacity).then_some(h)
    }
}

fn entries_at(slots: u32) -> u64 {
    HEADER_LEN + u64::from(slots) * 4
}

/// A full file, read from disk on lookup.
#[derive(Debug)]
struct Sealed {
    path: PathBuf,
    file: File,
    slots: u32,
    count: u32,
    last_pos: u64,
}

impl Sealed {
    fn lookup(&self, hash: u64, out: &mut Vec<u64>, limit: usize) -> Result<()> {
        let slot = (hash % u64::from(self.slots)) as u32;
        let mut b4 = [0u8; 4];
        self.file
            .read_exact_at(&mut b4, HEADER_LEN + u64::from(slot) * 4)
            .map_err(io_err(&self.path))?;
        let mut at = u32::from_le_bytes(b4);
        let mut steps = 0u32;
        while at != 0 && out.len() < limit {
            if at > self.count || steps > self.count {
                return Err(corrupt(&self.path, "index chain points outside the file"));
            }
            steps += 1;
            let mut b = [0u8; 24];
            self.file
                .read_exact_at(
                    &mut b,
                    entries_at(self.slots) + u64::from(at - 1) * ENTRY_LEN,
                )
                .map_err(io_err(&self.path))?;
            let e = decode_entry(&b);
            if e.hash == hash {
                out.push(e.position);
            }
            if e.prev >= at {
                return Err(corrupt(&self.path, "index chain does not go backwards"));
            }
            at = e.prev;
        }
        Ok(())
    }
}

fn decode_entry(b: &[u8]) -> Entry {
    let mut h = [0u8; 8];
    h.copy_from_slice(&b[0..8]);
    let mut p = [0u8; 8];
    p.copy_from_slice(&b[8..16]);
    Entry {
        hash: u64::from_le_bytes(h),
        position: u64::from_le_bytes(p),
        prev: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
    }
}

/// The file being filled, kept in memory.
#[derive(Debug)]
struct Active {
    path: PathBuf,
    slots: Vec<u32>,
    entries: Vec<Entry>,
    capacity: u32,
    persisted: usize,
    covered_end: u64,
    first_pos: u64,
}

impl Active {
    fn new(dir: &Path, first_pos: u64, slots: u32, capacity: u32) -> Self {
        Self {
            path: dir.join(numbered_name(first_pos)),
            slots: vec![0; slots as usize],
            // All at once: growing by doubling would leave the smaller
            // copies behind in the allocator (resident, up to half again).
            // Pages become resident only as entries are written.
            entries: Vec::with_capacity(capacity as usize),
            capacity,
            persisted: 0,
            covered_end: first_pos,
            first_pos,
        }
    }

    fn lookup(&self, hash: u64, out: &mut Vec<u64>, limit: usize) {
        let mut at = self.slots[(hash % self.slots.len() as u64) as usize];
        while at != 0 && out.len() < limit {
            let e = self.entries[(at - 1) as usize];
            if e.hash == hash {
                out.push(e.position);
            }
            at = e.prev;
        }
    }

    fn header(&self) -> Header {
        Header {
            slots: self.slots.len() as u32,
            capacity: self.capacity,
            count: self.entries.len() as u32,
            covered_end: self.covered_end,
            first_pos: self.first_pos,
            last_pos: self.entries.last().map_or(self.first_pos, |e| e.position),
        }
    }

    /// Writes new entries, the slot table and the header, then fsyncs.
    fn persist(&mut self) -> Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        let base = entries_at(self.slots.len() as u32);
        let new = &self.entries[self.persisted..];
        let mut buf = Vec::with_capacity(new.len() * ENTRY_LEN as usize);
        for e in new {
            buf.extend_from_slice(&e.hash.to_le_bytes());
            buf.extend_from_slice(&e.position.to_le_bytes());
            buf.extend_from_slice(&e.prev.to_le_bytes());
            buf.extend_from_slice(&[0u8; 4]);
        }
        f.write_all_at(&buf, base + self.persisted as u64 * ENTRY_LEN)
            .map_err(io_err(&self.path))?;
        let slots: Vec<u8> = self.slots.iter().flat_map(|s| s.to_le_bytes()).collect();
        f.write_all_at(&slots, HEADER_LEN)
            .map_err(io_err(&self.path))?;
        f.write_all_at(&self.header().encode(), 0)
            .map_err(io_err(&self.path))?;
        f.sync_data().map_err(io_err(&self.path))?;
        self.persisted = self.entries.len();
        Ok(f)
    }

    fn load(path: &Path) -> Result<Option<Self>> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        let Some(h) = Header::decode(&bytes) else {
            return Ok(None);
        };
        let base = entries_at(h.slots) as usize;
        let need = base + h.count as usize * ENTRY_LEN as usize;
        if bytes.len() < need {
            return Ok(None);
        }
        let slots = bytes[HEADER_LEN as usize..base]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect::<Vec<_>>();
        let mut entries: Vec<Entry> = bytes[base..need]
            .chunks_exact(ENTRY_LEN as usize)
            .map(decode_entry)
            .collect();
        // Slots and chains must stay inside the entries we have.
        let count = h.count;
        if slots.iter().any(|&s| s > count)
            || entries.iter().enumerate().any(|(i, e)| e.prev as usize > i)
        {
            return Ok(None);
        }
        entries.reserve_exact((h.capacity as usize).saturating_sub(entries.len()));
        Ok(Some(Self {
            path: path.to_owned(),
            slots,
            persisted: entries.len(),
            entries,
            capacity: h.capacity,
            covered_end: h.covered_end,
            first_pos: h.first_pos,
        }))
    }
}

#[derive(Debug)]
pub(crate) struct Index {
    dir: PathBuf,
    slots: u32,
    capacity: u32,
    sealed: Vec<Sealed>,
    active: Active,
}

impl Index {
    /// Opens the index; the returned position is where it stops covering
    /// the commit log (the dispatcher re-indexes from there).
    pub fn open(dir: PathBuf, slots: u32, capacity: u32, log_min: u64) -> Result<(Self, u64)> {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut files = numbered_files(&dir)?;
        let mut active = None;
        if let Some((_, last)) = files.pop() {
            match Active::load(&last)? {
                Some(a) if a.entries.len() < a.capacity as usize => active = Some(a),
                Some(a) => {
                    // Full: it becomes sealed and a fresh one starts after it.
                    files.push((a.first_pos, last));
                }
                None => {
                    tracing::warn!(file = %last.display(), "index file unreadable; it is rebuilt from the commit log");
                    fs::remove_file(&last).map_err(io_err(&last))?;
                }
            }
        }
        let mut sealed = Vec::new();
        let mut covered = log_min;
        for (_, path) in files {
            let file = File::open(&path).map_err(io_err(&path))?;
            let mut hb = [0u8; 64];
            let header = file
                .read_exact_at(&mut hb, 0)
                .ok()
                .and_then(|()| Header::decode(&hb));
            match header {
                Some(h) => {
                    covered = covered.max(h.covered_end);
                    sealed.push(Sealed {
                        path,
                        file,
                        slots: h.slots,
                        count: h.count,
                        last_pos: h.last_pos,
                    });
                }
                None => {
                    tracing::warn!(file = %path.display(), "sealed index file unreadable; ignored");
                }
            }
        }
        let active = match active {
            Some(a) => a,
            None => Active::new(&dir, covered, slots, capacity),
        };
        let covered = active.covered_end;
        sync_dir(&dir)?;
        Ok((
            Self {
                dir,
                slots,
                capacity,
                sealed,
                active,
            },
            covered,
        ))
    }

    /// Indexes one record.
    pub fn add(&mut self, rec: &RecordView<'_>) -> Result<()> {
        let end = rec.position + u64::from(rec.len);
        let mut hashes = Vec::with_capacity(1 + rec.keys().size_hint().0);
        hashes.push(key_hash(KeyKind::MessageId, rec.topic, rec.message_id));
        hashes.extend(rec.keys().map(|k| key_hash(KeyKind::Key, rec.topic, k)));
        for hash in hashes {
            if self.active.entries.len() >= self.active.capacity as usize {
                self.seal(rec.position)?;
            }
            let a = &mut self.active;
            let slot = (hash % a.slots.len() as u64) as usize;
            a.entries.push(Entry {
                hash,
                position: rec.position,
                prev: a.slots[slot],
            });
            a.slots[slot] = a.entries.len() as u32;
        }
        self.active.covered_end = self.active.covered_end.max(end);
        Ok(())
    }

    fn seal(&mut self, next_pos: u64) -> Result<()> {
        let file = self.active.persist()?;
        let h = self.active.header();
        // Free the full file's tables before the fresh one takes its own,
        // so that the allocator reuses their memory instead of keeping
        // both resident.
        self.active.entries = Vec::new();
        self.active.slots = Vec::new();
        let fresh = Active::new(&self.dir, next_pos, self.slots, self.capacity);
        let old = std::mem::replace(&mut self.active, fresh);
        self.sealed.push(Sealed {
            path: old.path,
            file,
            slots: h.slots,
            count: h.count,
            last_pos: h.last_pos,
        });
        sync_dir(&self.dir)
    }

    /// Makes everything indexed so far durable.
    pub fn persist(&mut self) -> Result<()> {
        let fresh = !self.active.path.exists();
        self.active.persist()?;
        if fresh {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Candidate positions for a key, newest first, at most `limit`.
    pub fn lookup(&self, kind: KeyKind, topic: &str, key: &str, limit: usize) -> Result<Vec<u64>> {
        let hash = key_hash(kind, topic, key);
        let mut out = Vec::new();
        self.active.lookup(hash, &mut out, limit);
        for s in self.sealed.iter().rev() {
            if out.len() >= limit {
                break;
            }
            s.lookup(hash, &mut out, limit)?;
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|p| seen.insert(*p));
        Ok(out)
    }

    /// Deletes sealed files that only point below `log_min`.
    pub fn trim(&mut self, log_min: u64) -> Result<()> {
        while self.sealed.first().is_some_and(|s| s.last_pos < log_min) {
            let s = self.sealed.remove(0);
            fs::remove_file(&s.path).map_err(io_err(&s.path))?;
        }
        Ok(())
    }
}
