//! The pop journal: an append-only file of small checksummed records that
//! makes consumption state survive a restart.
//!
//! File: an 8-byte magic `TERNPOP1`, then frames. A frame is a u16 payload
//! length (little-endian), the CRC32C of those two length bytes followed by
//! the payload (u32, little-endian), and the payload: a kind byte and the
//! record's fields as varints (see [`Record`]). Replay stops at the first
//! frame that is cut short or fails its checksum: a torn tail from a crash.
//!
//! Records are set operations keyed by queue offset (last writer wins) or
//! monotone maxima, so replaying a suffix of the history on top of a state
//! that already contains part of it gives the same result. Compaction
//! relies on that: it writes a snapshot of the live state to a new file,
//! appends whatever was recorded while the snapshot was taken, and renames
//! the new file over the old one.
//!
//! Appending only copies bytes into a buffer; [`Journal::flush`] (called
//! by a background thread every few milliseconds, or on demand) writes the
//! buffer out and fsyncs it, so many state changes share one fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::codec::{Reader, Writer};
use crate::error::{BrokerError, Result, corrupt, io_err};
use crate::fsutil::{lock, read_optional, sync_dir};

const MAGIC: &[u8; 8] = b"TERNPOP1";
const FRAME_HEADER: usize = 6;

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A broker start; sequence numbers of this run begin at
    /// `epoch << SEQ_EPOCH_SHIFT`.
    Boot { epoch: u64 },
    /// Declares journal id `id` for a (group, topic, queue) and raises its
    /// next offset to `next`.
    Open {
        id: u32,
        group: String,
        topic: String,
        queue: u32,
        next: u64,
    },
    /// `offset` is in flight with this lease.
    Lease {
        id: u32,
        offset: u64,
        attempt: u32,
        until: i64,
        seq: u64,
    },
    /// `offset` is done (acknowledged, filtered, dead-lettered, gone).
    Done { id: u32, offset: u64 },
    /// The next offset is at least `next` (offsets skipped below it are
    /// done).
    Advance { id: u32, next: u64 },
}

const BOOT: u8 = 1;
const OPEN: u8 = 2;
const LEASE: u8 = 3;
const DONE: u8 = 4;
const ADVANCE: u8 = 5;

impl Record {
    /// Appends this record's frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::default();
        match self {
            Record::Boot { epoch } => {
                w.u8(BOOT).uvar(*epoch);
            }
            Record::Open {
                id,
                group,
                topic,
                queue,
                next,
            } => {
                w.u8(OPEN)
                    .uvar(u64::from(*id))
                    .str(group)
                    .str(topic)
                    .uvar(u64::from(*queue))
                    .uvar(*next);
            }
            Record::Lease {
                id,
                offset,
                attempt,
                until,
                seq,
            } => {
                w.u8(LEASE)
                    .uvar(u64::from(*id))
                    .uvar(*offset)
                    .uvar(u64::from(*attempt))
                    .ivar(*until)
                    .uvar(*seq);
            }
            Record::Done { id, offset } => {
                w.u8(DONE).uvar(u64::from(*id)).uvar(*offset);
            }
            Record::Advance { id, next } => {
                w.u8(ADVANCE).uvar(u64::from(*id)).uvar(*next);
            }
        }
        // Names are at most a few hundred bytes: every payload fits.
        let len = u16::try_from(w.buf.len()).unwrap_or(u16::MAX).to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &w.buf);
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&w.buf);
    }

    fn decode(payload: &[u8]) -> Option<Record> {
        let mut r = Reader::new(payload);
        let rec = match r.u8()? {
            BOOT => Record::Boot { epoch: r.uvar()? },
            OPEN => Record::Open {
                id: r.u32var()?,
                group: r.str()?.to_owned(),
                topic: r.str()?.to_owned(),
                queue: r.u32var()?,
                next: r.uvar()?,
            },
            LEASE => Record::Lease {
                id: r.u32var()?,
                offset: r.uvar()?,
                attempt: r.u32var()?,
                until: r.ivar()?,
                seq: r.uvar()?,
            },
            DONE => Record::Done {
                id: r.u32var()?,
                offset: r.uvar()?,
            },
            ADVANCE => Record::Advance {
                id: r.u32var()?,
                next: r.uvar()?,
            },
            _ => return None,
        };
        r.is_empty().then_some(rec)
    }
}

/// What reading a journal file found.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub records: Vec<Record>,
    /// Bytes past the last valid frame (a torn or damaged tail).
    pub dropped: Vec<u8>,
}

/// Parses a whole journal file.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Replay> {
    let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(corrupt(path, "not a pop journal (bad magic)"));
    };
    let mut records = Vec::new();
    while rest.len() >= FRAME_HEADER {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let crc = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
        let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            break;
        };
        if crc32c::crc32c_append(crc32c::crc32c(&rest[..2]), payload) != crc {
            break;
        }
        let Some(rec) = Record::decode(payload) else {
            break;
        };
        records.push(rec);
        rest = &rest[FRAME_HEADER + len..];
    }
    Ok(Replay {
        records,
        dropped: rest.to_vec(),
    })
}

/// Reads the journal at `path` (an empty replay if there is none).
pub(crate) fn read(path: &Path) -> Result<Replay> {
    match read_optional(path)? {
        Some(bytes) => parse(path, &bytes),
        None => Ok(Replay::default()),
    }
}

#[derive(Debug)]
struct FileState {
    file: File,
    /// Bytes written and fsynced.
    len: u64,
    /// Size of the last snapshot, to pace compactions.
    snapshot_len: u64,
    /// Whether the last flush failed (to log a change only once).
    erring: bool,
}

/// The open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    /// Frames appended but not yet written.
    pending: Mutex<Vec<u8>>,
    file: Mutex<FileState>,
    /// Set when an fsync failed: the file's state is unknown, so the
    /// journal refuses further use until the broker restarts.
    failed: AtomicBool,
}

impl Journal {
    /// Starts a fresh journal at `path` holding `snapshot` (encoded
    /// frames), replacing any old file atomically.
    pub fn create(path: &Path, snapshot: &[u8]) -> Result<Self> {
        let (file, len) = write_new(path, snapshot, &[])?;
        Ok(Self {
            path: path.to_owned(),
            pending: Mutex::new(Vec::new()),
            file: Mutex::new(FileState {
                file,
                len,
                snapshot_len: len,
                erring: false,
            }),
            failed: AtomicBool::new(false),
        })
    }

    /// Queues a record; it is durable after the next [`Journal::flush`].
    pub fn append(&self, rec: &Record) {
        rec.encode_into(&mut lock(&self.pending));
    }

    /// Fails if an earlier fsync failed.
    pub fn check(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(BrokerError::Failed(format!(
                "pop journal {} failed to sync; restart the broker",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Writes and fsyncs every record appended so far.
    pub fn flush(&self) -> Result<()> {
        self.check()?;
        let mut f = lock(&self.file);
        self.flush_locked(&mut f)
    }

    fn flush_locked(&self, f: &mut FileState) -> Result<()> {
        let buf = std::mem::take(&mut *lock(&self.pending));
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = f.file.write_all_at(&buf, f.len) {
            // Cut any partial frame and keep the records for the next try.
            let cut = f.file.set_len(f.len);
            let mut pending = lock(&self.pending);
            let newer = std::mem::replace(&mut *pending, buf);
            pending.extend_from_slice(&newer);
            drop(pending);
            if cut.is_err() {
                self.failed.store(true, Ordering::Release);
            }
            if !f.erring {
                tracing::error!(path = %self.path.display(), error = %e, "pop journal write failed; will retry");
                f.erring = true;
            }
            return Err(io_err(&self.path)(e));
        }
        if let Err(e) = f.file.sync_data() {
            self.failed.store(true, Ordering::Release);
            tracing::error!(path = %self.path.display(), error = %e, "pop journal fsync failed; consumption state is no longer durable");
            return Err(io_err(&self.path)(e));
        }
        if f.erring {
            tracing::info!(path = %self.path.display(), "pop journal writes work again");
            f.erring = false;
        }
        f.len += buf.len() as u64;
        Ok(())
    }

    /// Whether the file has grown past `threshold` bytes and to more than
    /// twice its last snapshot.
    pub fn wants_compaction(&self, threshold: u64) -> bool {
        let f = lock(&self.file);
        f.len > threshold && f.len > 2 * f.snapshot_len
    }

    /// Replaces the file with `snapshot()` (encoded frames of the live
    /// state) plus whatever was appended while it was being taken.
    pub fn compact(&self, snapshot: impl FnOnce() -> Vec<u8>) -> Result<()> {
        self.check()?;
        let mut f = lock(&self.file);
        self.flush_locked(&mut f)?;
        let snap = snapshot();
        let tail = std::mem::take(&mut *lock(&self.pending));
        match write_new(&self.path, &snap, &tail) {
            Ok((file, len)) => {
                tracing::info!(path = %self.path.display(), before = f.len, after = len, "pop journal compacted");
                *f = FileState {
                    file,
                    len,
                    snapshot_len: len,
                    erring: false,
                };
                Ok(())
            }
            Err(e) => {
                // The old file is intact; its tail goes there instead.
                let mut pending = lock(&self.pending);
                let newer = std::mem::replace(&mut *pending, tail);
                pending.extend_from_slice(&newer);
                Err(e)
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> u64 {
        lock(&self.file).len
    }
}

/// Writes magic + `a` + `b` to a temporary file, fsyncs it, renames it to
/// `path` and fsyncs the directory. Returns the file, open for appending.
fn write_new(path: &Path, a: &[u8], b: &[u8]) -> Result<(File, u64)> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let mut buf = Vec::with_capacity(MAGIC.len() + a.len() + b.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(a);
        buf.extend_from_slice(b);
        file.write_all(&buf).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        Ok((file, buf.len() as u64))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::Boot { epoch: 3 },
            Record::Open {
                id: 1,
                group: "g".into(),
                topic: "t".into(),
                queue: 2,
                next: 10,
            },
            Record::Lease {
                id: 1,
                offset: 10,
                attempt: 1,
                until: 1_700_000_000_000,
                seq: 3 << 40,
            },
            Record::Done { id: 1, offset: 10 },
            Record::Advance { id: 1, next: 12 },
        ]
    }

    #[test]
    fn records_round_trip_and_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::create(&path, &[]).unwrap();
        for r in sample() {
            j.append(&r);
        }
        j.flush().unwrap();
        assert_eq!(read(&path).unwrap().records, sample());

        // Any cut inside the last frame drops exactly that frame.
        let full = fs::read(&path).unwrap();
        let mut last = Vec::new();
        sample()[4].encode_into(&mut last);
        for cut in 1..last.len() {
            let r = parse(&path, &full[..full.len() - cut]).unwrap();
            assert_eq!(r.records, sample()[..4]);
            assert_eq!(r.dropped.len(), last.len() - cut);
        }
        // A flipped bit in a frame stops replay there.
        let mut bad = full.clone();
        let at = full.len() - last.len() - 2;
        bad[at] ^= 0x10;
        assert_eq!(parse(&path, &bad).unwrap().records, sample()[..3]);
        assert!(parse(&path, b"NOTAJRNL").is_err());
    }

    #[test]
    fn compaction_keeps_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::create(&path, &[]).unwrap();
        for _ in 0..100 {
            j.append(&Record::Advance { id: 1, next: 5 });
        }
        j.flush().unwrap();
        assert!(j.wants_compaction(100));
        j.compact(|| {
            // Something recorded while the snapshot is taken.
            j.append(&Record::Done { id: 1, offset: 9 });
            let mut b = Vec::new();
            Record::Boot { epoch: 1 }.encode_into(&mut b);
            b
        })
        .unwrap();
        j.append(&Record::Advance { id: 1, next: 6 });
        j.flush().unwrap();
        assert!(!j.wants_compaction(100));
        assert_eq!(
            read(&path).unwrap().records,
            [
                Record::Boot { epoch: 1 },
                Record::Done { id: 1, offset: 9 },
                Record::Advance { id: 1, next: 6 }
            ]
        );
        assert_eq!(j.len(), fs::metadata(&path).unwrap().len());
    }
}
