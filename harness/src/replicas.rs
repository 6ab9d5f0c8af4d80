//! A replicated group in one test process: each replica on a tokio runtime
//! of its own with its replication service on a real loopback port and its
//! files in a real directory. Crashing a replica shuts its runtime down:
//! every task it ran (Raft, the server, its connections) is dropped at its
//! next await, with no shutdown handshake, and its files are what it had
//! written (what it held in memory only is lost; its process and page
//! cache stay, so this is not `kill -9`: process tests do that).
#![allow(clippy::unwrap_used)] // test support: a panic is the failure report

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tern_replication::{Error, GroupStatus, Machine, Replica, ReplicaConfig, Role};
use tokio::runtime::Runtime;

/// One running replica.
pub struct Node<M: Machine> {
    pub runtime: Runtime,
    pub replica: Replica<M>,
}

impl<M: Machine> std::fmt::Debug for Node<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// Makes replica `id`'s machine from its directory (at every start).
pub type MakeMachine<M> = Box<dyn Fn(u64, &Path) -> M>;

/// A group of replicas, some running.
pub struct Group<M: Machine> {
    dir: tempfile::TempDir,
    pub peers: BTreeMap<u64, String>,
    pub nodes: BTreeMap<u64, Node<M>>,
    make: MakeMachine<M>,
    tune: Box<dyn Fn(&mut ReplicaConfig)>,
}

impl<M: Machine> std::fmt::Debug for Group<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("peers", &self.peers)
            .field("running", &self.nodes.keys())
            .finish_non_exhaustive()
    }
}

impl<M: Machine> Group<M> {
    /// Starts `n` replicas with fast elections (50 ms heartbeats, 300-600 ms
    /// timeouts) and fsynced logs, `tune` changing their configuration.
    pub fn start(
        n: u64,
        make: MakeMachine<M>,
        tune: impl Fn(&mut ReplicaConfig) + 'static,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let peers: BTreeMap<u64, String> = (0..n)
            .map(|id| {
                let port = TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                (id, format!("127.0.0.1:{port}"))
            })
            .collect();
        let mut group = Self {
            dir,
            peers,
            nodes: BTreeMap::new(),
            make,
            tune: Box::new(tune),
        };
        for id in 0..n {
            group.start_node(id);
        }
        group
    }

    /// Replica `id`'s directory.
    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("replica-{id}"))
    }

    /// Starts (or restarts, from its files) replica `id`.
    pub fn start_node(&mut self, id: u64) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = self.node_dir(id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = ReplicaConfig::new(id, self.peers.clone(), dir.clone());
        config.heartbeat = Duration::from_millis(50);
        config.election_timeout = (Duration::from_millis(300), Duration::from_millis(600));
        config.segment_bytes = 4096;
        config.sync = true;
        (self.tune)(&mut config);
        let address = self.peers[&id].clone();
        let machine = (self.make)(id, &dir);
        let replica = runtime.block_on(async {
            let replica = Replica::start(config, machine).await.unwrap();
            let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
            let service = replica.service();
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );
            replica
        });
        self.nodes.insert(id, Node { runtime, replica });
    }

    /// Ends a replica as a crash would: every task on its runtime dropped
    /// where it stands (no shutdown handshake with its peers), waiting
    /// until they are gone so its files can be opened again.
    pub fn crash(&mut self, id: u64) {
        let Node { runtime, replica } = self.nodes.remove(&id).unwrap();
        runtime.shutdown_timeout(Duration::from_secs(10));
        drop(replica);
    }

    /// The leader every running replica agrees on, waiting up to 10 s.
    pub fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leaders: Vec<u64> = self
                .nodes
                .values()
                .filter_map(|n| {
                    let s = n.replica.status();
                    (s.role == Role::Leader).then_some(s.id)
                })
                .collect();
            if let [leader] = leaders[..]
                && self
                    .nodes
                    .values()
                    .all(|n| n.replica.status().leader == Some(leader))
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no single leader within 10 s: {:?}",
                self.statuses()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every running replica's status.
    pub fn statuses(&self) -> Vec<GroupStatus> {
        self.nodes.values().map(|n| n.replica.status()).collect()
    }

    /// Writes `command` through replica `id`.
    pub fn write(&self, id: u64, command: Vec<u8>) -> Result<(u64, Vec<u8>), Error> {
        let node = &self.nodes[&id];
        node.runtime.block_on(node.replica.write(command))
    }

    /// Waits until `done` holds on every running replica's machine, up to
    /// 10 s; `what` names it in the failure.
    pub fn wait_all(&self, what: &str, done: impl Fn(&mut M) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.nodes.values().all(|n| n.replica.read(&done)) {
            assert!(
                Instant::now() < deadline,
                "not every replica {what} within 10 s: {:?}",
                self.statuses()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
