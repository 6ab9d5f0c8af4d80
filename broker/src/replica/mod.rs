//! Replicated broker groups: the replicas of one group share a Raft log
//! (`tern-replication`), the leader takes the sends, and every replica
//! applies the log to its own store, so every replica's commit log holds
//! the same bytes at the same positions.
//!
//! Replicated so far: messages for topics (`Command::Append`: a batch the
//! leader encoded with `Store::encode`, and the leader's store time) and
//! the registry's changes (`Command::Meta`); consumption state, parked
//! messages and transactions are not yet (docs/ARCHITECTURE.md,
//! "Replication"). A replica's store refuses every other write
//! (`StoreConfig::replica_only`).

mod group;
mod machine;

pub use group::{Replicated, ReplicationConfig};
pub use machine::{
    Command, GroupMachine, Mark, MarkKeeper, decode_appended, encode_appended, open_store,
};
