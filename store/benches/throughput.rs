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
    if let Some(ms) = std::env::var("TERN_BENCH_FLUSH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.flush_interval = Duration::from_millis(ms);
    }
    // Retention must not delete what the read benchmark reads back.
    c.disk_high_water = 1.0;
    c.disk_hard_limit = 1.0;
    c
}

/// `writers` threads append 1 KiB records until `bytes` are written, then
/// one flush. Returns MiB/s of message bodies.
fn append_run(store: &Arc<Store>, writers: u32, batch: u64, bytes: u64) -> f64 {
    let per = bytes / RECORD_BODY as u64 / u64::from(writers) / batch * batch;
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(store);
            std::thread::spawn(move || {
                let q = w % QUEUES;
                for first in (0..per).step_by(batch as usize) {
                    let msgs: Vec<_> = (first..first + batch).map(|n| message(q, n)).collect();
                    store.append(&msgs).expect("append");
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

/// Sync appends for `dur` with `writers` appends in flight at any time.
/// With `threads_per_writer`, each writer is an OS thread blocked in
/// `append`; otherwise two submitting threads keep `writers` appends in
/// flight through `append_then`, as the broker's async handlers do.
/// Returns (MiB/s, appends/s, fsyncs).
fn sync_run(
    dir: &Path,
    writers: u32,
    threads_per_writer: bool,
    dur: Duration,
    smoke: bool,
) -> (f64, f64, u64) {
    let store = Arc::new(Store::open(config(dir, FlushPolicy::Sync, smoke)).expect("open"));
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + dur;
    let started = Instant::now();
    let handles: Vec<_> = if threads_per_writer {
        (0..writers)
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
            .collect()
    } else {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<u32>();
        for w in 0..writers {
            ready_tx.send(w).expect("seed");
        }
        let ready_rx = Arc::new(std::sync::Mutex::new(ready_rx));
        (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                let count = Arc::clone(&count);
                let ready_rx = Arc::clone(&ready_rx);
                let ready_tx = ready_tx.clone();
                std::thread::spawn(move || {
                    let mut n = 0;
                    loop {
                        let next = ready_rx
                            .lock()
                            .expect("receiver")
                            .recv_timeout(Duration::from_millis(100));
                        let Ok(w) = next else { break };
                        if Instant::now() >= deadline {
                            break;
                        }
                        n += 1;
                        let count = Arc::clone(&count);
                        let ready_tx = ready_tx.clone();
                        store.append_then(&[message(w % QUEUES, n)], move |r| {
                            r.expect("sync append");
                            count.fetch_add(1, Ordering::Relaxed);
                            let _ = ready_tx.send(w);
                        });
                    }
                })
            })
            .collect()
    };
    for t in handles {
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

/// Body bytes held by the bench topic's queues.
fn bytes_written(store: &Store) -> u64 {
    (0..QUEUES)
        .map(|q| {
            let (min, max) = store.queue_range("bench", q);
            (max - min) * RECORD_BODY as u64
        })
        .sum()
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

/// Reads the one queue back from a cold cache, then reopens with the
/// checkpoint, consume queues and index removed: the whole log is scanned
/// and everything rebuilt, also from a cold cache.
fn cold_read_and_full_recovery(
    dir: &Path,
    store: Store,
    disk_read_mib: f64,
    smoke: bool,
    rows: &mut Vec<Row>,
) {
    store.flush().expect("flush");
    let waited = Instant::now();
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(600)));
    println!(
        "dispatcher finished {:.2} s after the last append",
        waited.elapsed().as_secs_f64()
    );
    drop_caches(&files_under(dir));
    let (read, mib_r) = read_all(&store);
    assert_eq!(read, bytes_written(&store), "read back everything");
    rows.push(Row {
        case: "store: sequential read of one queue, cold cache".into(),
        mib_s: mib_r,
        note: format!("{:.0}% of disk read", mib_r / disk_read_mib * 100.0),
    });
    let (_, mib_w) = read_all(&store);
    rows.push(Row {
        case: "store: sequential read of one queue, warm cache".into(),
        mib_s: mib_w,
        note: "decode and copy cost alone".into(),
    });
    store.close().expect("close");
    fs::remove_file(dir.join("checkpoint")).expect("remove checkpoint");
    fs::remove_dir_all(dir.join("consumequeue")).expect("remove cq");
    fs::remove_dir_all(dir.join("index")).expect("remove index");
    drop_caches(&files_under(dir));
    let started = Instant::now();
    let store = Store::open(config(dir, FlushPolicy::Async, smoke)).expect("reopen");
    let secs = started.elapsed().as_secs_f64();
    let log_gib = store.stats().max_offset as f64 / 1024.0 / MIB;
    rows.push(Row {
        case: "store: full rebuild at open (no checkpoint, queues, index)".into(),
        mib_s: log_gib * 1024.0 / secs,
        note: format!(
            "{secs:.2} s for {log_gib:.2} GiB: {:.2} s per GiB",
            secs / log_gib
        ),
    });
    store.close().expect("close");
}

const CHILD_ENV: &str = "TERN_BENCH_CHILD_DIR";

/// The child of `kill_recovery`: appends until killed.
fn child_writer(dir: &Path, smoke: bool) {
    let store = Store::open(config(dir, FlushPolicy::Async, smoke)).expect("child open");
    let mut n = 0u64;
    loop {
        store
            .append(&[message((n % u64::from(QUEUES)) as u32, n)])
            .expect("child append");
        n += 1;
    }
}

/// A child process appends (async) until the log holds `bytes`, gets
/// SIGKILL, and the store is reopened from a cold cache.
fn kill_recovery(dir: &Path, bytes: u64, smoke: bool, rows: &mut Vec<Row>) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = std::process::Command::new(exe)
        .env(CHILD_ENV, dir)
        .env("TERN_BENCH_SMOKE", if smoke { "1" } else { "0" })
        .spawn()
        .expect("spawn child writer");
    let log_dir = dir.join("commitlog");
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let size: u64 = files_under(&log_dir)
            .iter()
            .filter_map(|p| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        if size >= bytes {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("child writer exited early: {status}");
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap");
    drop_caches(&files_under(dir));
    let started = Instant::now();
    let store = Store::open(config(dir, FlushPolicy::Async, smoke)).expect("reopen after kill");
    let secs = started.elapsed().as_secs_f64();
    let stats = store.stats();
    let log_gib = stats.max_offset as f64 / 1024.0 / MIB;
    rows.push(Row {
        case: "store: recovery after kill -9 (async writer), cold cache".into(),
        mib_s: log_gib * 1024.0 / secs,
        note: format!(
            "{secs:.2} s for {log_gib:.2} GiB: {:.3} s per GiB; re-dispatched {} records",
            secs / log_gib,
            stats.recovery.redispatched_records
        ),
    });
    store.close().expect("close");
    fs::remove_dir_all(dir).expect("clean up");
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let smoke = std::env::var("TERN_BENCH_SMOKE").as_deref() == Ok("1");
        child_writer(Path::new(&dir), smoke);
        return;
    }
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

    // `TERN_BENCH_CASES` (comma-separated: disk, async, kill, sync) picks
    // a subset; all by default.
    let cases = std::env::var("TERN_BENCH_CASES").unwrap_or_else(|_| "disk,async,kill,sync".into());
    let want = |c: &str| cases.split(',').any(|x| x.trim() == c);

    // The disk's own limits.
    let (mut w, mut r) = (f64::NAN, f64::NAN);
    if want("disk") {
        let baseline;
        (w, baseline) = disk_write(root, bytes);
        rows.push(Row {
            case: "disk: sequential write, 1 MiB blocks, fsync at end".into(),
            mib_s: w,
            note: String::new(),
        });
        r = disk_read(&baseline);
        rows.push(Row {
            case: "disk: sequential read, cold cache".into(),
            mib_s: r,
            note: String::new(),
        });
        fs::remove_file(&baseline).expect("remove baseline");
    }

    // Async appends: one writer (one queue), then eight (eight queues).
    for (writers, batch) in [(1u32, 1u64), (8, 1), (1, 32)] {
        if !want("async") {
            break;
        }
        let dir = root.join(format!("async-{writers}-{batch}"));
        let store = Arc::new(Store::open(config(&dir, FlushPolicy::Async, smoke)).expect("open"));
        let mib = append_run(&store, writers, batch, bytes);
        let per_call = if batch == 1 {
            String::new()
        } else {
            format!(", batches of {batch}")
        };
        rows.push(Row {
            case: format!("store: async append, {writers} writer(s){per_call}"),
            mib_s: mib,
            note: format!("{:.0}% of disk write", mib / w * 100.0),
        });
        let store = Arc::into_inner(store).expect("sole owner");
        if writers == 1 && batch == 1 {
            cold_read_and_full_recovery(&dir, store, r, smoke, &mut rows);
        } else {
            store.close().expect("close");
        }
        fs::remove_dir_all(&dir).expect("clean up");
    }
    if want("kill") {
        kill_recovery(&root.join("killed"), bytes, smoke, &mut rows);
    }
    let async8 = rows
        .iter()
        .find(|r| r.case.contains("8 writer"))
        .map_or(1.0, |r| r.mib_s);

    for (writers, threads) in [
        (1u32, true),
        (16, true),
        (64, true),
        (16, false),
        (64, false),
    ] {
        if !want("sync") {
            break;
        }
        let dir = root.join(format!("sync-{writers}-{threads}"));
        let (mib, per_s, flushes) = sync_run(&dir, writers, threads, sync_secs, smoke);
        let how = if threads {
            "threads blocked in append"
        } else {
            "in flight via append_then"
        };
        rows.push(Row {
            case: format!("store: sync append (group commit), {writers} {how}"),
            mib_s: mib,
            note: format!(
                "{per_s:.0} appends/s, {:.1} per fsync, {:.0}% of async 8w",
                per_s * sync_secs.as_secs_f64() / flushes.max(1) as f64,
                mib / async8 * 100.0
            ),
        });
    }

    println!("{:<72} {:>8}  note", "case", "MiB/s");
    for r in &rows {
        println!("{:<72} {:>8.1}  {}", r.case, r.mib_s, r.note);
    }
}
