//! Tern's replicated log: one Raft group per broker group, built on
//! openraft. This crate does the consensus plumbing and nothing of the
//! broker: its log on disk (`log`), its messages over gRPC on the
//! replication port (`network`), and applying committed commands to a
//! [`Machine`] (`machine`), which the broker provides. A [`Replica`] is one
//! member of a group.
//!
//! Election, terms, log matching and truncation of a diverged tail are
//! openraft's; a write is answered once its entry is on a majority's log
//! (flushed there under `sync`) and applied on this replica, so a new leader
//! (elected only by a majority, each voting for a log at least as new as its
//! own) holds every answered write.

mod entry;
mod error;
mod log;
mod machine;
mod network;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use tern_protocol::replication::replication_server::ReplicationServer;

pub use crate::entry::{Entry, Id, TypeConfig};
pub use crate::error::Error;
pub use crate::log::DEFAULT_SEGMENT_BYTES;
pub use crate::machine::{Machine, MachineStore};
pub use crate::network::Service;

/// How a replica of a group runs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This replica's id in the group.
    pub id: u64,
    /// Every replica of the group, this one included: id to the `host:port`
    /// of its replication service.
    pub peers: BTreeMap<u64, String>,
    /// Where the log, the vote and the snapshot live.
    pub dir: PathBuf,
    /// Whether an entry counts as held by a replica only once it is
    /// fsynced there (`true`), or once it is written to its page cache.
    pub sync: bool,
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range
    /// stands for election.
    pub election_timeout: (Duration, Duration),
    /// A snapshot is taken after this many entries since the last one, and
    /// the log before it purged.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (a replica that lags by
    /// fewer catches up from the log, not a snapshot).
    pub kept_after_snapshot: u64,
    /// Size past which the log begins a new segment file.
    pub segment_bytes: u64,
    /// How peers are dialled: TLS checked as this says, or plaintext when
    /// `None` (the default).
    pub tls: Option<tern_tls::ClientTls>,
}

impl ReplicaConfig {
    /// A configuration with the defaults: heartbeats every 100 ms, an
    /// election after 0.5-1 s of silence past the leader's lease (openraft
    /// makes the lease as long as the longest timeout, so a lost leader
    /// is replaced in 1.5-2 s), page-cache durability, a snapshot
    /// every 100,000 entries keeping the last 1,000 entries behind it, 64 MiB
    /// segments.
    pub fn new(id: u64, peers: BTreeMap<u64, String>, dir: PathBuf) -> Self {
        Self {
            id,
            peers,
            dir,
            sync: false,
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(1000)),
            snapshot_every: 100_000,
            kept_after_snapshot: 1000,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            tls: None,
        }
    }

    fn raft_config(&self) -> Result<openraft::Config, Error> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        openraft::Config {
            cluster_name: "tern".into(),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_timeout.0),
            election_timeout_max: ms(self.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Config(e.to_string()))
    }
}

/// A replica's role in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Stopped,
}

/// What a replica knows of its group, for status and metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupStatus {
    pub id: u64,
    pub role: Role,
    pub term: u64,
    pub leader: Option<u64>,
    /// Index of the last entry in this replica's log.
    pub last_index: Option<u64>,
    /// Index of the last entry applied to the machine here.
    pub applied_index: Option<u64>,
    /// On the leader: each replica's highest index known to match the
    /// leader's log.
    pub matched: BTreeMap<u64, Option<u64>>,
    /// On the leader: time since a majority last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
}

/// One member of a replicated group.
pub struct Replica<M: Machine> {
    id: u64,
    peers: BTreeMap<u64, String>,
    raft: Raft<TypeConfig>,
    machine: MachineStore<M>,
}

impl<M: Machine> std::fmt::Debug for Replica<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl<M: Machine> Replica<M> {
    /// Opens the replica's log in `config.dir`, starts its Raft over
    /// `machine`, and, the first time the group starts, sets its membership
    /// to `config.peers` (every replica does so with the same peers, which
    /// is safe: the first leader's entry wins and the same set results).
    pub async fn start(config: ReplicaConfig, machine: M) -> Result<Self, Error> {
        if !config.peers.contains_key(&config.id) {
            return Err(Error::Config(format!(
                "replica {} is not among the peers {:?}",
                config.id, config.peers
            )));
        }
        let raft_config = Arc::new(config.raft_config()?);
        let dir = config.dir.join("raft");
        let log = log::LogStore::open(&dir, config.sync, config.segment_bytes)?;
        let machine = MachineStore::open(machine, dir.join("machine"), &log.reader())?;
        let network = network::Connector::new(config.peers.clone(), config.tls.clone());
        let raft = Raft::new(config.id, raft_config, network, log, machine.handle())
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        if !initialized {
            let members: BTreeMap<u64, BasicNode> = config
                .peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => {}
                // Another replica's entries got here first.
                Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(Error::Raft(e.to_string())),
            }
        }
        Ok(Self {
            id: config.id,
            peers: config.peers,
            raft,
            machine,
        })
    }

    /// The gRPC service to serve on this replica's replication port.
    pub fn service(&self) -> ReplicationServer<Service> {
        ReplicationServer::new(Service::new(self.raft.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// Submits `command`; answers with its log index and the machine's
    /// answer once it is committed (on a majority) and applied here. Only
    /// the leader takes writes: elsewhere [`Error::NotLeader`] names the
    /// leader if one is known.
    pub async fn write(&self, command: Vec<u8>) -> Result<(u64, Vec<u8>), Error> {
        match self.raft.client_write(command).await {
            Ok(done) => Ok((done.log_id.index, done.data)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(Error::NotLeader {
                    leader: f
                        .leader_id
                        .map(|id| (id, self.peers.get(&id).cloned().unwrap_or_default())),
                })
            }
            Err(e) => Err(Error::Raft(e.to_string())),
        }
    }

    /// Runs `f` on the local machine (reads here are of this replica's
    /// applied state; on a follower it may lag).
    pub fn read<T>(&self, f: impl FnOnce(&mut M) -> T) -> T {
        self.machine.with(f)
    }

    /// What this replica knows of its group now.
    pub fn status(&self) -> GroupStatus {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Stopped,
        };
        let matched = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, at)| (*id, at.map(|l| l.index)))
                    .collect()
            })
            .unwrap_or_default();
        GroupStatus {
            id: self.id,
            role,
            term: m.current_term,
            leader: m.current_leader,
            last_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            matched,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// The group's replicas by id.
    pub fn peers(&self) -> &BTreeMap<u64, String> {
        &self.peers
    }

    /// Stops the replica's Raft (its log and machine are closed when the
    /// last handle goes).
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not stop cleanly");
        }
    }
}
