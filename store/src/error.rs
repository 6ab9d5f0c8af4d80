use std::io;
use std::path::PathBuf;

use tern_model::MessageError;

/// Everything the storage engine can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk is above the configured hard limit, or a write hit ENOSPC.
    /// Nothing of the refused batch was kept; reads still work. Appends
    /// resume once space is freed (no restart needed).
    #[error("disk full: {detail}")]
    DiskFull { detail: String },

    /// A message failed validation; nothing of its batch was written.
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] MessageError),

    /// A batch larger than one commit-log segment.
    #[error("batch of {len} bytes does not fit in a {segment_size}-byte segment")]
    BatchTooLarge { len: u64, segment_size: u64 },

    /// The position or queue offset is older than what retention kept.
    #[error("offset {requested} was deleted by retention; the oldest kept is {min}")]
    Deleted { requested: u64, min: u64 },

    /// The position lies beyond what readers may see.
    #[error("position {requested} is beyond the readable end {end}")]
    BeyondEnd { requested: u64, end: u64 },

    /// Data on disk failed its checksum or its cross-checks. It is never
    /// handed to a reader.
    #[error("corrupt data in {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// An fsync or write failed in a way that leaves the on-disk state
    /// unknown; the store refuses appends until it is reopened (recovery
    /// then finds the valid end).
    #[error("store is failed and must be reopened: {0}")]
    Failed(String),

    /// The store is shutting down.
    #[error("store is closed")]
    Closed,

    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A replica's store takes appends from its group's log only
    /// ([`crate::Store::append_encoded`]); any other write would make its
    /// commit log differ from the other replicas'.
    #[error("this store is a replica of a group: it is written only through the group's log")]
    ReplicaOnly,

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// ENOSPC and EDQUOT are reported as [`StoreError::DiskFull`].
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Attaches a path to an I/O error, mapping a full disk to its own variant.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    move |source| {
        let path = path.into();
        if is_no_space(&source) {
            StoreError::DiskFull {
                detail: format!("{}: {source}", path.display()),
            }
        } else {
            StoreError::Io { path, source }
        }
    }
}

pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.into(),
        detail: detail.into(),
    }
}
