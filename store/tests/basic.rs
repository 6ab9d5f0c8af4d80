//! End-to-end behaviour of the store on real files.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{body_for, msg, small_config};
use tern_model::TopicName;
use tern_store::{CopyOf, FlushPolicy, Store, StoreError};

#[test]
fn append_read_and_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Async);
    let store = Store::open(cfg.clone()).unwrap();
    let mut positions = Vec::new();
    for i in 0..600u64 {
        let q = (i % 4) as u32;
        let r = store
            .append(&[msg("orders", q, &format!("id{i}"), &body_for(i, 300))])
            .unwrap();
        assert_eq!(r[0].queue_offset, i / 4);
        positions.push(r[0].position);
    }
    assert!(
        store.stats().segments > 2,
        "600 x ~400 B must roll 64 KiB segments"
    );
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    assert_eq!(store.queue_range("orders", 1), (0, 150));
    let r = store.read_queue("orders", 1, 10, 5, usize::MAX).unwrap();
    assert_eq!(r.messages.len(), 5);
    assert_eq!(r.next_offset, 15);
    for (k, m) in r.messages.iter().enumerate() {
        let i = (10 + k as u64) * 4 + 1;
        assert_eq!(m.message.body, body_for(i, 300));
        assert_eq!(m.message.message_id, format!("id{i}"));
        assert_eq!(m.position, positions[i as usize]);
    }
    store.close().unwrap();

    let store = Store::open(cfg).unwrap();
    let rec = store.stats().recovery;
    assert!(rec.had_checkpoint);
    assert_eq!(rec.log.truncated_bytes, 0);
    assert_eq!(
        rec.redispatched_records, 0,
        "a clean close leaves nothing to redo"
    );
    for q in 0..4 {
        assert_eq!(store.queue_range("orders", q), (0, 150));
    }
    let m = store.get("orders", 3, 149).unwrap();
    assert_eq!(m.message.body, body_for(599, 300));
    // Queue offsets continue after a reopen.
    let r = store.append(&[msg("orders", 3, "next", b"x")]).unwrap();
    assert_eq!(r[0].queue_offset, 150);
    store.close().unwrap();
}

#[test]
fn batches_are_atomic_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap();
    let batch: Vec<_> = (0..10)
        .map(|i| msg("t", 0, &format!("b{i}"), &body_for(i, 50)))
        .collect();
    let r = store.append(&batch).unwrap();
    assert_eq!(
        r.iter().map(|a| a.queue_offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    // One invalid message refuses the whole batch.
    let mut bad = batch.clone();
    bad[5].body.clear();
    assert!(matches!(
        store.append(&bad),
        Err(StoreError::InvalidMessage(_))
    ));
    let r2 = store.append(&batch[..1]).unwrap();
    assert_eq!(r2[0].queue_offset, 10);
    // A batch bigger than a segment is refused with its own error.
    let huge: Vec<_> = (0..100)
        .map(|i| msg("t", 0, &format!("h{i}"), &vec![1u8; 1000]))
        .collect();
    assert!(matches!(
        store.append(&huge),
        Err(StoreError::BatchTooLarge { .. })
    ));
    store.close().unwrap();
}

#[test]
fn sync_group_commit_many_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap());
    let threads: Vec<_> = (0..16u32)
        .map(|t| {
            let s = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let a = s
                        .append(&[msg("sync", t % 4, &format!("{t}-{i}"), &body_for(i, 100))])
                        .unwrap();
                    // Returned only once durable.
                    assert!(s.stats().flushed_offset >= a[0].position + u64::from(a[0].size));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.flushed_offset, stats.max_offset);
    assert!(
        stats.flushes < 800,
        "800 sync appends from 16 threads should share fsyncs, got {}",
        stats.flushes
    );
    assert!(store.wait_dispatched(stats.max_offset, Duration::from_secs(5)));
    let total: u64 = (0..4).map(|q| store.queue_range("sync", q).1).sum();
    assert_eq!(total, 800);
}

#[test]
fn lookups_by_id_key_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Async);
    let store = Store::open(cfg.clone()).unwrap();
    // Enough entries to seal several 256-entry index files.
    let mut first_ts = 0;
    for i in 0..500u64 {
        let a = store
            .append(&[msg(
                "idx",
                (i % 2) as u32,
                &format!("mid-{i}"),
                &body_for(i, 40),
            )])
            .unwrap();
        if i == 0 {
            first_ts = a[0].store_timestamp_ms;
        }
    }
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    for i in [0u64, 1, 255, 256, 499] {
        let found = store.find_by_message_id(&format!("mid-{i}"), 10).unwrap();
        assert_eq!(found.len(), 1, "message id mid-{i}");
        assert_eq!(found[0].message.body, body_for(i, 40));
        let by_key = store
            .find_by_key("idx", &format!("key-mid-{i}"), 10)
            .unwrap();
        assert_eq!(by_key.len(), 1);
        assert_eq!(by_key[0].message.message_id, format!("mid-{i}"));
    }
    assert!(store.find_by_message_id("absent", 10).unwrap().is_empty());
    assert!(
        store
            .find_by_key("other-topic", "key-mid-1", 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.offset_for_timestamp("idx", 0, first_ts).unwrap(), 0);
    assert_eq!(store.offset_for_timestamp("idx", 0, i64::MAX).unwrap(), 250);
    store.close().unwrap();

    // The index survives a reopen.
    let store = Store::open(cfg).unwrap();
    let found = store.find_by_message_id("mid-77", 10).unwrap();
    assert_eq!(found.len(), 1);
    store.close().unwrap();
}

#[test]
fn consumer_offsets_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Async);
    let store = Store::open(cfg.clone()).unwrap();
    store.commit_offset("g1", "orders", 2, 42);
    store.commit_offset("g1", "orders", 3, 7);
    store.flush_offsets().unwrap();
    drop(store);
    let store = Store::open(cfg).unwrap();
    assert_eq!(store.committed_offset("g1", "orders", 2), Some(42));
    assert_eq!(store.committed_offset("g1", "orders", 9), None);
    assert_eq!(store.group_offsets("g1")["orders"].len(), 2);
    store.close().unwrap();
}

#[test]
fn retention_deletes_old_segments_and_moves_queue_minimums() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir.path(), FlushPolicy::Async);
    cfg.retention = Duration::from_secs(3600);
    let store = Store::open(cfg.clone()).unwrap();
    for i in 0..400u64 {
        store
            .append(&[msg("ret", 0, &format!("r{i}"), &body_for(i, 500))])
            .unwrap();
    }
    store.flush().unwrap();
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    let before = store.stats();
    // Young segments stay.
    assert_eq!(store.enforce_retention().unwrap().segments_deleted, 0);
    store.close().unwrap();

    cfg.retention = Duration::ZERO;
    let store = Store::open(cfg).unwrap();
    // The cleaner thread runs a pass at open too; together they keep only
    // the active segment.
    store.enforce_retention().unwrap();
    assert!(before.segments > 2);
    assert_eq!(
        store.stats().segments,
        1,
        "all but the active segment are past retention"
    );
    let (min, max) = store.queue_range("ret", 0);
    assert_eq!(max, 400);
    assert!(min > 0 && min < 400);
    // Reading below the minimum starts at the minimum; the old position is gone.
    let r = store.read_queue("ret", 0, 0, 1, usize::MAX).unwrap();
    assert_eq!(r.messages[0].queue_offset, min);
    assert_eq!(r.messages[0].message.body, body_for(min, 500));
    assert!(matches!(store.read(0), Err(StoreError::Deleted { .. })));
    assert!(matches!(
        store.get("ret", 0, 0),
        Err(StoreError::Deleted { .. })
    ));
    // Appends go on.
    let a = store.append(&[msg("ret", 0, "after", b"x")]).unwrap();
    assert_eq!(a[0].queue_offset, 400);
    store.close().unwrap();
}

#[test]
fn retention_keeps_what_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir.path(), FlushPolicy::Async);
    cfg.retention = Duration::ZERO;
    cfg.retention_holders = vec!["park".into()];
    let store = Store::open(cfg).unwrap();
    for i in 0..400u64 {
        store
            .append(&[msg("ret", 0, &format!("r{i}"), &body_for(i, 500))])
            .unwrap();
    }
    store.flush().unwrap();
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    let segments = store.stats().segments;
    assert!(segments > 2, "{segments} segments");
    // The named holder has not reported yet: nothing goes, although
    // every segment is past retention.
    assert_eq!(store.enforce_retention().unwrap().segments_deleted, 0);
    // Held at message 200: older segments go, the one holding it stays.
    let held = store.get("ret", 0, 200).unwrap().position;
    store.hold_retention("park", Some(held));
    assert!(store.enforce_retention().unwrap().segments_deleted > 0);
    assert!(store.queue_range("ret", 0).0 > 0);
    assert_eq!(
        store.get("ret", 0, 200).unwrap().message.body,
        body_for(200, 500)
    );
    // Lifted: all but the active segment go.
    store.hold_retention("park", None);
    store.enforce_retention().unwrap();
    assert_eq!(store.stats().segments, 1);
    store.close().unwrap();
}

#[test]
fn copies_keep_everything_but_topic_queue_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap();
    let mut m = msg("src", 0, "id-a", b"alpha");
    m.tag = Some("t1".into());
    m.keys = vec!["k1".into(), "k2".into()];
    m.properties.insert("p".into(), "v".into());
    m.flags = 2;
    let src = store
        .append(&[m.clone(), msg("src", 0, "id-b", &body_for(7, 3000))])
        .unwrap();
    let dst = TopicName::new("dst").unwrap();
    let copies: Vec<CopyOf<'_>> = src
        .iter()
        .map(|a| CopyOf {
            position: a.position,
            topic: &dst,
            queue_id: 1,
        })
        .collect();
    let out = store.append_copies(&copies).unwrap();
    assert_eq!(
        out.iter().map(|a| a.queue_offset).collect::<Vec<_>>(),
        [0, 1]
    );
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    let read = store
        .read_queue("dst", 1, 0, 10, usize::MAX)
        .unwrap()
        .messages;
    assert_eq!(read.len(), 2);
    let mut want = m;
    want.topic = dst.clone();
    want.queue_id = 1;
    assert_eq!(read[0].message, want);
    assert_eq!(read[1].message.body, body_for(7, 3000));
    assert!(read[0].store_timestamp_ms >= src[0].store_timestamp_ms);
    // Found by id in both topics.
    let by_id = store.find_by_message_id("id-a", 10).unwrap();
    let mut topics: Vec<&str> = by_id.iter().map(|m| m.message.topic.as_str()).collect();
    topics.sort_unstable();
    assert_eq!(topics, ["dst", "src"]);
    // A position that is not a record's start: refused, nothing written.
    let end = store.max_offset();
    let bad = [CopyOf {
        position: src[0].position + 1,
        topic: &dst,
        queue_id: 1,
    }];
    assert!(matches!(
        store.append_copies(&bad),
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(store.max_offset(), end);
    store.close().unwrap();
}

#[test]
fn prepared_copies_are_placed_when_written_not_when_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap();
    let src = store
        .append(&[
            msg("src", 0, "id-a", b"alpha"),
            msg("src", 0, "id-b", b"beta"),
        ])
        .unwrap();
    let dst = TopicName::new("dst").unwrap();
    let copies: Vec<CopyOf<'_>> = src
        .iter()
        .map(|a| CopyOf {
            position: a.position,
            topic: &dst,
            queue_id: 0,
        })
        .collect();
    let prepared = store.prepare_copies(&copies).unwrap();
    assert_eq!(prepared.len(), 2);
    assert!(prepared.bytes() > 0);
    // Preparing writes nothing.
    let end = store.max_offset();
    assert_eq!(store.queue_range("dst", 0).1, 0);
    // Another write to the same queue comes first; the copies follow it.
    std::thread::sleep(Duration::from_millis(20));
    let first = store.append(&[msg("dst", 0, "id-c", b"gamma")]).unwrap();
    assert!(first[0].position >= end);
    let out = store.append_prepared(prepared).unwrap();
    assert_eq!(
        out.iter().map(|a| a.queue_offset).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(out[0].position > first[0].position);
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(5)));
    let read = store
        .read_queue("dst", 0, 0, 10, usize::MAX)
        .unwrap()
        .messages;
    let ids: Vec<&str> = read.iter().map(|m| m.message.message_id.as_str()).collect();
    assert_eq!(ids, ["id-c", "id-a", "id-b"]);
    // Stored (and stamped) when written, and intact (checksums verified
    // by the read).
    assert!(read[1].store_timestamp_ms >= read[0].store_timestamp_ms);
    assert_eq!(read[2].message.body, b"beta");
    // Nothing to write: nothing written.
    let end = store.max_offset();
    assert!(
        store
            .append_prepared(store.prepare_copies(&[]).unwrap())
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.max_offset(), end);
    store.close().unwrap();
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Async);
    let store = Store::open(cfg.clone()).unwrap();
    assert!(matches!(Store::open(cfg), Err(StoreError::Config(_))));
    store.close().unwrap();
}

#[test]
fn reads_past_the_end_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap();
    store.append(&[msg("t", 0, "a", b"x")]).unwrap();
    assert!(matches!(
        store.read(1 << 40),
        Err(StoreError::BeyondEnd { .. })
    ));
    assert!(matches!(
        store.get("t", 0, 5),
        Err(StoreError::BeyondEnd { .. })
    ));
    assert!(
        store
            .read_queue("nope", 0, 0, 10, 1024)
            .unwrap()
            .messages
            .is_empty()
    );
    store.close().unwrap();
}

#[test]
fn append_then_completes_every_append_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..300u64 {
        let tx = tx.clone();
        store.append_then(
            &[msg(
                "cb",
                (i % 3) as u32,
                &format!("c{i}"),
                &body_for(i, 80),
            )],
            move |r| tx.send((i, r)).unwrap(),
        );
    }
    // Refused input is reported through the callback too.
    let tx2 = tx.clone();
    store.append_then(&[msg("cb", 0, "bad", b"")], move |r| {
        tx2.send((u64::MAX, r)).unwrap();
    });
    drop(tx);
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rx.iter() {
        if i == u64::MAX {
            assert!(matches!(r, Err(StoreError::InvalidMessage(_))));
            continue;
        }
        let a = r.unwrap();
        assert!(store.stats().flushed_offset >= a[0].position + u64::from(a[0].size));
        assert_eq!(
            store.read(a[0].position).unwrap().message.body,
            body_for(i, 80)
        );
        assert!(seen.insert(i), "callback for {i} ran twice");
    }
    assert_eq!(seen.len(), 300);
    assert!(
        store.stats().flushes < 300,
        "300 appends in flight at once share fsyncs"
    );
    store.close().unwrap();
}

#[test]
fn queue_file_layout_is_pinned_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Async);
    let store = Store::open(cfg.clone()).unwrap();
    for i in 0..200u64 {
        store
            .append(&[msg("pin", 0, &format!("p{i}"), b"x")])
            .unwrap();
    }
    store.close().unwrap();
    // A different consume-queue file size in the configuration must not
    // reinterpret the files already written.
    let mut changed = cfg;
    changed.cq_entries_per_file = 1000;
    let store = Store::open(changed).unwrap();
    assert_eq!(store.queue_range("pin", 0), (0, 200));
    assert_eq!(store.get("pin", 0, 150).unwrap().message.message_id, "p150");
    store.close().unwrap();
}

#[test]
fn disk_usage_is_the_share_of_the_file_system_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path(), FlushPolicy::Async)).unwrap();
    let used = store.disk_usage();
    assert!((0.0..=1.0).contains(&used), "{used}");
    // The figure retention works with (others may write meanwhile).
    let report = store.enforce_retention().unwrap();
    assert!(
        (report.disk_usage - used).abs() < 0.05,
        "{report:?} vs {used}"
    );
    store.close().unwrap();
}
