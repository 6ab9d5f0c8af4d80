use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// When appended data reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlushPolicy {
    /// The append returns once the data is in the page cache; a flusher
    /// fsyncs every `flush_interval`, or sooner when `flush_dirty_bytes`
    /// are waiting. A crash of the machine (not of the process) can lose
    /// up to that much acknowledged data.
    #[default]
    Async,
    /// The append returns only after fsync; concurrent appends share one
    /// fsync (group commit). Readers never see data that is not durable.
    Sync,
}

/// Storage engine settings. Every default is documented on its field and
/// in [`StoreConfig::new`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Root directory; created if missing. Default `./tern-data`.
    pub dir: PathBuf,
    /// Flush policy. Default `async`.
    pub flush: FlushPolicy,
    /// Capacity of one commit-log segment file. Default 1 GiB.
    pub segment_size: u64,
    /// Largest message body accepted. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Async policy: longest time between fsyncs. Default 500 ms.
    #[serde(with = "millis")]
    pub flush_interval: Duration,
    /// Async policy: flush early once this many bytes are unflushed.
    /// Default 16 MiB.
    pub flush_dirty_bytes: u64,
    /// Entries per consume-queue file (32 bytes each). Default 262 144 (8 MiB).
    pub cq_entries_per_file: u64,
    /// Hash slots per index file. Default 262 144.
    pub index_slots: u32,
    /// Entries per index file (24 bytes each). Default 1 048 576.
    pub index_entries_per_file: u32,
    /// How often consume queues and indexes are made durable and the
    /// checkpoint written. Default 1 s.
    #[serde(with = "millis")]
    pub checkpoint_interval: Duration,
    /// Segments whose last write is older than this are deleted. Default 72 h.
    #[serde(with = "millis")]
    pub retention: Duration,
    /// Above this share of the disk in use, the oldest segments are deleted
    /// even if younger than `retention`. Default 0.85.
    pub disk_high_water: f64,
    /// At or above this share of the disk in use, appends are refused with
    /// [`StoreError::DiskFull`]; reads go on. Default 0.95.
    pub disk_hard_limit: f64,
    /// How often retention and the disk limits are checked. Default 10 s.
    #[serde(with = "millis")]
    pub clean_interval: Duration,
    /// Holders of retention ([`crate::Store::hold_retention`]) that must
    /// report before retention deletes anything: a part of the broker
    /// that opens after the store (and only then knows what it keeps)
    /// names itself here, so the cleaner's first passes cannot delete
    /// what it is about to hold. Default none.
    #[serde(default)]
    pub retention_holders: Vec<String>,
    /// Keep no commit-log record that ends past this position when the
    /// store opens: records past it are cut off at recovery like a torn
    /// tail (moved to `commitlog/quarantine/`). Set by a replicated broker
    /// group's replica to the end of what it knows it applied durably; the
    /// rest is applied again from its Raft log, byte for byte. Not a
    /// setting of the configuration file. Default none.
    #[serde(skip)]
    pub recover_until: Option<u64>,
    /// Take appends only through [`crate::Store::append_encoded`] (a
    /// replicated group's replica): every other append is refused with
    /// [`crate::StoreError::ReplicaOnly`]. Not a setting of the
    /// configuration file. Default false.
    #[serde(skip)]
    pub replica_only: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::new("tern-data")
    }
}

impl StoreConfig {
    /// The defaults, rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            flush: FlushPolicy::Async,
            segment_size: 1 << 30,
            max_body_bytes: tern_model::DEFAULT_MAX_BODY_BYTES,
            flush_interval: Duration::from_millis(500),
            flush_dirty_bytes: 16 << 20,
            cq_entries_per_file: 262_144,
            index_slots: 262_144,
            index_entries_per_file: 1 << 20,
            checkpoint_interval: Duration::from_secs(1),
            retention: Duration::from_secs(72 * 3600),
            disk_high_water: 0.85,
            disk_hard_limit: 0.95,
            clean_interval: Duration::from_secs(10),
            retention_holders: Vec::new(),
            recover_until: None,
            replica_only: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(StoreError::Config(m.to_owned()));
        if self.segment_size < 4096 {
            return bad("segment_size must be at least 4096 bytes");
        }
        if self.cq_entries_per_file < 16 {
            return bad("cq_entries_per_file must be at least 16");
        }
        if self.index_slots == 0 || self.index_entries_per_file < 16 {
            return bad("index_slots must be positive and index_entries_per_file at least 16");
        }
        if !(0.0..=1.0).contains(&self.disk_high_water)
            || !(0.0..=1.0).contains(&self.disk_hard_limit)
            || self.disk_high_water > self.disk_hard_limit
        {
            return bad("disk limits must satisfy 0 <= disk_high_water <= disk_hard_limit <= 1");
        }
        if self.flush_interval.is_zero()
            || self.checkpoint_interval.is_zero()
            || self.clean_interval.is_zero()
        {
            return bad("intervals must be positive");
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
