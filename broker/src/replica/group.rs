//! Running a replica of a group inside a broker: its Raft over the
//! store's machine, its replication port, the task that persists applied
//! marks, and the write path's entry (`Replicated::append`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tern_replication::{GroupStatus, Replica, ReplicaConfig};
use tern_store::{Appended, Encoded, Store};
use tokio::task::JoinHandle;

use super::machine::{Command, GroupMachine, Mark, MarkKeeper, decode_appended};
use crate::error::{BrokerError, Result};
use crate::meta::{MetaReplicator, Registry};

/// How often the applied mark is written (when the store fsynced more).
const MARK_INTERVAL: Duration = Duration::from_millis(100);

/// A replicated group's settings (`replica_id`, `replicas`,
/// `replication_listen`).
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// This replica's id in the group.
    pub id: u64,
    /// Every replica of the group, this one included: id to the
    /// `host:port` of its replication port.
    pub replicas: BTreeMap<u64, String>,
    /// Where this replica's replication port listens. Default: its own
    /// address in `replicas`. It serves TLS as the broker's `[tls]` says
    /// (the same mode and certificate as the client port).
    pub listen: Option<String>,
    /// How the other replicas are dialled: TLS checked as this says, or
    /// plaintext when `None` (the default).
    pub tls: Option<tern_tls::ClientTlsConfig>,
}

impl ReplicationConfig {
    /// Checks the settings: this replica among the replicas, at least one.
    pub fn validate(&self) -> Result<()> {
        if !self.replicas.contains_key(&self.id) {
            return Err(BrokerError::Invalid(format!(
                "replica {} is not among the replicas {:?}",
                self.id, self.replicas
            )));
        }
        Ok(())
    }

    fn listen(&self) -> String {
        self.listen
            .clone()
            .unwrap_or_else(|| self.replicas.get(&self.id).cloned().unwrap_or_default())
    }
}

/// This broker's replica of its group, running.
#[derive(Debug)]
pub struct Replicated {
    replica: Arc<Replica<GroupMachine>>,
    keeper: MarkKeeper,
    server: JoinHandle<()>,
    marks: JoinHandle<()>,
    /// Proposes the registry's changes.
    meta: JoinHandle<()>,
}

/// Writes a command (its bytes) through the group; the machine's answer.
async fn write(replica: &Replica<GroupMachine>, command: Vec<u8>) -> Result<Vec<u8>> {
    match replica.write(command).await {
        Ok((_, answer)) => Ok(answer),
        Err(tern_replication::Error::NotLeader { leader }) => Err(BrokerError::NotLeader(leader.map_or_else(
            || "this replica is not its group's leader, and no leader is known yet".to_owned(),
            |(id, address)| {
                format!("this replica is not its group's leader; replica {id} (replication address {address}) is")
            },
        ))),
        Err(e) => Err(BrokerError::Failed(format!("replication: {e}"))),
    }
}

/// A registry change on its way, with where its outcome goes.
type MetaChange = (Vec<u8>, std::sync::mpsc::SyncSender<Result<()>>);

/// The registry's changes through the group's log: the registry's
/// (blocking) callers hand each to the proposing task and wait.
#[derive(Debug)]
struct MetaOverRaft {
    tx: tokio::sync::mpsc::UnboundedSender<MetaChange>,
}

impl MetaReplicator for MetaOverRaft {
    fn replicate(&self, change: Vec<u8>) -> Result<()> {
        let (answer, outcome) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send((change, answer))
            .map_err(|_| BrokerError::Failed("the replica has stopped".into()))?;
        outcome
            .recv()
            .unwrap_or_else(|_| Err(BrokerError::Failed("the replica has stopped".into())))
    }
}

impl Replicated {
    /// Starts the replica over `store` (opened with `open_store`, which
    /// gave `mark`): its Raft (entries fsynced on each replica before they
    /// count when `sync`), its replication port, and the mark task.
    pub async fn start(
        cfg: &ReplicationConfig,
        port_tls: Arc<tern_tls::ServerTls>,
        store: Arc<Store>,
        registry: Arc<Registry>,
        data_dir: &Path,
        mark: Option<Mark>,
        sync: bool,
    ) -> Result<Self> {
        cfg.validate()?;
        let machine = GroupMachine::new(store, data_dir, mark).with_registry(Arc::clone(&registry));
        let keeper = machine.mark_keeper();
        let mut rc = ReplicaConfig::new(cfg.id, cfg.replicas.clone(), data_dir.join("replica"));
        rc.sync = sync;
        rc.tls = cfg.tls.clone().map(tern_tls::ClientTls::new).transpose()?;
        // The broker's machine takes no snapshots yet: the log is kept.
        rc.snapshot_every = u64::MAX;
        let replica = Arc::new(
            Replica::start(rc, machine)
                .await
                .map_err(|e| BrokerError::Failed(format!("replication: {e}")))?,
        );
        let listen = cfg.listen();
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            BrokerError::Failed(format!("cannot listen for replication on {listen}: {e}"))
        })?;
        tracing::info!(address = %listen, replica = cfg.id, replicas = ?cfg.replicas, "replication port listening");
        let service = replica.service();
        let server = tokio::spawn(async move {
            let served = tern_protocol::server::builder()
                .add_service(service)
                .serve_with_incoming(port_tls.incoming(listener))
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the replication port failed");
            }
        });
        let task_keeper = keeper.clone();
        let marks = tokio::spawn(async move {
            loop {
                tokio::time::sleep(MARK_INTERVAL).await;
                let k = task_keeper.clone();
                match tokio::task::spawn_blocking(move || k.persist()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the applied mark"),
                    Err(_) => return,
                }
            }
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<MetaChange>();
        let proposer = Arc::clone(&replica);
        let meta = tokio::spawn(async move {
            while let Some((change, answer)) = rx.recv().await {
                let written = write(&proposer, Command::meta(&change)).await.map(|_| ());
                let _ = answer.send(written);
            }
        });
        registry.replicate_with(Arc::new(MetaOverRaft { tx }));
        Ok(Self {
            replica,
            keeper,
            server,
            marks,
            meta,
        })
    }

    /// Writes `encoded` through the group: answered once a majority of
    /// the replicas hold it in their logs (fsynced there under `sync`) and
    /// this replica's store has it. Only the leader takes writes.
    pub async fn append(&self, encoded: Encoded, store_time_ms: i64) -> Result<Vec<Appended>> {
        let answer = write(
            &self.replica,
            Command::append(store_time_ms, encoded.as_bytes()),
        )
        .await?;
        decode_appended(&answer).map_err(BrokerError::Failed)
    }

    /// What this replica knows of its group.
    pub fn status(&self) -> GroupStatus {
        self.replica.status()
    }

    /// The group's replicas: id to replication address.
    pub fn peers(&self) -> &BTreeMap<u64, String> {
        self.replica.peers()
    }

    /// Stops the replica: the mark task and the port, the last mark
    /// written after a flush, then its Raft.
    pub async fn stop(&self) {
        self.meta.abort();
        self.marks.abort();
        self.server.abort();
        let keeper = self.keeper.clone();
        let last = tokio::task::spawn_blocking(move || {
            keeper.flush_store()?;
            keeper.persist()
        })
        .await;
        if let Ok(Err(e)) = last {
            tracing::warn!(error = %e, "cannot write the last applied mark");
        }
        self.replica.shutdown().await;
    }
}
