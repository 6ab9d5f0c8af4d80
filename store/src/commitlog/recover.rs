//! Opening the commit log after a clean stop or a crash: scan from a
//! position known durable to the first record that fails its checks, and
//! move everything past that valid end into `quarantine/`.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use tern_model::now_ms;

use super::flush::Waiting;
use super::{CommitLog, Segment, Tail, open_segment, read_full_at};
use crate::config::StoreConfig;
use crate::error::{Result, io_err};
use crate::fsutil::{numbered_files, numbered_name, sync_dir};
use crate::record::{HEADER_LEN, RecordView, peek_len};
use crate::sync::Signal;

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

/// Calls `f` for every valid record of `seg` from `from` (a record
/// boundary, relative to the segment) up to `to`; stops at the first record
/// that fails its checks or whose position field is not its own. Returns
/// the offset reached (relative) and, if the scan stopped early, why.
pub(super) fn scan_segment(
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

        // A replica keeps nothing past what it knows it applied durably.
        let limit = cfg.recover_until.unwrap_or(u64::MAX);
        let scan_hint = scan_hint.min(limit);
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
            if i > first && seg.base >= limit {
                rec.stop_reason = Some(format!("past the applied mark {limit}"));
                keep = i;
                break;
            }
            let usable = len.min(limit.saturating_sub(seg.base));
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
            if i == first && hint > 0 && hint <= usable {
                (reached, why) = scan_segment(seg, hint, usable, |_| Ok(()))?;
                rec.scanned_from = seg.base + hint;
            }
            if (reached == hint && why.is_some()) || reached == 0 {
                // No record where the hint says: check the whole segment.
                rec.scanned_from = seg.base;
                (reached, why) = scan_segment(seg, 0, usable, |_| Ok(()))?;
            }
            end = seg.base + reached;
            if reached < len {
                rec.stop_reason = why.or_else(|| Some(format!("past the applied mark {limit}")));
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
}
