//! Append-only journals of small checksummed records, the broker's way of
//! making in-memory state survive a restart (consumption state in `pop`,
//! parked messages in `park`).
//!
//! File: an 8-byte magic naming the kind of journal, then frames. A frame
//! is a u16 payload length (little-endian), the CRC32C of those two length
//! bytes followed by the payload (u32, little-endian), and the payload: one
//! record as its [`Frame`] encodes it. Replay stops at the first frame that
//! is cut short, fails its checksum or does not decode: a torn tail from a
//! crash.
//!
//! Records should be set operations (last writer wins) or monotone maxima,
//! so replaying a suffix of the history on top of a state that already
//! contains part of it gives the same result. Compaction relies on that: it
//! writes a snapshot of the live state to a new file, appends whatever was
//! recorded while the snapshot was taken, and renames the new file over the
//! old one.
//!
//! Appending only copies bytes into a buffer; [`Journal::flush`] (called by
//! a background thread every few milliseconds, or on demand) writes the
//! buffer out and fsyncs it, so many state changes share one fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::codec::{Reader, Writer};
use crate::error::{BrokerError, Result, corrupt, io_err};
use crate::fsutil::{read_optional, sync_dir};

const FRAME_HEADER: usize = 6;

/// A record kind a journal holds.
pub(crate) trait Frame: Sized {
    /// The file's first eight bytes.
    const MAGIC: &'static [u8; 8];
    /// What the journal is, for messages ("pop journal").
    const WHAT: &'static str;
    /// Writes the record's payload (at most 64 KiB).
    fn encode(&self, w: &mut Writer);
    /// Reads a payload back; `None` if it is not a valid record.
    fn decode(r: &mut Reader<'_>) -> Option<Self>;
}

/// Appends the frame of `rec` to `out`.
pub(crate) fn encode_frame<R: Frame>(rec: &R, out: &mut Vec<u8>) {
    let mut w = Writer::default();
    rec.encode(&mut w);
    let len = u16::try_from(w.buf.len()).unwrap_or(u16::MAX).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &w.buf);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&w.buf);
}

/// What reading a journal file found.
#[derive(Debug)]
pub(crate) struct Replay<R> {
    pub records: Vec<R>,
    /// Bytes past the last valid frame (a torn or damaged tail).
    pub dropped: Vec<u8>,
}

impl<R> Default for Replay<R> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            dropped: Vec::new(),
        }
    }
}

/// Parses a whole journal file.
pub(crate) fn parse<R: Frame>(path: &Path, bytes: &[u8]) -> Result<Replay<R>> {
    let Some(mut rest) = bytes.strip_prefix(R::MAGIC.as_slice()) else {
        return Err(corrupt(path, format!("not a {} (bad magic)", R::WHAT)));
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
        let mut r = Reader::new(payload);
        let Some(rec) = R::decode(&mut r).filter(|_| r.is_empty()) else {
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
pub(crate) fn read<R: Frame>(path: &Path) -> Result<Replay<R>> {
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

/// The open journal of records `R`.
#[derive(Debug)]
pub(crate) struct Journal<R> {
    path: PathBuf,
    /// Frames appended but not yet written.
    pending: Mutex<Vec<u8>>,
    file: Mutex<FileState>,
    /// Set when an fsync failed: the file's state is unknown, so the
    /// journal refuses further use until the broker restarts.
    failed: AtomicBool,
    records: PhantomData<fn(&R)>,
}

impl<R: Frame> Journal<R> {
    /// Starts a fresh journal at `path` holding `snapshot` (frames from
    /// [`encode_frame`]), replacing any old file atomically.
    pub fn create(path: &Path, snapshot: &[u8]) -> Result<Self> {
        let (file, len) = write_new(path, R::MAGIC, snapshot, &[])?;
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
            records: PhantomData,
        })
    }

    /// Queues a record; it is durable after the next [`Journal::flush`].
    pub fn append(&self, rec: &R) {
        encode_frame(rec, &mut self.pending.lock());
    }

    /// Fails if an earlier fsync failed.
    pub fn check(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(BrokerError::Failed(format!(
                "{} {} failed to sync; restart the broker",
                R::WHAT,
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Writes and fsyncs every record appended so far.
    pub fn flush(&self) -> Result<()> {
        self.check()?;
        let mut f = self.file.lock();
        self.flush_locked(&mut f)
    }

    fn flush_locked(&self, f: &mut FileState) -> Result<()> {
        let buf = std::mem::take(&mut *self.pending.lock());
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = f.file.write_all_at(&buf, f.len) {
            // Cut any partial frame and keep the records for the next try.
            let cut = f.file.set_len(f.len);
            let mut pending = self.pending.lock();
            let newer = std::mem::replace(&mut *pending, buf);
            pending.extend_from_slice(&newer);
            drop(pending);
            if cut.is_err() {
                self.failed.store(true, Ordering::Release);
            }
            if !f.erring {
                tracing::error!(path = %self.path.display(), error = %e, "{} write failed; will retry", R::WHAT);
                f.erring = true;
            }
            return Err(io_err(&self.path)(e));
        }
        if let Err(e) = f.file.sync_data() {
            self.failed.store(true, Ordering::Release);
            tracing::error!(path = %self.path.display(), error = %e, "{} fsync failed; its state is no longer durable", R::WHAT);
            return Err(io_err(&self.path)(e));
        }
        if f.erring {
            tracing::info!(path = %self.path.display(), "{} writes work again", R::WHAT);
            f.erring = false;
        }
        f.len += buf.len() as u64;
        Ok(())
    }

    /// Whether the file has grown past `threshold` bytes and to more than
    /// twice its last snapshot.
    pub fn wants_compaction(&self, threshold: u64) -> bool {
        let f = self.file.lock();
        f.len > threshold && f.len > 2 * f.snapshot_len
    }

    /// Replaces the file with `snapshot()` (encoded frames of the live
    /// state) plus whatever was appended while it was being taken.
    pub fn compact(&self, snapshot: impl FnOnce() -> Vec<u8>) -> Result<()> {
        self.check()?;
        let mut f = self.file.lock();
        self.flush_locked(&mut f)?;
        let snap = snapshot();
        let tail = std::mem::take(&mut *self.pending.lock());
        match write_new(&self.path, R::MAGIC, &snap, &tail) {
            Ok((file, len)) => {
                tracing::info!(path = %self.path.display(), before = f.len, after = len, "{} compacted", R::WHAT);
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
                let mut pending = self.pending.lock();
                let newer = std::mem::replace(&mut *pending, tail);
                pending.extend_from_slice(&newer);
                Err(e)
            }
        }
    }
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.file.lock().len
    }
}

/// Writes magic + `a` + `b` to a temporary file, fsyncs it, renames it to
/// `path` and fsyncs the directory. Returns the file, open for appending.
fn write_new(path: &Path, magic: &[u8], a: &[u8], b: &[u8]) -> Result<(File, u64)> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let mut buf = Vec::with_capacity(magic.len() + a.len() + b.len());
        buf.extend_from_slice(magic);
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

/// Fuzzing support for the journals' record decoders: files of frames
/// whose lengths and checksums are right but whose payloads are anything,
/// so the decoder itself is what the bytes reach.
#[cfg(test)]
pub(crate) mod fuzz {
    use std::path::Path;

    use super::{Frame, parse};

    /// `magic`, then a well-framed frame around each of `payloads`, then
    /// `tail`.
    pub(crate) fn framed(magic: &[u8], payloads: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
        let mut out = magic.to_vec();
        for p in payloads {
            let len = u16::try_from(p.len()).unwrap_or(u16::MAX).to_le_bytes();
            let crc = crc32c::crc32c_append(crc32c::crc32c(&len), p);
            out.extend_from_slice(&len);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(p);
        }
        out.extend_from_slice(tail);
        out
    }

    /// Parses such a file of `R` records: never panics, and every record
    /// it returns encodes back to its frame's payload.
    pub(crate) fn check<R: Frame + PartialEq + std::fmt::Debug>(payloads: &[Vec<u8>], tail: &[u8]) {
        let file = framed(R::MAGIC, payloads, tail);
        let Ok(replay) = parse::<R>(Path::new("fuzz"), &file) else {
            return;
        };
        for (rec, payload) in replay.records.iter().zip(payloads) {
            let mut w = crate::codec::Writer::default();
            rec.encode(&mut w);
            assert_eq!(&w.buf, payload, "{rec:?} does not encode back to its bytes");
        }
        // Arbitrary bytes after the magic: never a panic either.
        let mut raw = R::MAGIC.to_vec();
        raw.extend_from_slice(tail);
        let _ = parse::<R>(Path::new("fuzz"), &raw);
    }
}
