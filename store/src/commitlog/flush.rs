//! Flushing: the flusher thread's fsyncs and, under the sync policy, the
//! queue of appends waiting for the fsync that covers them (group commit).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Appended, CommitLog, Durable};
use crate::config::FlushPolicy;
use crate::error::{Result, StoreError, io_err};

/// Appends waiting for their fsync: (end position, results, callback).
pub(super) struct Waiting(pub(super) VecDeque<(u64, Vec<Appended>, Durable)>);

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} appends waiting", self.0.len())
    }
}

impl CommitLog {
    /// Marks the log failed: appends are refused until it is reopened,
    /// and appends waiting for an fsync fail.
    pub(super) fn fail(&self, why: String) {
        tracing::error!(reason = %why, "commit log failed; appends refused until reopened");
        *self.failed.lock() = Some(why.clone());
        let waiting = std::mem::take(&mut self.waiting.lock().0);
        for (_, _, done) in waiting {
            done(Err(StoreError::Failed(why.clone())));
        }
    }

    /// One flush: fsync everything written so far. Returns the new durable end.
    pub fn flush(&self) -> Result<u64> {
        let (target, files) = {
            let mut tail = self.tail.lock();
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
                let mut w = self.waiting.lock();
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
}
