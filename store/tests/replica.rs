//! What a replicated broker group needs of the store: batches encoded on
//! one replica and appended on others with the leader's store time write
//! the same bytes at the same positions (across segment rolls), and a
//! store reopened with `recover_until` keeps nothing past it, so the same
//! batches appended again make it identical to a store that never lost
//! them.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;

use common::{body_for, msg, small_config};
use tern_harness::commit_log_files;
use tern_store::{Encoded, FlushPolicy, Store, StoreConfig};

fn config(dir: &Path) -> StoreConfig {
    let mut c = small_config(dir, FlushPolicy::Sync);
    c.segment_size = 16 * 1024;
    c
}

/// Batch `n`: a few messages of varying size over three queues.
fn batch(n: u64) -> Vec<tern_model::Message> {
    (0..=(n % 3))
        .map(|i| {
            msg(
                "orders",
                (n + i) as u32 % 3,
                &format!("id-{n}-{i}"),
                &body_for(n * 10 + i, 100 + 211 * (n % 17) as usize),
            )
        })
        .collect()
}

/// The leader's store time for batch `n`: going up, except batch 5, whose
/// clock went back (the store raises it to the last one).
fn time(n: u64) -> i64 {
    if n == 5 {
        1_800_000_000_000
    } else {
        1_800_000_000_000 + n as i64 * 1000
    }
}

fn append(store: &Store, encoded: Encoded, at: i64) -> Vec<tern_store::Appended> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.append_encoded(encoded, at, move |r| tx.send(r).unwrap());
    rx.recv().unwrap().unwrap()
}

#[test]
fn replicas_appending_the_same_batches_write_the_same_bytes() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(config(a_dir.path())).unwrap();
    let b = Store::open(config(b_dir.path())).unwrap();
    for n in 0..40 {
        // Encoded once, on the leader; its bytes cross to the follower.
        let on_leader = a.encode(&batch(n)).unwrap();
        let on_follower = Encoded::from_bytes(on_leader.as_bytes().to_vec()).unwrap();
        assert_eq!(on_follower.len(), batch(n).len());
        let got_a = append(&a, on_leader, time(n));
        let got_b = append(&b, on_follower, time(n));
        assert_eq!(got_a, got_b, "batch {n} went to different places");
        let expected = if n == 5 { time(4) } else { time(n) };
        assert!(
            got_a.iter().all(|r| r.store_timestamp_ms == expected),
            "batch {n}: {got_a:?}"
        );
    }
    assert_eq!(a.max_offset(), b.max_offset());
    a.close().unwrap();
    b.close().unwrap();
    let (fa, fb) = (
        commit_log_files(a_dir.path()),
        commit_log_files(b_dir.path()),
    );
    assert!(
        fa.len() > 3,
        "the batches span several segments: {:?}",
        fa.keys()
    );
    assert_eq!(fa, fb, "the commit logs differ");
}

#[test]
fn a_store_cut_at_its_applied_mark_catches_up_to_the_same_bytes() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(config(a_dir.path())).unwrap();
    let b = Store::open(config(b_dir.path())).unwrap();
    let mut mark = 0;
    for n in 0..30 {
        append(&a, a.encode(&batch(n)).unwrap(), time(n));
        append(&b, b.encode(&batch(n)).unwrap(), time(n));
        if n == 17 {
            mark = b.max_offset();
        }
    }
    assert!(b.wait_dispatched(b.max_offset(), std::time::Duration::from_secs(10)));
    let (_, queue_end) = b.queue_range("orders", 0);
    b.close().unwrap();

    // B reopens knowing it applied durably only up to batch 17.
    let mut cfg = config(b_dir.path());
    cfg.recover_until = Some(mark);
    let b = Store::open(cfg).unwrap();
    assert_eq!(b.max_offset(), mark);
    let (_, cut_end) = b.queue_range("orders", 0);
    assert!(
        cut_end < queue_end,
        "queue 0 lost the batches past the mark: {cut_end} vs {queue_end}"
    );
    for n in 18..30 {
        append(&b, b.encode(&batch(n)).unwrap(), time(n));
    }
    assert!(b.wait_dispatched(b.max_offset(), std::time::Duration::from_secs(10)));
    assert_eq!(b.queue_range("orders", 0).1, queue_end);
    let read = b.read_queue("orders", 0, 0, 1000, usize::MAX).unwrap();
    assert_eq!(read.messages.len() as u64, queue_end);
    a.close().unwrap();
    b.close().unwrap();
    // The commit logs match (the cut bytes are kept aside, in quarantine).
    assert_eq!(
        commit_log_files(a_dir.path()),
        commit_log_files(b_dir.path())
    );
    assert!(b_dir.path().join("commitlog/quarantine").is_dir());
}

#[test]
fn bytes_that_are_not_a_batch_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let good = store.encode(&batch(2)).unwrap().as_bytes().to_vec();
    assert!(Encoded::from_bytes(Vec::new()).unwrap().is_empty());
    assert!(Encoded::from_bytes(good[..good.len() - 1].to_vec()).is_err());
    assert!(Encoded::from_bytes(vec![0xff; 80]).is_err());
    let mut bad_topic = good.clone();
    bad_topic[56] = b'/';
    assert!(Encoded::from_bytes(bad_topic).is_err());
    let mut bad_version = good;
    bad_version[8] = 9;
    assert!(Encoded::from_bytes(bad_version).is_err());
}

#[test]
fn a_replica_store_takes_appends_from_its_log_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.append(&batch(0)).unwrap();
    store.close().unwrap();
    let mut cfg = config(dir.path());
    cfg.replica_only = true;
    let store = Store::open(cfg).unwrap();
    let end = store.max_offset();
    assert!(matches!(
        store.append(&batch(1)),
        Err(tern_store::StoreError::ReplicaOnly)
    ));
    let topic = tern_model::TopicName::new("orders").unwrap();
    let copy = [tern_store::CopyOf {
        position: 0,
        topic: &topic,
        queue_id: 0,
    }];
    assert!(matches!(
        store.append_copies(&copy),
        Err(tern_store::StoreError::ReplicaOnly)
    ));
    assert_eq!(store.max_offset(), end, "nothing was written");
    let appended = append(&store, store.encode(&batch(1)).unwrap(), time(1));
    assert_eq!(appended.len(), batch(1).len());
}
