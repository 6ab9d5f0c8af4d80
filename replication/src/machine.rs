//! The state machine side of a replica: [`Machine`], what the user of a
//! Raft group gives it (the broker's store, in the end), and the adapter
//! that makes a `Machine` openraft's `RaftStateMachine`.
//!
//! The adapter keeps what Raft needs beside the machine's own state: the
//! last membership (`DIR/membership.json`, written when a membership entry
//! is applied: rare) and the last snapshot (`DIR/snapshot.json` and
//! `DIR/snapshot.bin`). It does not persist the applied index: the machine
//! says how far its durable state goes ([`Machine::applied`]), and entries
//! at or below that are not applied again when the log is replayed after a
//! restart.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::Mutex;

use crate::entry::{Entry, Id, TypeConfig};
use crate::error::Error;
use crate::log::{LogReader, write_file, write_json};

/// What a Raft group replicates: commands applied in log order on every
/// replica, the same on each.
pub trait Machine: Send + 'static {
    /// Applies the committed command at log `index` and returns the answer
    /// given to the writer (on the leader; followers' answers are dropped).
    /// Called once per index in increasing order, but after a restart an
    /// index at or below [`Machine::applied`] is skipped, not repeated.
    /// An error stops the replica: a command that the machine may refuse
    /// must be answered with an `Ok` that says so.
    fn apply(&mut self, index: u64, command: &[u8]) -> Result<Vec<u8>, String>;

    /// The highest log index whose effects the machine holds durably (as of
    /// now, so a replay after a restart starts after it), or `None`.
    fn applied(&self) -> Option<u64>;

    /// The machine's whole state, for a replica that is too far behind to
    /// catch up from the log.
    fn snapshot(&mut self) -> Result<Vec<u8>, String>;

    /// Replaces the machine's state with a snapshot taken at log `index`.
    fn restore(&mut self, index: u64, snapshot: &[u8]) -> Result<(), String>;
}

/// A snapshot's meta in this crate's types.
type Meta = SnapshotMeta<u64, BasicNode>;

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
}

struct Inner<M> {
    machine: M,
    dir: PathBuf,
    last_applied: Option<Id>,
    membership: StoredMembership<u64, BasicNode>,
    snapshot: Option<(Meta, Arc<Vec<u8>>)>,
    snapshots_built: u64,
}

/// A [`Machine`] as openraft's state machine.
pub struct MachineStore<M> {
    inner: Arc<Mutex<Inner<M>>>,
}

impl<M> std::fmt::Debug for MachineStore<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineStore").finish_non_exhaustive()
    }
}

/// Builds snapshots of a [`MachineStore`].
pub struct Builder<M> {
    inner: Arc<Mutex<Inner<M>>>,
}

impl<M> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_state_machine(&Error::Machine(e.to_string())).into()
}

impl<M: Machine> MachineStore<M> {
    /// The adapter over `machine`, keeping its files in `dir`; `log` is the
    /// replica's log (to name the applied index's term after a restart).
    pub fn open(machine: M, dir: PathBuf, log: &LogReader) -> Result<Self, Error> {
        std::fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
        let membership = match std::fs::read(dir.join("membership.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: dir.join("membership.json"),
                why: e.to_string(),
            })?,
            Err(_) => StoredMembership::default(),
        };
        let snapshot = match std::fs::read(dir.join("snapshot.json")) {
            Ok(bytes) => {
                let saved: SavedSnapshot =
                    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                        path: dir.join("snapshot.json"),
                        why: e.to_string(),
                    })?;
                let data = std::fs::read(dir.join("snapshot.bin"))
                    .map_err(Error::io("reading", dir.join("snapshot.bin")))?;
                Some((saved.meta, Arc::new(data)))
            }
            Err(_) => None,
        };
        // Where the machine's durable state ends, as a log id: from the log,
        // or the snapshot it was restored from.
        let last_applied = machine.applied().and_then(|index| {
            log.id_at(index).or_else(|| {
                snapshot
                    .as_ref()
                    .and_then(|(meta, _)| meta.last_log_id.filter(|id| id.index == index))
            })
        });
        let inner = Inner {
            machine,
            dir,
            last_applied,
            membership,
            snapshot,
            snapshots_built: 0,
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Runs `f` on the machine (for reads that need no consensus).
    pub fn with<T>(&self, f: impl FnOnce(&mut M) -> T) -> T {
        f(&mut self.inner.lock().machine)
    }

    /// A handle to the same machine.
    pub fn handle(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Machine> RaftStateMachine<TypeConfig> for MachineStore<M> {
    type SnapshotBuilder = Builder<M>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<Id>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let inner = self.inner.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<u8>>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock();
        let mut answers = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            inner.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => answers.push(Vec::new()),
                EntryPayload::Normal(command) => {
                    if inner.machine.applied().is_some_and(|done| index <= done) {
                        answers.push(Vec::new());
                        continue;
                    }
                    answers.push(inner.machine.apply(index, &command).map_err(sm_err)?);
                }
                EntryPayload::Membership(membership) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), membership);
                    write_json(&inner.dir, "membership.json", &inner.membership).map_err(sm_err)?;
                    answers.push(Vec::new());
                }
            }
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Builder {
            inner: self.inner.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let mut inner = self.inner.lock();
        let index = meta.last_log_id.map_or(0, |id| id.index);
        inner.machine.restore(index, &data).map_err(sm_err)?;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        write_json(&inner.dir, "membership.json", &inner.membership).map_err(sm_err)?;
        save_snapshot(&inner.dir, meta, &data).map_err(sm_err)?;
        inner.snapshot = Some((meta.clone(), Arc::new(data)));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let inner = self.inner.lock();
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.as_ref().clone())),
        }))
    }
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for Builder<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let mut inner = self.inner.lock();
        let data = inner.machine.snapshot().map_err(sm_err)?;
        inner.snapshots_built += 1;
        let id = inner.last_applied;
        let meta = SnapshotMeta {
            last_log_id: id,
            last_membership: inner.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                id.map_or(0, |i| i.leader_id.term),
                id.map_or(0, |i| i.index),
                inner.snapshots_built
            ),
        };
        save_snapshot(&inner.dir, &meta, &data).map_err(sm_err)?;
        let data = Arc::new(data);
        inner.snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.as_ref().clone())),
        })
    }
}

/// Writes the snapshot's data, then its meta (the meta names a complete
/// data file once it exists).
fn save_snapshot(
    dir: &std::path::Path,
    meta: &SnapshotMeta<u64, BasicNode>,
    data: &[u8],
) -> Result<(), Error> {
    write_file(dir, "snapshot.bin", data)?;
    write_json(dir, "snapshot.json", &SavedSnapshot { meta: meta.clone() })
}
