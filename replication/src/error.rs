//! The one error type of tern-replication.

use std::path::PathBuf;

/// What went wrong in a replica's log, its state machine adapter, its
/// network or a write submitted to the group.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the replicated log could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Fewer bytes than a whole entry frame.
    #[error("entry frame truncated")]
    Truncated,
    /// An entry frame's length is impossible.
    #[error("entry frame length {0} out of range")]
    BadLength(usize),
    /// An entry's bytes do not match their checksum.
    #[error("entry checksum mismatch{}", index.map(|i| format!(" at index {i}")).unwrap_or_default())]
    Checksum { index: Option<u64> },
    /// An entry of an unknown kind.
    #[error("unknown entry kind {0}")]
    Kind(u8),
    /// A membership entry that is not valid JSON of a membership.
    #[error("bad membership entry: {0}")]
    Membership(String),
    /// The log on disk is not a contiguous run of entries.
    #[error("log corrupt in {path}: {why}")]
    Corrupt { path: PathBuf, why: String },
    /// A message between replicas that could not be encoded or decoded.
    #[error("bad replication message: {0}")]
    Message(String),
    /// This replica is not the group's leader; `leader` is the one it knows
    /// of, with its replication address.
    #[error("not the leader{}", leader.as_ref().map(|(id, addr)| format!(" (replica {id} at {addr} is)")).unwrap_or_else(|| " (no leader known yet)".into()))]
    NotLeader { leader: Option<(u64, String)> },
    /// The replica's configuration is unusable.
    #[error("replication configuration: {0}")]
    Config(String),
    /// The state machine refused or failed a command, snapshot or restore.
    #[error("state machine: {0}")]
    Machine(String),
    /// Raft itself stopped or failed (the replica must be restarted).
    #[error("raft: {0}")]
    Raft(String),
}

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
