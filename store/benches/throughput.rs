//! Sustained throughput of the storage engine beside the disk's own limits,
//! measured the same way on the same file system. Prints a table.
//!
//! `cargo bench -p tern-store --bench throughput` runs the full set
//! (`TERN_BENCH_GIB`, default 20, of 1 KiB records for the sustained
//! figures; needs about that much free disk twice over). With `-- --test`
//! (as CI runs it) every case runs on a few MiB only, to prove it works.
//! `TERN_BENCH_DIR` picks the directory (default: a temporary one).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tern_model::{Message, TopicName};
use tern_store::{FlushPolicy, Store, StoreConfig};

const RECORD_BODY: usize = 1024;
const MIB: f64 = 1024.0 * 1024.0;
const QUEUES: u32 = 8;

struct Row {
    case: String,
    mib_s: f64,
    note: String,
}

fn message(queue_id: u32, n: u64) -> Message {
    Message {
        topic: TopicName::new("bench").expect("valid topic"),
        queue_id,
        message_id: format!("{queue_id}-{n}"),
        tag: None,
        keys: Vec::new(),
        properties: Default::default(),
        body: vec![(n % 251) as u8; RECORD_BODY],
        born_timestamp_ms: 0,
        flags: 0,
    }
}

/// Drops the page cache so the next read comes from the disk.
fn drop_caches(files: &[PathBuf]) {
    // SAFETY-free route first: as root, the kernel knob; else per file.
    if fs::write("/proc/sys/vm/drop_caches", "3").is_ok() {
        return;
    }
    for p in files {
        if let Ok(f) = File::open(p) {
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The disk's buffered sequential write bandwidth: 1 MiB writes, one fsync
/// at the end, `bytes` in all.
fn disk_write(dir: &Path, bytes: u64) -> (f64, PathBuf) {
    let path = dir.join("disk-baseline");
    let mut f = File::create(&path).expect("create baseline file");
    let block = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut done = 0;
    while done < bytes {
        f.write_all(&block).expect("baseline write");
        done += block.len() as u64;
    }
    f.sync_all().expect("baseline fsync");
    (done as f64 / MIB / started.elapsed().as_secs_f64(), path)
}

fn disk_read(path: &Path) -> f64 {
    drop_caches(&[path.to_owned()]);
    let mut f = File::open(path).expect("open baseline");
    let mut block = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut done = 0u64;
    loop {
        let n = f.read(&mut block).expect("baseline read");
        if n == 0 {
            break;
        }
        done += n as u64;
    }
    done as f64 / MIB / started.elapsed().as_secs_f64()
}

fn config(dir: &Path, flush: FlushPolicy, smoke: bool) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.flush = flush;
    if smoke {
        c.segment_size = 4 << 20;
    }
    // Retention must not delete what the read benchmark reads back.
    c.disk_high_water = 1.0;
    c.disk_hard_limit = 1.0;
    c
}

/// `writers` threads append 1 KiB records until `bytes` are written, then
/// one flush. Returns MiB/s of message bodies.
fn append_run(store: &Arc<Store>, writers: u32, bytes: u64) -> f64 {
    let per = bytes / RECORD_BODY as u64 / u64::from(writers);
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(store);
            std::thread::spawn(move || {
                let q = w % QUEUES;
                for n in 0..per {
                    store.append(&[message(q, n)]).expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    store.flush().expect("flush");
    (per * u64::from(writers) * RECORD_BODY as u64) as f64 / MIB / started.elapsed().as_secs_f64()
}

/// Sync appends from `writers` threads for `dur`. Returns (MiB/s, appends/s, fsyncs).
fn sync_run(dir: &Path, writers: u32, dur: Duration, smoke: bool) -> (f64, f64, u64) {
    let store = Arc::new(Store::open(config(dir, FlushPolicy::Sync, smoke)).expect("open"));
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + dur;
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(&store);
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut n = 0;
                while Instant::now() < deadline {
                    store
                        .append(&[message(w % QUEUES, n)])
                        .expect("sync append");
                    n += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    let secs = started.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    let flushes = store.stats().flushes;
    drop(store);
    let _ = fs::remove_dir_all(dir);
    (
        n as f64 * RECORD_BODY as f64 / MIB / secs,
        n as f64 / secs,
        flushes,
    )
}

/// Reads every message back through the consume queues.
fn read_all(store: &Store) -> (u64, f64) {
    let started = Instant::now();
    let mut bytes = 0u64;
    for q in 0..QUEUES {
        let (mut at, max) = store.queue_range("bench", q);
        while at < max {
            let r = store
                .read_queue("bench", q, at, 1024, 4 << 20)
                .expect("read");
            bytes += r
                .messages
                .iter()
                .map(|m| m.message.body.len() as u64)
                .sum::<u64>();
            at = r.next_offset;
        }
    }
    (bytes, bytes as f64 / MIB / started.elapsed().as_secs_f64())
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let gib: f64 = std::env::var("TERN_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20.0);
    let bytes = if smoke {
        8 << 20
    } else {
        (gib * 1024.0 * MIB) as u64
    };
    let sync_secs = if smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(10)
    };
    let base = std::env::var_os("TERN_BENCH_DIR").map(PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("bench dir");
    let root = tmp.path();
    let mut rows = Vec::new();
    println!(
        "tern-store throughput: {} MiB per sustained case, 1 KiB bodies, in {}",
        bytes >> 20,
        root.display()
    );

    // The disk's own limits.
    let (w, baseline) = disk_write(root, bytes);
    rows.push(Row {
        case: "disk: sequential write, 1 MiB blocks, fsync at end".into(),
        mib_s: w,
        note: String::new(),
    });
    let r = disk_read(&baseline);
    rows.push(Row {
        case: "disk: sequential read, cold cache".into(),
        mib_s: r,
        note: String::new(),
    });
    fs::remove_file(&baseline).expect("remove baseline");

    // Async appends: one writer, then eight.
    for writers in [1u32, 8] {
        let dir = root.join(format!("async-{writers}"));
        let store = Arc::new(Store::open(config(&dir, FlushPolicy::Async, smoke)).expect("open"));
        let mib = append_run(&store, writers, bytes);
        rows.push(Row {
            case: format!("store: async append, {writers} writer(s)"),
            mib_s: mib,
            note: format!("{:.0}% of disk write", mib / w * 100.0),
        });
        if writers == 8 {
            // Cold sequential read of everything just written.
            let files = files_under(&dir);
            drop_caches(&files);
            let (read, mib_r) = read_all(&store);
            assert_eq!(
                read,
                bytes / RECORD_BODY as u64 / 8 * 8 * RECORD_BODY as u64,
                "read back all"
            );
            rows.push(Row {
                case: "store: sequential read via consume queues, cold cache".into(),
                mib_s: mib_r,
                note: format!("{:.0}% of disk read", mib_r / r * 100.0),
            });
            Arc::into_inner(store)
                .expect("sole owner")
                .close()
                .expect("close");
            // Recovery with no checkpoint, consume queues or index: the
            // whole log is scanned and everything rebuilt, from a cold cache.
            fs::remove_file(dir.join("checkpoint")).expect("remove checkpoint");
            fs::remove_dir_all(dir.join("consumequeue")).expect("remove cq");
            fs::remove_dir_all(dir.join("index")).expect("remove index");
            drop_caches(&files_under(&dir));
            let started = Instant::now();
            let store = Store::open(config(&dir, FlushPolicy::Async, smoke)).expect("reopen");
            let secs = started.elapsed().as_secs_f64();
            let log_gib = store.stats().max_offset as f64 / 1024.0 / MIB;
            rows.push(Row {
                case: "store: full recovery (no checkpoint), cold cache".into(),
                mib_s: log_gib * 1024.0 / secs,
                note: format!("{:.2} s per GiB of commit log", secs / log_gib),
            });
            store.close().expect("close");
        } else {
            Arc::into_inner(store)
                .expect("sole owner")
                .close()
                .expect("close");
        }
        fs::remove_dir_all(&dir).expect("clean up");
    }
    let async8 = rows
        .iter()
        .find(|r| r.case.contains("8 writer"))
        .map_or(1.0, |r| r.mib_s);

    for writers in [1u32, 16, 64] {
        let (mib, per_s, flushes) = sync_run(
            &root.join(format!("sync-{writers}")),
            writers,
            sync_secs,
            smoke,
        );
        rows.push(Row {
            case: format!("store: sync append (group commit), {writers} writer(s)"),
            mib_s: mib,
            note: format!(
                "{per_s:.0} appends/s, {flushes} fsyncs, {:.0}% of async 8w",
                mib / async8 * 100.0
            ),
        });
    }

    println!("{:<62} {:>10}  note", "case", "MiB/s");
    for r in &rows {
        println!("{:<62} {:>10.1}  {}", r.case, r.mib_s, r.note);
    }
}
