//! Damage on disk: flipped and cut bytes in the commit log and in consume
//! queues. A damaged record is never handed to a reader; what can be
//! rebuilt from the commit log is.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{body_for, msg, small_config};
use tern_store::{FlushPolicy, Store, StoreConfig, StoreError};

const N: u64 = 300;

fn fill(cfg: &StoreConfig) -> Vec<u64> {
    let store = Store::open(cfg.clone()).unwrap();
    let mut positions = Vec::new();
    for i in 0..N {
        let a = store
            .append(&[msg(
                "dmg",
                (i % 2) as u32,
                &format!("d{i}"),
                &body_for(i, 200),
            )])
            .unwrap();
        positions.push(a[0].position);
    }
    store.close().unwrap();
    positions
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn cq_file(dir: &Path, queue: u32) -> PathBuf {
    let mut v: Vec<_> = fs::read_dir(dir.join("consumequeue").join("dmg").join(queue.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.pop().unwrap()
}

fn flip(path: &Path, at: u64) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).unwrap();
}

/// Makes the checkpoint claim only what precedes `pos` is covered, as if
/// the process died before the next checkpoint.
fn rewind_checkpoint(dir: &Path, pos: u64) {
    let ck = format!(r#"{{"version":1,"dispatched":{pos},"flushed":{pos}}}"#);
    fs::write(dir.join("checkpoint"), ck).unwrap();
}

fn check_all_but(store: &Store, lost: &[u64]) {
    for i in 0..N {
        let q = (i % 2) as u32;
        let got = store.get("dmg", q, i / 2);
        if lost.contains(&i) {
            assert!(got.is_err(), "message {i} should be gone");
        } else {
            let m = got.unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(m.message.body, body_for(i, 200));
        }
    }
}

#[test]
fn flipped_byte_in_the_log_tail_is_cut_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Sync);
    let positions = fill(&cfg);
    let last = segments(dir.path()).pop().unwrap();
    let seg_base: u64 = last.file_name().unwrap().to_str().unwrap().parse().unwrap();
    // A crash after the last checkpoint covered record N-10 ...
    rewind_checkpoint(dir.path(), positions[N as usize - 10]);
    // ... left the body of the second-to-last record damaged.
    flip(&last, positions[N as usize - 2] - seg_base + 100);

    let store = Store::open(cfg.clone()).unwrap();
    let rec = store.stats().recovery;
    assert_eq!(rec.log.valid_end, positions[N as usize - 2]);
    assert!(rec.log.truncated_bytes > 0);
    assert_eq!(rec.log.stop_reason.as_deref(), Some("checksum mismatch"));
    assert_eq!(
        fs::read_dir(dir.path().join("commitlog").join("quarantine"))
            .unwrap()
            .count(),
        1,
        "the cut bytes are kept for inspection"
    );
    check_all_but(&store, &[N - 2, N - 1]);
    assert!(matches!(
        store.read(positions[N as usize - 2]),
        Err(StoreError::BeyondEnd { .. })
    ));
    // The log goes on from the valid end; queue offsets refill the gap.
    let a = store.append(&[msg("dmg", 0, "again", b"x")]).unwrap();
    assert_eq!(a[0].position, positions[N as usize - 2]);
    assert_eq!(a[0].queue_offset, (N - 2) / 2);
    store.close().unwrap();
}

#[test]
fn cut_log_tail_and_trailing_garbage_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Sync);
    let positions = fill(&cfg);
    let last = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    // A torn write: the last record lost its final 10 bytes...
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let store = Store::open(cfg.clone()).unwrap();
    assert_eq!(
        store.stats().recovery.log.valid_end,
        positions[N as usize - 1]
    );
    check_all_but(&store, &[N - 1]);
    store.close().unwrap();

    // ...and garbage after the end (a length that claims more than is there).
    let len = fs::metadata(&last).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_all_at(&[0xff, 0x01, 0, 0, 9, 9, 9], len).unwrap();
    let store = Store::open(cfg).unwrap();
    assert_eq!(
        store.stats().recovery.log.valid_end,
        positions[N as usize - 1]
    );
    check_all_but(&store, &[N - 1]);
    store.close().unwrap();
}

#[test]
fn flipped_byte_in_an_old_record_is_refused_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Sync);
    let positions = fill(&cfg);
    // A record in the first segment, before the checkpoint: recovery does
    // not scan it, reads check it.
    flip(&segments(dir.path())[0], positions[10] + 90);
    let store = Store::open(cfg).unwrap();
    assert!(matches!(
        store.read(positions[10]),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.get("dmg", 0, 5),
        Err(StoreError::Corrupt { .. })
    ));
    // A batch read stops with the error rather than skipping silently.
    assert!(store.read_queue("dmg", 0, 0, 50, usize::MAX).is_err());
    // Its neighbours are fine.
    assert_eq!(
        store.get("dmg", 0, 4).unwrap().message.body,
        body_for(8, 200)
    );
    assert_eq!(
        store.get("dmg", 0, 6).unwrap().message.body,
        body_for(12, 200)
    );
    store.close().unwrap();
}

#[test]
fn damaged_consume_queue_tail_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Sync);
    fill(&cfg);
    // Queue 0 holds 150 entries; 64 per file, so its last file holds 22.
    let cq = cq_file(dir.path(), 0);
    flip(&cq, 21 * 32 + 5);
    let store = Store::open(cfg.clone()).unwrap();
    let rec = store.stats().recovery;
    assert_eq!(rec.repaired_queues, vec!["dmg:0".to_owned()]);
    assert!(rec.redispatched_records > 0);
    assert_eq!(store.queue_range("dmg", 0), (0, N / 2));
    check_all_but(&store, &[]);
    store.close().unwrap();

    // A consume-queue file cut short.
    let cq = cq_file(dir.path(), 1);
    fs::OpenOptions::new()
        .write(true)
        .open(&cq)
        .unwrap()
        .set_len(5 * 32 + 7)
        .unwrap();
    let store = Store::open(cfg).unwrap();
    assert_eq!(
        store.stats().recovery.repaired_queues,
        vec!["dmg:1".to_owned()]
    );
    assert_eq!(store.queue_range("dmg", 1), (0, N / 2));
    check_all_but(&store, &[]);
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(1)));
    store.close().unwrap();
}

#[test]
fn lost_checkpoint_rebuilds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushPolicy::Async);
    fill(&cfg);
    fs::remove_file(dir.path().join("checkpoint")).unwrap();
    fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = Store::open(cfg).unwrap();
    let rec = store.stats().recovery;
    assert!(!rec.had_checkpoint);
    assert_eq!(rec.redispatched_records, N);
    check_all_but(&store, &[]);
    assert_eq!(store.find_by_message_id("d123", 5).unwrap().len(), 1);
    store.close().unwrap();
}
