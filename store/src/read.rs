//! Reads: a message at a commit-log position, runs of messages from a
//! consume queue, a queue offset by store time, and messages by id or key
//! through the index. [`crate::Store`]'s read methods call these.

use crate::error::{Result, StoreError};
use crate::index::KeyKind;
use crate::record::{self, StoredMessage};
use crate::state::Inner;

/// Messages read from one queue.
#[derive(Debug, Clone)]
pub struct QueueRead {
    pub messages: Vec<StoredMessage>,
    /// The offset to read next.
    pub next_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
}

/// Largest single read when a queue's records lie next to each other.
const MAX_SPAN: u64 = 4 << 20;

impl Inner {
    /// The message at a commit-log position; `size` (from a consume-queue
    /// entry) saves one read when known.
    pub fn read_at(&self, position: u64, size: Option<u32>) -> Result<StoredMessage> {
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

    /// See [`crate::Store::read_queue`].
    pub fn read_queue(
        &self,
        topic: &str,
        queue_id: u32,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<QueueRead> {
        let Some(q) = self.queue(topic, queue_id) else {
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
            let (buf, seg) = self.log.read_span(run_start, run_end - run_start)?;
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

    /// See [`crate::Store::get`].
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

    /// `(min, max)` offsets of a queue; `(0, 0)` if there is none.
    pub fn queue_range(&self, topic: &str, queue_id: u32) -> (u64, u64) {
        self.queue(topic, queue_id)
            .map_or((0, 0), |q| (q.min_offset(), q.max_offset()))
    }

    /// See [`crate::Store::offset_for_timestamp`].
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        queue_id: u32,
        timestamp_ms: i64,
    ) -> Result<u64> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(0);
        };
        q.first_where(q.min_offset(), q.max_offset(), |e| {
            e.store_ts >= timestamp_ms
        })
    }

    /// See [`crate::Store::find_by_message_id`].
    pub fn find_by_message_id(&self, message_id: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.find(KeyKind::MessageId, "", message_id, limit, |m| {
            m.message.message_id == message_id
        })
    }

    /// See [`crate::Store::find_by_key`].
    pub fn find_by_key(&self, topic: &str, key: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.find(KeyKind::Key, topic, key, limit, |m| {
            m.message.topic.as_str() == topic && m.message.keys.iter().any(|k| k == key)
        })
    }

    /// Up to `limit` messages the index lists under `key` that `matches`
    /// accepts.
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
            self.index
                .lock()
                .lookup(kind, topic, key, limit.saturating_mul(4).max(16))?;
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
