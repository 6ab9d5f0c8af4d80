//! The bounds a broker keeps against many or misbehaving clients, on a real
//! `tern standalone`: thousands of idle HTTP/2 connections cost a bounded
//! amount of memory each and the broker keeps serving; past
//! `--limits-max-connections` a new connection is closed at once (and
//! counted) while those connected are served; a client that never reads
//! its receive streams holds up no one else and loses nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[allow(dead_code, reason = "this test uses part of the shared support")]
mod sdk_support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sdk_support::Standalone;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// Memory an idle HTTP/2 connection may cost the broker, as documented in
/// docs/configuration.md (about 14 KiB measured).
const IDLE_CONNECTION_BYTES: u64 = 64 * 1024;

/// The client preface and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

fn idle_connection(listen: &str) -> TcpStream {
    let mut s = TcpStream::connect(listen).unwrap();
    s.write_all(PREFACE).unwrap();
    s
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// This process's limit on open files.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

fn cli_ok(tern: &Standalone, args: &[&str]) -> bool {
    tern_harness::cli_command(TERN)
        .args(args)
        .args(["--endpoint", &tern.listen, "--timeout", "5"])
        .output()
        .unwrap()
        .status
        .success()
}

fn metric(address: &str, series: &str) -> u64 {
    let mut s = TcpStream::connect(address).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix(series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn thousands_of_idle_connections_cost_a_bounded_amount_and_others_are_served() {
    let tern = Standalone::start();
    tern.create_topic("idle", 1);
    // As many as the file limit lets both processes hold, up to 9,000.
    let n = open_files_limit().saturating_sub(500).min(9_000);
    assert!(n >= 500, "the open-file limit is too low for this test");
    let before = rss_bytes(tern.tern.pid());
    let idle: Vec<TcpStream> = (0..n).map(|_| idle_connection(&tern.listen)).collect();
    // Let the broker take them all.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_bytes(tern.tern.pid());
    let per = after.saturating_sub(before) / n as u64;
    eprintln!("{n} idle connections: {before} -> {after} bytes of RSS, {per} per connection");
    assert!(
        per < IDLE_CONNECTION_BYTES,
        "{per} bytes per idle connection (documented bound {IDLE_CONNECTION_BYTES})"
    );
    assert!(
        cli_ok(&tern, &["topic", "list"]),
        "not served with {n} idle connections open"
    );
    assert!(cli_ok(&tern, &["produce", "idle", "--body", "still here"]));
    drop(idle);
    tern.stop();
}

#[test]
fn past_the_connection_limit_new_connections_are_closed_at_once() {
    let metrics = format!("127.0.0.1:{}", sdk_support::free_port());
    let tern = Standalone::start_with(&[
        "--limits-max-connections",
        "100",
        "--metrics-listen",
        &metrics,
    ]);
    let held: Vec<TcpStream> = (0..100).map(|_| idle_connection(&tern.listen)).collect();
    std::thread::sleep(Duration::from_millis(500));
    // The 101st is closed by the broker: it reads end-of-file at once.
    let mut extra = TcpStream::connect(&tern.listen).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let started = Instant::now();
    let read = extra.read(&mut buf);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && started.elapsed() < Duration::from_secs(4),
        "the connection over the limit was kept: {read:?}"
    );
    assert!(
        !cli_ok(&tern, &["topic", "list"]),
        "a connection over the limit was served"
    );
    assert!(metric(&metrics, "tern_connections_total{outcome=\"over_limit\"}") >= 2);
    // Room again once some close.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cli_ok(&tern, &["topic", "list"]) {
        assert!(
            Instant::now() < deadline,
            "not served after the idle connections closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    tern.stop();
}
