//! Retention and disk limits: delete whole old segments by age or when the
//! disk passes the high-water mark; refuse appends at the hard limit.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::Result;
use crate::fsutil::disk_usage;
use crate::state::Inner;

/// What one retention pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    pub bytes_freed: u64,
    pub disk_usage: f64,
    pub disk_full: bool,
    pub min_offset: u64,
}

pub(crate) fn clean(inner: &Inner) -> Result<RetentionReport> {
    let cfg = &inner.cfg;
    let mut report = RetentionReport {
        disk_usage: disk_usage(&cfg.dir)?,
        ..RetentionReport::default()
    };
    loop {
        // Never delete what the dispatcher or the flusher has not
        // finished, nor what a holder still needs.
        let held = inner.holds.lock().floor();
        let limit = inner
            .dispatched
            .load(Ordering::Acquire)
            .min(inner.log.flushed())
            .min(held);
        let over = report.disk_usage >= cfg.disk_high_water;
        let now = SystemTime::now();
        let freed = inner.log.delete_oldest(limit, |seg| {
            over || seg
                .file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age >= cfg.retention)
        })?;
        if freed == 0 {
            break;
        }
        report.segments_deleted += 1;
        report.bytes_freed += freed;
        report.disk_usage = disk_usage(&cfg.dir)?;
    }
    let min = inner.log.min_offset();
    if report.segments_deleted > 0 {
        for q in inner.all_queues() {
            q.trim(min)?;
        }
        inner.index.lock().trim(min)?;
    }
    report.disk_full = report.disk_usage >= cfg.disk_hard_limit;
    let was = inner.log.disk_full.swap(report.disk_full, Ordering::AcqRel);
    if was != report.disk_full {
        if report.disk_full {
            tracing::error!(
                usage = report.disk_usage,
                limit = cfg.disk_hard_limit,
                "disk above the hard limit: appends refused, reads go on"
            );
        } else {
            tracing::info!(
                usage = report.disk_usage,
                "disk below the hard limit again: appends resume"
            );
        }
    }
    report.min_offset = min;
    Ok(report)
}

/// The cleaner thread.
pub(crate) fn run(inner: &Inner) {
    while !inner.log.closed.load(Ordering::Acquire) {
        let seen = inner.shutdown.generation();
        if let Err(e) = clean(inner) {
            tracing::error!(error = %e, "retention pass failed");
        }
        inner.shutdown.wait(seen, inner.cfg.clean_interval);
    }
}
