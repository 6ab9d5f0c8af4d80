//! Opening the store: lock the directory, find the valid end of the commit
//! log, open consume queues and the index, re-dispatch what the checkpoint
//! does not cover, and write a fresh checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::commitlog::{CommitLog, LogRecovery};
use crate::config::StoreConfig;
use crate::cqueue::ConsumeQueue;
use crate::dispatch::{checkpoint, dispatch_range, read_checkpoint};
use crate::error::{Result, StoreError, corrupt, io_err};
use crate::fsutil::{read_optional, write_atomic};
use crate::index::Index;
use crate::offsets::Offsets;
use crate::state::{Holds, Inner, QueueMap};
use crate::sync::Signal;

/// What opening the store found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    /// Whether a checkpoint was found (a clean or checkpointed history).
    pub had_checkpoint: bool,
    pub log: LogRecovery,
    /// Where consume queues and the index were rebuilt from.
    pub redispatched_from: u64,
    /// Records re-dispatched.
    pub redispatched_records: u64,
    /// Consume queues whose tail was damaged and repaired.
    pub repaired_queues: Vec<String>,
    pub duration_ms: u64,
}

/// Settings that shape files already on disk. Recorded when the store is
/// created; later opens keep them whatever the configuration says.
#[derive(Debug, Serialize, Deserialize)]
struct Layout {
    version: u32,
    cq_entries_per_file: u64,
}

fn pin_layout(mut cfg: StoreConfig) -> Result<StoreConfig> {
    let path = cfg.dir.join("layout.json");
    match read_optional(&path)? {
        Some(bytes) => {
            let layout: Layout = serde_json::from_slice(&bytes)
                .map_err(|e| corrupt(&path, format!("unreadable store layout: {e}")))?;
            if layout.version != 1 {
                return Err(StoreError::Config(format!(
                    "{} has layout version {}; this build reads version 1",
                    path.display(),
                    layout.version
                )));
            }
            if layout.cq_entries_per_file != cfg.cq_entries_per_file {
                tracing::warn!(
                    configured = cfg.cq_entries_per_file,
                    kept = layout.cq_entries_per_file,
                    "cq_entries_per_file cannot change for an existing store; keeping the recorded value"
                );
                cfg.cq_entries_per_file = layout.cq_entries_per_file;
            }
        }
        None => {
            let layout = Layout {
                version: 1,
                cq_entries_per_file: cfg.cq_entries_per_file,
            };
            let bytes = serde_json::to_vec(&layout).map_err(|e| corrupt(&path, e.to_string()))?;
            write_atomic(&path, &bytes)?;
        }
    }
    Ok(cfg)
}

/// Opens the store in `cfg.dir`: the shared state, and what recovery found.
pub(crate) fn open(cfg: StoreConfig) -> Result<(Inner, RecoveryReport)> {
    cfg.validate()?;
    let started = Instant::now();
    fs::create_dir_all(&cfg.dir).map_err(io_err(&cfg.dir))?;

    // One process per data directory.
    let lock_path = cfg.dir.join("LOCK");
    let lock_file = crate::durable::lock_exclusive(&lock_path)
        .map_err(io_err(&lock_path))?
        .ok_or_else(|| {
            StoreError::Config(format!(
                "{} is in use by another process (lock held on {})",
                cfg.dir.display(),
                lock_path.display()
            ))
        })?;

    let cfg = pin_layout(cfg)?;
    let ck = read_checkpoint(&cfg.dir)?;
    let (log, log_rec) = CommitLog::open(&cfg, ck.map_or(0, |c| c.flushed))?;
    let log_min = log.min_offset();
    let valid_end = log_rec.valid_end;
    let mut redo = ck
        .map_or(log_min, |c| c.dispatched.min(valid_end))
        .max(log_min);

    let (index, index_covered) = Index::open(
        cfg.dir.join("index"),
        cfg.index_slots,
        cfg.index_entries_per_file,
        log_min,
    )?;
    redo = redo.min(index_covered.max(log_min));

    // Consume queues: drop entries at or past `redo`; damaged tails ask
    // for a re-read from further back.
    let mut queues: QueueMap = HashMap::new();
    let mut repaired = Vec::new();
    let cq_root = cfg.dir.join("consumequeue");
    let mut repair_from = redo;
    for topic_dir in read_dirs(&cq_root)? {
        let Some(topic) = topic_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        for queue_dir in read_dirs(&topic_dir)? {
            let Some(queue_id) = queue_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let (q, rec) = ConsumeQueue::open(queue_dir, cfg.cq_entries_per_file, redo)?;
            if let Some(from) = rec.repair_from {
                repaired.push(format!("{topic}:{queue_id}"));
                repair_from = repair_from.min(from);
            }
            queues
                .entry(topic.clone())
                .or_default()
                .insert(queue_id, Arc::new(q));
        }
    }
    let redo = repair_from.max(log_min);
    if !repaired.is_empty() {
        tracing::warn!(queues = ?repaired, from = redo, "damaged consume queues are rebuilt from the commit log");
    }

    let inner = Inner {
        offsets: Offsets::open(cfg.dir.join("offsets.json"))?,
        log,
        queues: RwLock::new(queues),
        index: Mutex::new(index),
        dispatched: AtomicU64::new(redo),
        dispatched_signal: Signal::default(),
        shutdown: Signal::default(),
        holds: Mutex::new(Holds {
            at: BTreeMap::new(),
            awaited: cfg.retention_holders.iter().cloned().collect(),
        }),
        _lock: lock_file,
        cfg,
    };
    let redispatched = dispatch_range(&inner, redo, valid_end)?;

    // Queue offsets continue where the consume queues end.
    let mut next: HashMap<String, HashMap<u32, u64>> = HashMap::new();
    for (topic, qs) in inner.queues.read().iter() {
        let per = next.entry(topic.clone()).or_default();
        for (id, q) in qs {
            q.trim(log_min)?;
            per.insert(*id, q.max_offset());
        }
    }
    inner.log.set_queue_next(next);
    checkpoint(&inner)?;

    let recovery = RecoveryReport {
        had_checkpoint: ck.is_some(),
        log: log_rec,
        redispatched_from: redo,
        redispatched_records: redispatched,
        repaired_queues: repaired,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    tracing::info!(
        valid_end,
        redispatched_from = redo,
        redispatched,
        duration_ms = recovery.duration_ms,
        "store recovered"
    );
    Ok((inner, recovery))
}

fn read_dirs(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(io_err(dir))?;
        if e.file_type().map_err(io_err(e.path()))?.is_dir() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}
