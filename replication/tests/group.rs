//! Three replicas of a group, each on a runtime of its own with its
//! replication service on a real loopback port and its log in a real
//! directory. Crashing a replica drops its runtime: every task it ran
//! (Raft, the server, its connections) ends at once, with no shutdown
//! handshake, and its files are what it had written.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tern_replication::{Error, Machine, Replica, ReplicaConfig, Role};
use tokio::runtime::Runtime;

/// A machine that keeps the commands it applied, one line each
/// ("index command"), in a file.
struct Lines {
    path: PathBuf,
    lines: Vec<(u64, String)>,
    restores: u64,
}

impl Lines {
    fn open(path: PathBuf) -> Self {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines = text
            .lines()
            .map(|l| {
                let (i, c) = l.split_once(' ').unwrap();
                (i.parse().unwrap(), c.to_string())
            })
            .collect();
        Self {
            path,
            lines,
            restores: 0,
        }
    }
}

impl Machine for Lines {
    fn apply(&mut self, index: u64, command: &[u8]) -> Result<Vec<u8>, String> {
        let command = String::from_utf8(command.to_vec()).map_err(|e| e.to_string())?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| e.to_string())?;
        writeln!(file, "{index} {command}").map_err(|e| e.to_string())?;
        self.lines.push((index, command.clone()));
        Ok(format!("applied {command}").into_bytes())
    }

    fn applied(&self) -> Option<u64> {
        self.lines.last().map(|(i, _)| *i)
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.path).map_err(|e| e.to_string())
    }

    fn restore(&mut self, _index: u64, snapshot: &[u8]) -> Result<(), String> {
        std::fs::write(&self.path, snapshot).map_err(|e| e.to_string())?;
        *self = Self {
            restores: self.restores + 1,
            ..Self::open(self.path.clone())
        };
        Ok(())
    }
}

struct Node {
    runtime: Runtime,
    replica: Replica<Lines>,
}

struct Group {
    dir: tempfile::TempDir,
    peers: BTreeMap<u64, String>,
    nodes: BTreeMap<u64, Node>,
    snapshot_every: u64,
}

impl Group {
    fn start(n: u64, snapshot_every: u64) -> Self {
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
            snapshot_every,
        };
        for id in 0..n {
            group.start_node(id);
        }
        group
    }

    fn node_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("replica-{id}"))
    }

    fn start_node(&mut self, id: u64) {
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
        config.snapshot_every = self.snapshot_every;
        config.kept_after_snapshot = 0;
        config.segment_bytes = 4096;
        config.sync = true;
        let address = self.peers[&id].clone();
        let replica = runtime.block_on(async {
            let replica = Replica::start(config, Lines::open(machine_file(&dir)))
                .await
                .unwrap();
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

    /// Ends a replica as a crash would: its runtime and every task on it
    /// dropped.
    fn crash(&mut self, id: u64) {
        let node = self.nodes.remove(&id).unwrap();
        let Node { runtime, replica } = node;
        runtime.shutdown_background();
        drop(replica);
    }

    /// The leader every running replica agrees on, waiting up to 10 s.
    fn leader(&self) -> u64 {
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
            if let [leader] = leaders[..] {
                let all_know = self
                    .nodes
                    .values()
                    .all(|n| n.replica.status().leader == Some(leader));
                if all_know {
                    return leader;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no single leader within 10 s: {:?}",
                self.statuses()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn statuses(&self) -> Vec<tern_replication::GroupStatus> {
        self.nodes.values().map(|n| n.replica.status()).collect()
    }

    fn write(&self, id: u64, command: &str) -> Result<(u64, Vec<u8>), Error> {
        let node = &self.nodes[&id];
        node.runtime
            .block_on(node.replica.write(command.as_bytes().to_vec()))
    }

    /// Waits until every running replica applied `want` commands, and
    /// returns their lines (the same on each, or the test fails).
    fn converged(&self, want: usize) -> Vec<(u64, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<Vec<(u64, String)>> = self
                .nodes
                .values()
                .map(|n| n.replica.read(|m| m.lines.clone()))
                .collect();
            // Replicas apply at their own pace; each one's lines must be a
            // prefix of the longest's, and all equal in the end.
            let longest = lines.iter().max_by_key(|l| l.len()).unwrap();
            for l in &lines {
                assert_eq!(
                    l[..],
                    longest[..l.len()],
                    "replicas applied different commands"
                );
            }
            if lines
                .iter()
                .all(|l| l.len() >= want && l.len() == longest.len())
            {
                return lines[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "not every replica applied {want} commands: {:?}",
                lines.iter().map(Vec::len).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn machine_file(dir: &Path) -> PathBuf {
    dir.join("machine.txt")
}

fn commands(lines: &[(u64, String)]) -> Vec<String> {
    lines.iter().map(|(_, c)| c.clone()).collect()
}

#[test]
fn three_replicas_apply_the_same_commands_in_the_same_order() {
    let group = Group::start(3, 100_000);
    let leader = group.leader();
    let mut last = 0;
    for i in 0..50 {
        let (index, answer) = group.write(leader, &format!("c{i}")).unwrap();
        assert!(index > last, "indexes go up: {index} after {last}");
        last = index;
        assert_eq!(answer, format!("applied c{i}").into_bytes());
    }
    let lines = group.converged(50);
    assert_eq!(
        commands(&lines),
        (0..50).map(|i| format!("c{i}")).collect::<Vec<_>>()
    );

    // A follower takes no writes and names the leader.
    let follower = *group.nodes.keys().find(|id| **id != leader).unwrap();
    match group.write(follower, "nope") {
        Err(Error::NotLeader {
            leader: Some((id, address)),
        }) => {
            assert_eq!(id, leader);
            assert_eq!(address, group.peers[&leader]);
        }
        other => panic!("a follower's write: {other:?}"),
    }
    let status = group.nodes[&leader].replica.status();
    assert_eq!(
        status.matched.len(),
        3,
        "the leader tracks every replica: {status:?}"
    );
}

#[test]
fn a_new_leader_holds_every_answered_write_and_the_old_one_follows_it() {
    let mut group = Group::start(3, 100_000);
    let first = group.leader();
    for i in 0..20 {
        group.write(first, &format!("a{i}")).unwrap();
    }
    let term = group.nodes[&first].replica.status().term;
    let crashed_at = Instant::now();
    group.crash(first);
    let second = group.leader();
    let took = crashed_at.elapsed();
    assert_ne!(second, first);
    assert!(group.nodes[&second].replica.status().term > term);
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
    for i in 0..20 {
        group.write(second, &format!("b{i}")).unwrap();
    }
    // The old leader comes back from its files and follows.
    group.start_node(first);
    let lines = group.converged(40);
    let want: Vec<String> = (0..20)
        .map(|i| format!("a{i}"))
        .chain((0..20).map(|i| format!("b{i}")))
        .collect();
    assert_eq!(commands(&lines), want);
    assert_eq!(
        group.leader(),
        second,
        "a returning replica does not take over"
    );
    eprintln!("failover: {took:?}");
}

#[test]
fn a_leader_without_a_majority_answers_no_write() {
    let mut group = Group::start(3, 100_000);
    let leader = group.leader();
    group.write(leader, "before").unwrap();
    let followers: Vec<u64> = group
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != leader)
        .collect();
    for id in &followers {
        group.crash(*id);
    }
    let node = &group.nodes[&leader];
    let pending = node.runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(2),
            node.replica.write(b"alone".to_vec()),
        )
        .await
    });
    assert!(
        pending.is_err(),
        "a write was answered without a majority: {pending:?}"
    );
    assert_eq!(
        node.replica.read(|m| m.lines.len()),
        1,
        "nothing uncommitted is applied"
    );
    // With one follower back there is a majority again, and the write that
    // waited is committed with the next.
    group.start_node(followers[0]);
    let leader = group.leader();
    group.write(leader, "after").unwrap();
    // The leader's log is newer than the returning follower's, so it stays
    // leader (or wins again) and commits the entry that waited.
    let lines = group.converged(3);
    assert_eq!(commands(&lines), ["before", "alone", "after"]);
}

#[test]
fn a_replica_behind_the_purged_log_catches_up_from_a_snapshot() {
    let mut group = Group::start(3, 20);
    let leader = group.leader();
    let behind = *group.nodes.keys().find(|id| **id != leader).unwrap();
    group.crash(behind);
    for i in 0..200 {
        group.write(leader, &format!("s{i}")).unwrap();
    }
    // Let the snapshot and purge happen.
    let deadline = Instant::now() + Duration::from_secs(10);
    while group.nodes[&leader]
        .replica
        .status()
        .applied_index
        .unwrap_or(0)
        < 200
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    group.start_node(behind);
    let lines = group.converged(200);
    assert_eq!(
        commands(&lines),
        (0..200).map(|i| format!("s{i}")).collect::<Vec<_>>()
    );
    let restores = group.nodes[&behind].replica.read(|m| m.restores);
    // At least one: the leader may take a newer snapshot (and purge the
    // log behind it) while the first is being installed.
    assert!(
        restores >= 1,
        "the replica that was away restored no snapshot"
    );
}

#[test]
fn a_diverged_tail_is_cut_off_when_the_old_leader_returns() {
    let mut group = Group::start(3, 100_000);
    let old = group.leader();
    group.write(old, "kept").unwrap();
    let others: Vec<u64> = group
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != old)
        .collect();
    for id in &others {
        group.crash(*id);
    }
    // Written to the old leader's log only: never answered.
    let node = &group.nodes[&old];
    let lost = node.runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(500),
            node.replica.write(b"never-answered".to_vec()),
        )
        .await
    });
    assert!(lost.is_err());
    let tail = node.replica.status().last_index;
    group.crash(old);
    for id in &others {
        group.start_node(*id);
    }
    let new = group.leader();
    assert_ne!(new, old);
    for i in 0..3 {
        group.write(new, &format!("new{i}")).unwrap();
    }
    group.start_node(old);
    let lines = group.converged(4);
    assert_eq!(commands(&lines), ["kept", "new0", "new1", "new2"]);
    // The old leader's entry at that index was replaced by the new leader's.
    let status = group.nodes[&old].replica.status();
    assert!(status.last_index >= tail, "{status:?} vs {tail:?}");
}
