//! Real crashes: a child process appends and reports every acknowledged
//! record on stdout; the test kills it with SIGKILL at a random moment,
//! reopens the store and checks every acknowledged record is there, intact,
//! and that nothing past the valid end is served. Many rounds, one directory.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{body_for, msg, small_config};
use tern_store::{FlushPolicy, Store, StoreError};

const CHILD_ENV: &str = "TERN_CRASH_CHILD_DIR";
const WRITERS: u32 = 4;

/// The child: runs only when the parent test sets `TERN_CRASH_CHILD_DIR`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var("TERN_CRASH_ROUND").unwrap().parse().unwrap();
    let flush = match std::env::var("TERN_CRASH_FLUSH").as_deref() {
        Ok("async") => FlushPolicy::Async,
        _ => FlushPolicy::Sync,
    };
    let store = Arc::new(Store::open(small_config(&dir, flush)).unwrap());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    println!("READY");
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let n = round * 1_000_000 + u64::from(w) * 100_000 + i;
                    let batch: Vec<_> = (0..(1 + i % 3))
                        .map(|k| {
                            msg(
                                "crash",
                                w,
                                &format!("{n}-{k}"),
                                &body_for(n + k, 64 + (n % 900) as usize),
                            )
                        })
                        .collect();
                    let acks = store.append(&batch).unwrap();
                    let mut o = out.lock().unwrap();
                    for (k, a) in acks.iter().enumerate() {
                        writeln!(
                            o,
                            "ACK {} {} {} {}-{} {}",
                            a.position, a.size, w, n, k, a.queue_offset
                        )
                        .unwrap();
                    }
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

struct Ack {
    position: u64,
    queue: u32,
    id: String,
    queue_offset: u64,
    body_seed: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut it = line.strip_prefix("ACK ")?.split(' ');
    let position = it.next()?.parse().ok()?;
    let _size: u32 = it.next()?.parse().ok()?;
    let queue = it.next()?.parse().ok()?;
    let id = it.next()?.to_owned();
    let queue_offset = it.next()?.parse().ok()?;
    let (n, k) = id.split_once('-')?;
    let body_seed = n.parse::<u64>().ok()? + k.parse::<u64>().ok()?;
    Some(Ack {
        position,
        queue,
        id,
        queue_offset,
        body_seed,
    })
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sigkill_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<Ack> = Vec::new();
    let rounds = 25;
    for round in 1..=rounds {
        let flush = if round % 5 == 0 { "async" } else { "sync" };
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("TERN_CRASH_ROUND", round.to_string())
            .env("TERN_CRASH_FLUSH", flush)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        // Kill somewhere between 20 ms and 400 ms after start.
        let delay = Duration::from_millis(20 + xorshift(&mut seed) % 380);
        let started = Instant::now();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let before = acked.len();
        // A line cut by the kill does not parse and is not counted.
        acked.extend(lines.iter().filter_map(|l| parse_ack(l)));
        println!(
            "round {round} ({flush}): killed after {:?}, {} new acks",
            started.elapsed(),
            acked.len() - before
        );

        let store = Store::open(small_config(dir.path(), FlushPolicy::Sync)).unwrap();
        let rec = store.stats().recovery;
        println!(
            "  recovery: valid end {}, {} bytes cut, {} records re-dispatched in {} ms",
            rec.log.valid_end, rec.log.truncated_bytes, rec.redispatched_records, rec.duration_ms
        );
        // This round's acks all; older ones sampled (all of them at the end).
        let sample = if round == rounds { 1 } else { 16 };
        let checks: Vec<&Ack> = acked
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= before || i % sample == 0)
            .map(|(_, a)| a)
            .collect();
        verify(&store, &checks);
        store.close().unwrap();
    }
    assert!(
        acked.len() > 100,
        "the child made too little progress to prove anything"
    );
}

fn verify(store: &Store, acked: &[&Ack]) {
    let stats = store.stats();
    for a in acked {
        let m = store
            .read(a.position)
            .unwrap_or_else(|e| panic!("acknowledged record {} at {} lost: {e}", a.id, a.position));
        assert_eq!(m.message.message_id, a.id);
        assert_eq!(m.message.queue_id, a.queue);
        assert_eq!(m.queue_offset, a.queue_offset);
        assert_eq!(m.message.body, body_for(a.body_seed, m.message.body.len()));
        let via_queue = store.get("crash", a.queue, a.queue_offset).unwrap();
        assert_eq!(via_queue.position, a.position);
    }
    // Every queue reads back densely, each entry intact, up to its max.
    let mut per_queue: HashMap<u32, u64> = HashMap::new();
    for q in 0..WRITERS {
        let (min, max) = store.queue_range("crash", q);
        let mut at = min;
        while at < max {
            let r = store.read_queue("crash", q, at, 500, usize::MAX).unwrap();
            assert!(!r.messages.is_empty());
            for m in &r.messages {
                assert_eq!(m.queue_offset, at);
                assert!(m.position + u64::from(m.size) <= stats.max_offset);
                at += 1;
            }
        }
        per_queue.insert(q, max);
    }
    // Nothing is served past the valid end.
    assert!(matches!(
        store.read(stats.max_offset),
        Err(StoreError::BeyondEnd { .. })
    ));
    for q in 0..WRITERS {
        assert!(store.get("crash", q, per_queue[&q]).is_err());
    }
}
