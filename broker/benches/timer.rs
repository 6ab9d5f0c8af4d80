//! Delayed messages under a burst: a million messages due in the same
//! second (apache/rocketmq issue 6566 saw the reference broker minutes
//! late at 500 000). Parks them all with one delivery time, then reports
//! how late each was written to its topic (store time of the delivered
//! copy minus the delivery time: p50, p99, max), when the last one became
//! readable, and the memory the pending messages took.
//!
//! `cargo bench -p tern-broker --bench timer`; CI runs it with `-- --test`
//! (10 000 messages, figures printed but not meaningful).
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench: a panic is the failure report

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tern_broker::timer::{DelayConfig, Timer};
use tern_broker::{MessageType, Permission, Registry, TopicConfig};
use tern_model::{Message, MessageKind, TopicName, now_ms, system};
use tern_store::{Store, StoreConfig};

const QUEUES: u32 = 8;
const BATCH: usize = 1000;

fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn message(i: usize, at: i64) -> Message {
    let mut m = Message {
        topic: TopicName::new("burst").unwrap(),
        queue_id: 0,
        message_id: format!("{i:024X}"),
        tag: Some("t".into()),
        keys: Vec::new(),
        properties: [(system::DELIVER_AT.to_owned(), at.to_string())].into(),
        body: vec![b'x'; 100],
        born_timestamp_ms: now_ms(),
        flags: 0,
    };
    m.set_kind(MessageKind::Delay);
    m
}

fn readable(store: &Store) -> u64 {
    (0..QUEUES).map(|q| store.queue_range("burst", q).1).sum()
}

fn main() {
    let n: usize = if test_mode() { 10_000 } else { 1_000_000 };
    let lead_ms: i64 = if test_mode() { 3_000 } else { 40_000 };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(StoreConfig::new(dir.path().join("store"))).unwrap());
    let registry = Arc::new(Registry::open(&dir.path().join("meta")).unwrap());
    registry
        .create_topic(
            TopicConfig::new(
                TopicName::new("burst").unwrap(),
                QUEUES,
                MessageType::Delay,
                Permission::ReadWrite,
            )
            .unwrap(),
        )
        .unwrap();
    let timer = Timer::open(
        Arc::clone(&store),
        Arc::clone(&registry),
        &dir.path().join("park"),
        DelayConfig::default(),
    )
    .unwrap();

    // All due in the same second, at a second boundary.
    let due = (now_ms() + lead_ms) / 1000 * 1000;
    let rss_before = rss();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    for chunk_start in (0..n).step_by(BATCH) {
        let msgs = (chunk_start..(chunk_start + BATCH).min(n))
            .map(|i| message(i, due))
            .collect();
        let tx = tx.clone();
        timer.schedule(msgs, move |r| tx.send(r.map(|o| o.len())).unwrap());
    }
    drop(tx);
    let parked: usize = rx.iter().map(|r| r.unwrap()).sum();
    assert_eq!(parked, n);
    let park_secs = started.elapsed().as_secs_f64();
    let parked_at = now_ms();
    let rss_parked = rss();
    assert!(
        parked_at < due,
        "parking took longer than the lead time ({park_secs:.1} s): the run is not valid"
    );

    // Wait for the burst, then for the last message to be readable.
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(lead_ms).unwrap() + 120_000);
    while readable(&store) < n as u64 {
        assert!(
            Instant::now() < deadline,
            "delayed messages never all arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let all_readable = now_ms() - due;

    let mut late = Vec::with_capacity(n);
    for q in 0..QUEUES {
        let mut from = 0;
        loop {
            let r = store.read_queue("burst", q, from, 8192, 16 << 20).unwrap();
            if r.messages.is_empty() {
                break;
            }
            for m in &r.messages {
                assert!(m.store_timestamp_ms >= due, "delivered before its time");
                late.push(m.store_timestamp_ms - due);
            }
            from = r.next_offset;
        }
    }
    assert_eq!(late.len(), n, "every message delivered exactly once");
    late.sort_unstable();
    let pct = |p: f64| late[((late.len() as f64 * p) as usize).min(late.len() - 1)];
    println!(
        "timer burst: {n} messages due at once; parked in {park_secs:.2} s ({:.0} msg/s), \
         pending memory ~{} bytes/message",
        n as f64 / park_secs,
        rss_parked.saturating_sub(rss_before) / n as u64
    );
    println!(
        "timer burst: lateness p50 {} ms, p99 {} ms, max {} ms; last readable {} ms after due",
        pct(0.50),
        pct(0.99),
        late[late.len() - 1],
        all_readable
    );
    timer.close();
    drop(timer);
    Arc::try_unwrap(store).unwrap().close().unwrap();
}
