//! Three replicas of a broker group, each with its own store, replicating
//! messages through the group's Raft log (tern-harness's in-process
//! `replicas::Group`: real ports, real files, crashes that drop a
//! replica's runtime). Every answered append is on the replica that leads
//! after a crash, the replicas' commit logs are byte-identical, and a
//! replica whose store was cut back to its applied mark catches up to the
//! same bytes from the log.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_broker::replica::{Command, GroupMachine, decode_appended, open_store};
use tern_harness::replicas::Group;
use tern_harness::{commit_log_files, small_store_config};
use tern_store::FlushPolicy;

fn message(queue_id: u32, id: &str) -> tern_model::Message {
    tern_model::Message {
        topic: tern_model::TopicName::new("orders").unwrap(),
        queue_id,
        message_id: id.to_owned(),
        tag: Some("t".into()),
        keys: vec![format!("key-{id}")],
        properties: BTreeMap::new(),
        body: format!("body of {id}").into_bytes(),
        born_timestamp_ms: 1_700_000_000_000,
        flags: 0,
    }
}

fn machine(dir: &Path) -> GroupMachine {
    let mut cfg = small_store_config(dir.join("store"), FlushPolicy::Async);
    cfg.segment_size = 16 * 1024;
    let (store, mark) = open_store(cfg, dir).unwrap();
    GroupMachine::new(Arc::new(store), dir, mark)
}

fn group() -> Group<GroupMachine> {
    Group::start(3, Box::new(|_, dir| machine(dir)), |_| {})
}

/// Sends batch `n` (two messages) through replica `id`; the answer says
/// where they went.
fn send(group: &Group<GroupMachine>, id: u64, n: u64) -> Vec<tern_store::Appended> {
    let batch: Vec<_> = (0..2)
        .map(|i| message(((n + i) % 4) as u32, &format!("m-{n}-{i}")))
        .collect();
    let encoded = group.nodes[&id]
        .replica
        .read(|m| m.store().encode(&batch))
        .unwrap();
    let command = Command::Append {
        store_time_ms: 1_800_000_000_000 + n as i64,
        batch: encoded.as_bytes().to_vec(),
    };
    let (_, answer) = group.write(id, command.encode()).unwrap();
    decode_appended(&answer).unwrap()
}

/// Waits until every running replica's log ends at the same place, then
/// checks their segment files are the same bytes.
fn same_logs(group: &Group<GroupMachine>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ends: Vec<u64> = group
            .nodes
            .values()
            .map(|n| n.replica.read(|m| m.store().max_offset()))
            .collect();
        if ends.iter().all(|e| *e == ends[0])
            && group
                .statuses()
                .iter()
                .all(|s| s.applied_index == group.statuses()[0].applied_index)
        {
            break;
        }
        assert!(Instant::now() < deadline, "logs end at {ends:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ids: Vec<u64> = group.nodes.keys().copied().collect();
    let first = commit_log_files(&group.node_dir(ids[0]).join("store"));
    for id in &ids[1..] {
        assert!(
            first == commit_log_files(&group.node_dir(*id).join("store")),
            "replica {id}'s commit log differs from replica {}'s",
            ids[0]
        );
    }
    group.nodes[&ids[0]]
        .replica
        .read(|m| m.store().max_offset())
}

/// The messages of queue `queue` on replica `id`, by message id.
fn queue_ids(group: &Group<GroupMachine>, id: u64, queue: u32) -> Vec<String> {
    group.nodes[&id].replica.read(|m| {
        let store = m.store();
        assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(10)));
        let read = store
            .read_queue("orders", queue, 0, 10_000, usize::MAX)
            .unwrap();
        read.messages
            .iter()
            .map(|s| s.message.message_id.clone())
            .collect()
    })
}

#[test]
fn answered_appends_survive_the_leader_and_every_log_is_the_same() {
    let mut group = group();
    let first = group.leader();
    let mut answered = Vec::new();
    for n in 0..60 {
        let where_ = send(&group, first, n);
        assert_eq!(where_.len(), 2);
        answered.push(n);
    }
    same_logs(&group);
    group.crash(first);
    let second = group.leader();
    for n in 60..120 {
        send(&group, second, n);
        answered.push(n);
    }
    // Every answered message is on the new leader, in its queue's order.
    let mut on_second: Vec<String> = (0..4).flat_map(|q| queue_ids(&group, second, q)).collect();
    on_second.sort();
    let mut want: Vec<String> = answered
        .iter()
        .flat_map(|n| (0..2).map(move |i| format!("m-{n}-{i}")))
        .collect();
    want.sort();
    assert_eq!(on_second, want);
    // The old leader returns and ends with the same bytes.
    group.start_node(first);
    same_logs(&group);
    assert_eq!(queue_ids(&group, first, 1), queue_ids(&group, second, 1));
}

#[test]
fn a_replica_cut_back_to_its_mark_applies_the_rest_again() {
    let mut group = group();
    let leader = group.leader();
    for n in 0..30 {
        send(&group, leader, n);
    }
    let follower = *group.nodes.keys().find(|id| **id != leader).unwrap();
    same_logs(&group);
    // The follower's mark is written once its store has fsynced.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mark = loop {
        let mark = group.nodes[&follower].replica.read(|m| {
            m.store().flush().unwrap();
            m.mark_keeper().persist().unwrap()
        });
        if let Some(mark) = mark {
            break mark;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    };
    for n in 30..60 {
        send(&group, leader, n);
    }
    same_logs(&group);
    group.crash(follower);
    // At open the follower's store keeps nothing past its mark, then takes
    // the rest from the group's log again.
    group.start_node(follower);
    let end = same_logs(&group);
    assert!(end > mark.end);
    let quarantine = group.node_dir(follower).join("store/commitlog/quarantine");
    assert!(quarantine.is_dir(), "what was past the mark was set aside");
}
