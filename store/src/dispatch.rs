//! The dispatcher: tails the commit log and writes consume-queue and index
//! entries, and the checkpoint that says how far they are durable.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cqueue::{ConsumeQueue, CqEntry};
use crate::error::{Result, corrupt};
use crate::fsutil::{read_optional, write_atomic};
use crate::state::Inner;

/// Pause after a round that found work (bounds wake-ups under load; a
/// lone message is still dispatched as soon as it is readable).
const DISPATCH_PAUSE: Duration = Duration::from_millis(1);

/// Entries buffered before they are written to their queues.
const MAX_PENDING: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub version: u32,
    /// Consume queues and the index are durable for every record below this.
    pub dispatched: u64,
    /// The commit log was durable up to here.
    pub flushed: u64,
}

pub(crate) fn read_checkpoint(inner_dir: &std::path::Path) -> Result<Option<Checkpoint>> {
    let path = inner_dir.join("checkpoint");
    match read_optional(&path)? {
        None => Ok(None),
        Some(bytes) => match serde_json::from_slice::<Checkpoint>(&bytes) {
            Ok(c) if c.version == 1 => Ok(Some(c)),
            _ => {
                // Rename keeps the file whole; still, never trust a bad one.
                tracing::warn!(path = %path.display(), "checkpoint unreadable; recovering from the start of the log");
                Ok(None)
            }
        },
    }
}

/// Queue entries gathered during a scan, written in one go per queue.
#[derive(Default)]
struct Pending {
    runs: HashMap<String, HashMap<u32, (u64, Vec<CqEntry>)>>,
    count: usize,
}

impl Pending {
    fn push(
        &mut self,
        inner: &Inner,
        topic: &str,
        queue: u32,
        offset: u64,
        e: CqEntry,
    ) -> Result<()> {
        if !self.runs.contains_key(topic) {
            self.runs.insert(topic.to_owned(), HashMap::new());
        }
        let queues = self
            .runs
            .get_mut(topic)
            .ok_or_else(|| corrupt(&inner.cfg.dir, "dispatch bookkeeping lost a topic"))?;
        let run = queues.entry(queue).or_insert_with(|| (offset, Vec::new()));
        if run.0 + run.1.len() as u64 != offset {
            // Not contiguous (only after repairs): write what we have first.
            let (first, entries) = std::mem::replace(run, (offset, Vec::new()));
            inner.queue_or_create(topic, queue).write(first, &entries)?;
        }
        run.1.push(e);
        self.count += 1;
        Ok(())
    }

    fn write(&mut self, inner: &Inner) -> Result<()> {
        for (topic, queues) in self.runs.drain() {
            for (queue, (first, entries)) in queues {
                if !entries.is_empty() {
                    inner
                        .queue_or_create(&topic, queue)
                        .write(first, &entries)?;
                }
            }
        }
        self.count = 0;
        Ok(())
    }
}

/// Dispatches every record in `[from, to)`. Returns how many.
pub(crate) fn dispatch_range(inner: &Inner, from: u64, to: u64) -> Result<u64> {
    if from >= to {
        return Ok(0);
    }
    let mut pending = Pending::default();
    let mut n = 0u64;
    let mut index = inner.index.lock();
    let listening = inner.log.listener.get().is_some();
    let mut topics: Vec<String> = Vec::new();
    inner.log.scan(from, to, |rec| {
        index.add(rec)?;
        if listening && !topics.iter().any(|t| t == rec.topic) {
            topics.push(rec.topic.to_owned());
        }
        pending.push(
            inner,
            rec.topic,
            rec.queue_id,
            rec.queue_offset,
            CqEntry {
                position: rec.position,
                size: rec.len,
                tag_hash: rec.tag.map_or(0, tern_model::tag_hash),
                store_ts: rec.store_ts,
            },
        )?;
        n += 1;
        if pending.count >= MAX_PENDING {
            pending.write(inner)?;
        }
        Ok(())
    })?;
    drop(index);
    pending.write(inner)?;
    // The entries are readable now; tell the listener before
    // `wait_dispatched` callers return.
    if let Some(l) = inner.log.listener.get() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        l.dispatched(&names);
    }
    inner.dispatched.fetch_max(to, Ordering::AcqRel);
    inner.dispatched_signal.notify();
    Ok(n)
}

/// Dispatches whatever readers may see and is not dispatched yet.
pub(crate) fn catch_up(inner: &Inner) -> Result<u64> {
    let from = inner.dispatched.load(Ordering::Acquire);
    let to = inner.log.readable_end();
    dispatch_range(inner, from, to)
}

/// Makes consume queues, the index and consumer offsets durable, then
/// records how far in the checkpoint.
pub(crate) fn checkpoint(inner: &Inner) -> Result<()> {
    let dispatched = inner.dispatched.load(Ordering::Acquire);
    sync_queues(inner.all_queues())?;
    inner.index.lock().persist()?;
    inner.offsets.persist()?;
    let c = Checkpoint {
        version: 1,
        dispatched,
        flushed: inner.log.flushed(),
    };
    let bytes = serde_json::to_vec(&c).map_err(|e| corrupt(&inner.cfg.dir, e.to_string()))?;
    write_atomic(&inner.cfg.dir.join("checkpoint"), &bytes)
}

/// Most threads syncing consume queues at once.
const SYNC_THREADS: usize = 8;

/// Syncs the dirty ones of `queues`: one by one when they are few, else
/// on up to [`SYNC_THREADS`] threads at once. With thousands of queues
/// written since the last checkpoint (many topics), one `fdatasync` after
/// another took tens of seconds; concurrent ones share the file system's
/// journal commits.
fn sync_queues(queues: Vec<Arc<ConsumeQueue>>) -> Result<()> {
    let dirty: Vec<Arc<ConsumeQueue>> = queues.into_iter().filter(|q| q.is_dirty()).collect();
    if dirty.len() <= SYNC_THREADS {
        return dirty.iter().try_for_each(|q| q.sync());
    }
    let per_thread = dirty.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = dirty
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|q| q.sync())))
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

/// The dispatcher thread.
pub(crate) fn run(inner: &Inner) {
    let mut last_checkpoint = Instant::now();
    let mut checkpoint_every = inner.cfg.checkpoint_interval;
    let mut last_written = (
        inner.dispatched.load(Ordering::Acquire),
        inner.log.flushed(),
    );
    loop {
        let seen = inner.log.readable.generation();
        let closed = inner.log.closed.load(Ordering::Acquire);
        let busy = match catch_up(inner) {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!(error = %e, "dispatch failed; retrying");
                std::thread::sleep(Duration::from_millis(200));
                false
            }
        };
        if closed {
            return;
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            let now = (
                inner.dispatched.load(Ordering::Acquire),
                inner.log.flushed(),
            );
            let started = Instant::now();
            if now != last_written || inner.offsets_dirty() {
                match checkpoint(inner) {
                    Ok(()) => last_written = now,
                    Err(e) => tracing::error!(error = %e, "checkpoint failed"),
                }
            }
            // Dispatch waits while this thread checkpoints: a slow
            // checkpoint (thousands of queues to sync) spaces the next
            // ones out, so it takes at most a fifth of the thread's time.
            checkpoint_every = inner.cfg.checkpoint_interval.max(started.elapsed() * 4);
            last_checkpoint = Instant::now();
        }
        if busy {
            // Under load, let records gather for a moment rather than being
            // woken by every append: one round per millisecond at most.
            std::thread::sleep(DISPATCH_PAUSE);
            continue;
        }
        let wait = inner
            .cfg
            .checkpoint_interval
            .min(Duration::from_millis(200));
        inner.log.readable.wait(seen, wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues_with_entries(dir: &std::path::Path, n: usize) -> Vec<Arc<ConsumeQueue>> {
        (0..n)
            .map(|i| {
                let q = Arc::new(ConsumeQueue::create(dir.join(format!("q{i}")), 16));
                let e = CqEntry {
                    position: i as u64 * 100,
                    size: 100,
                    tag_hash: 0,
                    store_ts: 1,
                };
                q.write(0, &[e]).unwrap();
                q
            })
            .collect()
    }

    #[test]
    fn every_dirty_queue_is_synced_few_or_many() {
        let dir = tempfile::tempdir().unwrap();
        for n in [3, SYNC_THREADS * 5 + 1] {
            let queues = queues_with_entries(&dir.path().join(n.to_string()), n);
            assert!(queues.iter().all(|q| q.is_dirty()));
            sync_queues(queues.clone()).unwrap();
            assert!(
                queues.iter().all(|q| !q.is_dirty()),
                "{n} queues: some left dirty"
            );
            // Written again: dirty again (a file, no new directory).
            queues[0]
                .write(
                    1,
                    &[CqEntry {
                        position: 1,
                        size: 1,
                        tag_hash: 0,
                        store_ts: 1,
                    }],
                )
                .unwrap();
            assert!(queues[0].is_dirty());
            sync_queues(queues.clone()).unwrap();
            assert!(!queues[0].is_dirty());
        }
    }
}
