//! Prepared copies: stored records read, checked and laid out as new
//! records of another topic and queue ([`crate::Store::prepare_copies`]),
//! then written in one batch ([`crate::Store::append_prepared`]). The
//! records are copied byte for byte after their checksums are verified,
//! not decoded: this is how held-back messages are released in bulk.

use std::path::PathBuf;

use tern_model::TopicName;

use crate::commitlog::{Appended, CommitLog};
use crate::error::{Result, StoreError};
use crate::record;

/// One record to copy with [`crate::Store::append_copies`].
#[derive(Debug, Clone, Copy)]
pub struct CopyOf<'a> {
    /// Where the record is in the commit log.
    pub position: u64,
    /// The topic and queue the copy goes to.
    pub topic: &'a TopicName,
    pub queue_id: u32,
}

/// Copies of stored records read, checked and laid out by
/// [`crate::Store::prepare_copies`], not yet written.
#[derive(Debug, Default)]
pub struct PreparedCopies {
    batch: record::Batch,
}

/// Bytes read at once when copying records (records next to each other
/// share a read).
const COPY_SPAN: u64 = 4 << 20;

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

    /// Reads the records at `copies`' positions from `log`, verifies their
    /// checksums and lays out their copies.
    pub(crate) fn prepare(log: &CommitLog, copies: &[CopyOf<'_>]) -> Result<Self> {
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
                    let (mut buf, mut seg) = log.read_span(c.position, COPY_SPAN)?;
                    if let Some(len) = record::peek_len(&buf)
                        && len as usize > buf.len()
                    {
                        (buf, seg) = log.read_span(c.position, u64::from(len))?;
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
        Ok(Self { batch })
    }

    /// Writes the copies to `log` (positions, queue offsets and store
    /// times are assigned now), all or nothing, returning once durable
    /// under the flush policy.
    pub(crate) fn append(self, log: &CommitLog) -> Result<Vec<Appended>> {
        let mut batch = self.batch;
        if batch.records.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        log.append(
            &mut batch,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }
}
