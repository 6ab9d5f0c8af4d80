//! Three replicas of a group (tern-harness's `replicas::Group`: each on a
//! runtime of its own, real loopback ports and directories, crashes that
//! drop a replica's runtime with every task on it) over a machine that
//! keeps the commands it applied in a file.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tern_harness::replicas::Group;
use tern_replication::{Error, Machine};

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

/// A group of `Lines` replicas, snapshotting every `snapshot_every`
/// entries and keeping no log behind a snapshot.
fn start(snapshot_every: u64) -> Group<Lines> {
    Group::start(
        3,
        Box::new(|_, dir| Lines::open(machine_file(dir))),
        move |config| {
            config.snapshot_every = snapshot_every;
            config.kept_after_snapshot = 0;
        },
    )
}

fn write(group: &Group<Lines>, id: u64, command: &str) -> Result<(u64, Vec<u8>), Error> {
    group.write(id, command.as_bytes().to_vec())
}

/// Waits until every running replica applied `want` commands, and returns
/// their lines (the same on each, or the test fails).
fn converged(group: &Group<Lines>, want: usize) -> Vec<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Vec<(u64, String)>> = group
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

fn machine_file(dir: &Path) -> PathBuf {
    dir.join("machine.txt")
}

fn commands(lines: &[(u64, String)]) -> Vec<String> {
    lines.iter().map(|(_, c)| c.clone()).collect()
}

#[test]
fn three_replicas_apply_the_same_commands_in_the_same_order() {
    let group = start(100_000);
    let leader = group.leader();
    let mut last = 0;
    for i in 0..50 {
        let (index, answer) = write(&group, leader, &format!("c{i}")).unwrap();
        assert!(index > last, "indexes go up: {index} after {last}");
        last = index;
        assert_eq!(answer, format!("applied c{i}").into_bytes());
    }
    let lines = converged(&group, 50);
    assert_eq!(
        commands(&lines),
        (0..50).map(|i| format!("c{i}")).collect::<Vec<_>>()
    );

    // A follower takes no writes and names the leader.
    let follower = *group.nodes.keys().find(|id| **id != leader).unwrap();
    match write(&group, follower, "nope") {
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
    let mut group = start(100_000);
    let first = group.leader();
    for i in 0..20 {
        write(&group, first, &format!("a{i}")).unwrap();
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
        write(&group, second, &format!("b{i}")).unwrap();
    }
    // The old leader comes back from its files and follows.
    group.start_node(first);
    let lines = converged(&group, 40);
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
    let mut group = start(100_000);
    let leader = group.leader();
    write(&group, leader, "before").unwrap();
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
    write(&group, leader, "after").unwrap();
    // The leader's log is newer than the returning follower's, so it stays
    // leader (or wins again) and commits the entry that waited.
    let lines = converged(&group, 3);
    assert_eq!(commands(&lines), ["before", "alone", "after"]);
}

#[test]
fn a_replica_behind_the_purged_log_catches_up_from_a_snapshot() {
    let mut group = start(20);
    let leader = group.leader();
    let behind = *group.nodes.keys().find(|id| **id != leader).unwrap();
    group.crash(behind);
    for i in 0..200 {
        write(&group, leader, &format!("s{i}")).unwrap();
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
    let lines = converged(&group, 200);
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
    let mut group = start(100_000);
    let old = group.leader();
    write(&group, old, "kept").unwrap();
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
        write(&group, new, &format!("new{i}")).unwrap();
    }
    group.start_node(old);
    let lines = converged(&group, 4);
    assert_eq!(commands(&lines), ["kept", "new0", "new1", "new2"]);
    // The old leader's entry at that index was replaced by the new leader's.
    let status = group.nodes[&old].replica.status();
    assert!(status.last_index >= tail, "{status:?} vs {tail:?}");
}
