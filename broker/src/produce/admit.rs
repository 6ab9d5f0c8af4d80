//! Back-pressure: a write is admitted unless the store is behind, in
//! which case it is refused at once with TOO_MANY_REQUESTS rather than
//! queued, so a producer backs off instead of piling up memory. The same
//! for every kind of message: topic appends, delayed and half messages
//! all go through [`Admission::admit`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tern_store::Store;

use crate::error::{BrokerError, Result};
use crate::metrics::Metrics;

/// When writes are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Refuse while this many commit-log bytes are appended but not yet
    /// fsynced (the disk is behind). Default 256 MiB.
    pub max_unflushed_bytes: u64,
    /// Refuse while this many writes wait for their completion (under
    /// `sync`, for their group commit). Default 10 000.
    pub max_pending_sends: usize,
}

impl AdmissionLimits {
    /// Default [`AdmissionLimits::max_unflushed_bytes`].
    pub const DEFAULT_MAX_UNFLUSHED_BYTES: u64 = 256 << 20;
    /// Default [`AdmissionLimits::max_pending_sends`].
    pub const DEFAULT_MAX_PENDING_SENDS: usize = 10_000;
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_unflushed_bytes: Self::DEFAULT_MAX_UNFLUSHED_BYTES,
            max_pending_sends: Self::DEFAULT_MAX_PENDING_SENDS,
        }
    }
}

/// Admits writes against [`AdmissionLimits`].
#[derive(Debug)]
pub struct Admission {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    limits: AdmissionLimits,
    /// Writes admitted and not yet complete.
    pending: Arc<AtomicUsize>,
}

impl Admission {
    pub fn new(store: Arc<Store>, metrics: Arc<Metrics>, limits: AdmissionLimits) -> Self {
        Self {
            store,
            metrics,
            limits,
            pending: Arc::default(),
        }
    }

    /// Admits one write, counted as pending until the guard is dropped;
    /// [`BrokerError::TooManyRequests`] (counted in the metrics by
    /// reason) if the store is behind.
    pub fn admit(&self) -> Result<Pending> {
        let unflushed = self.store.unflushed_bytes();
        if unflushed >= self.limits.max_unflushed_bytes {
            self.metrics.refused("unflushed_bytes");
            return Err(BrokerError::TooManyRequests(format!(
                "{unflushed} bytes are waiting to be flushed to disk (limit {}); retry later",
                self.limits.max_unflushed_bytes
            )));
        }
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        let guard = Pending(Arc::clone(&self.pending));
        if before >= self.limits.max_pending_sends {
            self.metrics.refused("pending_sends");
            return Err(BrokerError::TooManyRequests(format!(
                "{before} sends are waiting for the store (limit {}); retry later",
                self.limits.max_pending_sends
            )));
        }
        Ok(guard)
    }

    /// Writes admitted and not yet complete.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// One admitted write, counted as pending until dropped.
#[derive(Debug)]
pub struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
