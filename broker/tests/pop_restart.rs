//! Consumption state across restarts: clean closes, crashes that tear the
//! journal's tail, and compaction.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{Broker, INV, T0, group, no_tag, offsets};
use tern_broker::pop::JOURNAL_FILE;
use tern_broker::{BrokerError, PopConfig, ReceiptError};
use tern_harness::small_store_config;

fn journal(root: &Path) -> std::path::PathBuf {
    root.join("pop").join(JOURNAL_FILE)
}

#[test]
fn restart_keeps_in_flight_deliveries_acks_and_handles() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let second = tern_broker::Pop::open(
        PopConfig::new(dir.path().join("pop")),
        std::sync::Arc::clone(&b.store),
        std::sync::Arc::clone(&b.registry),
    );
    assert!(
        matches!(second, Err(BrokerError::Failed(_))),
        "one user per journal"
    );
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 6, no_tag);
    let ds = b.recv(&g, &t, 5, T0);
    b.pop.ack(&ds[0].receipt).unwrap();
    b.pop.ack(&ds[2].receipt).unwrap();
    b.close();

    let b = Broker::open(dir.path());
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(1));
    // 1, 3, 4 are still invisible; 5 was never delivered.
    assert_eq!(offsets(&b.recv(&g, &t, 32, T0 + 1)), [5]);
    // Handles issued before the restart still work.
    b.pop.ack(&ds[1].receipt).unwrap();
    assert!(matches!(
        b.pop.ack(&ds[2].receipt),
        Err(BrokerError::InvalidReceiptHandle(ReceiptError::Stale))
    ));
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(3));
    let again = b.recv(&g, &t, 32, T0 + INV);
    assert_eq!(offsets(&again), [3, 4]);
    assert!(again.iter().all(|d| d.attempt == 2));
    b.close();
}

#[test]
fn a_torn_journal_tail_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 3, no_tag);
    let ds = b.recv(&g, &t, 32, T0);
    b.pop.ack(&ds[0].receipt).unwrap();
    b.close();
    // A crash in the middle of writing a record leaves part of a frame.
    let mut f = OpenOptions::new()
        .append(true)
        .open(journal(dir.path()))
        .unwrap();
    f.write_all(&[9, 0, 1, 2, 3]).unwrap();
    drop(f);

    let b = Broker::open(dir.path());
    assert!(dir.path().join("pop").join("pop.journal.dropped").exists());
    assert!(
        b.recv(&g, &t, 32, T0 + 1).is_empty(),
        "1 and 2 still invisible"
    );
    b.pop.ack(&ds[1].receipt).unwrap();
    b.pop.ack(&ds[2].receipt).unwrap();
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(3));
    b.close();
}

#[test]
fn changes_lost_in_a_crash_mean_redelivery_never_loss() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 2, no_tag);
    let first = b.recv(&g, &t, 1, T0);
    b.pop.sync().unwrap();
    let durable = fs::metadata(journal(dir.path())).unwrap().len();
    // These changes reach the file, then a "crash" cuts them off again.
    b.pop.ack(&first[0].receipt).unwrap();
    let second = b.recv(&g, &t, 1, T0);
    assert_eq!(offsets(&second), [1]);
    b.close();
    let f = OpenOptions::new()
        .write(true)
        .open(journal(dir.path()))
        .unwrap();
    f.set_len(durable).unwrap();
    drop(f);
    // The store's offsets may have been written meanwhile; forget them
    // too, as a crash could have.
    let store = tern_store::Store::open(small_store_config(
        dir.path().join("store"),
        tern_store::FlushPolicy::Async,
    ))
    .unwrap();
    store.commit_offset("g", "orders", 0, 0);
    store.close().unwrap();
    let b = Broker::open(dir.path());

    // Offset 0 is in flight again (its ack was lost): it comes back after
    // its invisibility. Offset 1's delivery was lost: it is delivered at
    // once, and the handle from before the crash does not match it.
    let now = b.recv(&g, &t, 32, T0 + 1);
    assert_eq!((offsets(&now), now[0].attempt), (vec![1], 1));
    assert!(matches!(
        b.pop.ack(&second[0].receipt),
        Err(BrokerError::InvalidReceiptHandle(ReceiptError::Stale))
    ));
    let later = b.recv(&g, &t, 32, T0 + INV);
    assert_eq!((offsets(&later), later[0].attempt), (vec![0], 2));
    b.close();
}

#[test]
fn compaction_keeps_state_and_bounds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::pop_config(dir.path());
    cfg.compact_bytes = 4096;
    cfg.flush_interval = Duration::from_millis(1);
    let b = Broker::open_with(dir.path(), cfg.clone());
    let t = b.topic("orders", 2);
    let g = group("g");
    b.send("orders", 0, 400, no_tag);
    b.send("orders", 1, 400, no_tag);
    let mut kept = Vec::new();
    let mut now = T0;
    loop {
        let ds = b.recv(&g, &t, 16, now);
        if ds.is_empty() {
            break;
        }
        for (i, d) in ds.iter().enumerate() {
            if i == 0 {
                kept.push(d.clone());
            } else {
                b.pop.ack(&d.receipt).unwrap();
            }
        }
        now += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    // Wait for the flusher to compact the many records away.
    let path = journal(dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fs::metadata(&path).unwrap().len() > 8192 {
        assert!(
            std::time::Instant::now() < deadline,
            "journal never compacted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    b.close();

    let b = Broker::open_with(dir.path(), cfg);
    assert!(
        b.recv(&g, &t, 32, now).is_empty(),
        "the kept ones are still invisible"
    );
    for d in &kept {
        b.pop.ack(&d.receipt).unwrap();
    }
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(400));
    assert_eq!(b.store.committed_offset("g", "orders", 1), Some(400));
    b.close();
}

#[test]
fn a_damaged_journal_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Broker::open(dir.path()).close();
    fs::write(journal(dir.path()), b"garbage!").unwrap();
    let store = std::sync::Arc::new(
        tern_store::Store::open(small_store_config(
            dir.path().join("store"),
            tern_store::FlushPolicy::Async,
        ))
        .unwrap(),
    );
    let registry =
        std::sync::Arc::new(tern_broker::Registry::open(&dir.path().join("meta")).unwrap());
    let r = tern_broker::Pop::open(PopConfig::new(dir.path().join("pop")), store, registry);
    assert!(matches!(r, Err(BrokerError::Corrupt { .. })));
}

/// A tiny deterministic generator, so failures replay.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_operations_survive_repeated_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(42);
    let g = group("g");
    let mut now = T0;
    // The latest handle of every delivery not yet settled.
    let mut live: Vec<String> = Vec::new();
    let mut sent = 0u64;
    for round in 0..4 {
        let b = Broker::open(dir.path());
        let t = b.topic("orders", 3);
        for _ in 0..150 {
            match rng.below(10) {
                0 => {
                    let q = rng.below(3) as u32;
                    b.send("orders", q, 1 + rng.below(4) as usize, no_tag);
                    sent += 1;
                }
                1..=3 => {
                    let ds = b.recv(&g, &t, 1 + rng.below(5) as usize, now);
                    for d in ds {
                        // A redelivery replaces the handle of its message.
                        let old = live.iter().position(|h| {
                            let r = b.pop.receipts().decode(h).unwrap();
                            (r.queue_id, r.offset)
                                == (d.message.message.queue_id, d.message.queue_offset)
                        });
                        if let Some(i) = old {
                            live.swap_remove(i);
                        }
                        live.push(d.receipt);
                    }
                }
                4..=6 if !live.is_empty() => {
                    let h = live.swap_remove(rng.below(live.len() as u64) as usize);
                    b.pop.ack(&h).unwrap();
                }
                7 if !live.is_empty() => {
                    let i = rng.below(live.len() as u64) as usize;
                    live[i] = b.pop.change_invisible(&live[i], INV, now).unwrap();
                }
                _ => now += 1 + rng.below(INV as u64 / 2) as i64,
            }
        }
        let before = b.pop.stats("g", "orders");
        b.close();
        let b = Broker::open(dir.path());
        assert_eq!(b.pop.stats("g", "orders"), before, "round {round}");
        b.close();
    }
    assert!(sent > 0);
    // Every handle kept across the restarts still settles its delivery.
    let b = Broker::open(dir.path());
    for h in &live {
        b.pop.ack(h).unwrap();
    }
    for s in b.pop.stats("g", "orders") {
        assert_eq!(
            (s.in_flight, s.committed_offset),
            (0, s.next_offset),
            "{s:?}"
        );
    }
    b.close();
}
