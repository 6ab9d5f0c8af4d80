//! What the load tasks count: messages, bytes, latency histograms and
//! errors, kept per task (no sharing on the hot path) and merged at the
//! end; and CPU time and memory read from /proc.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Largest latency a histogram holds, in microseconds (one hour); larger
/// values are recorded as this.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub(super) fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// `d` in whole microseconds, at least 1 (the histogram's lowest value).
pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The call an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Op {
    Send,
    Receive,
    Ack,
    Heartbeat,
}

impl Op {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Receive => "receive",
            Self::Ack => "ack",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Failure {
    /// The broker answered with this RocketMQ status code.
    Status(i32),
    /// The call failed at the gRPC level (transport, deadline, refused
    /// stream...).
    Grpc(i32),
    /// The answer did not fit the request (a missing entry, say).
    Response,
}

impl Failure {
    pub(super) fn grpc(status: &tonic::Status) -> Self {
        Self::Grpc(status.code() as i32)
    }

    pub(super) fn kind(self) -> &'static str {
        match self {
            Self::Status(_) => "status",
            Self::Grpc(_) => "grpc",
            Self::Response => "response",
        }
    }

    pub(super) fn code(self) -> Option<i32> {
        match self {
            Self::Status(c) | Self::Grpc(c) => Some(c),
            Self::Response => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Status(c) => tern_client::code_name(c),
            Self::Grpc(c) => tern_client::grpc_code_name(tonic::Code::from(c)),
            Self::Response => "BAD_RESPONSE",
        }
    }
}

/// Errors by call and failure.
#[derive(Debug, Clone, Default)]
pub(super) struct Errors(HashMap<(Op, Failure), u64>);

impl Errors {
    pub(super) fn add(&mut self, op: Op, failure: Failure, n: u64) {
        *self.0.entry((op, failure)).or_insert(0) += n;
    }

    pub(super) fn merge(&mut self, other: &Self) {
        for (k, n) in &other.0 {
            *self.0.entry(*k).or_insert(0) += n;
        }
    }

    pub(super) fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Each (call, failure) with its count, most frequent first.
    pub(super) fn sorted(&self) -> Vec<(Op, Failure, u64)> {
        let mut v: Vec<_> = self.0.iter().map(|((o, f), n)| (*o, *f, *n)).collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        v
    }
}

/// What one load task saw in the measured window.
#[derive(Debug, Clone)]
pub(super) struct Tally {
    /// Messages sent (acknowledged by the broker) or received.
    pub messages: u64,
    /// Their body bytes.
    pub bytes: u64,
    /// Send latency (producers) in microseconds.
    pub latency: Histogram<u64>,
    /// End-to-end latency (consumers) in microseconds.
    pub e2e: Histogram<u64>,
    /// Errors in the measured window.
    pub errors: Errors,
    /// Errors during the warm-up (not in `errors`).
    pub warmup_errors: u64,
    /// Received messages sent before this run started (e2e).
    pub stale: u64,
    /// Receives that found nothing.
    pub empty_receives: u64,
    /// When the last measured message completed.
    pub last: Option<Instant>,
}

impl Tally {
    pub(super) fn new() -> Self {
        Self {
            messages: 0,
            bytes: 0,
            latency: histogram(),
            e2e: histogram(),
            errors: Errors::default(),
            warmup_errors: 0,
            stale: 0,
            empty_receives: 0,
            last: None,
        }
    }

    /// Counts an error of `n` messages or calls: in the window when
    /// `measured`, else as a warm-up error.
    pub(super) fn error(&mut self, measured: bool, op: Op, failure: Failure, n: u64) {
        if measured {
            self.errors.add(op, failure, n);
        } else {
            self.warmup_errors += n;
        }
    }

    pub(super) fn done_at(&mut self, t: Instant) {
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    pub(super) fn merge(&mut self, other: &Self) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.e2e.add(&other.e2e);
        self.errors.merge(&other.errors);
        self.warmup_errors += other.warmup_errors;
        self.stale += other.stale;
        self.empty_receives += other.empty_receives;
        if let Some(t) = other.last {
            self.done_at(t);
        }
    }
}

/// CPU time of this process (user + system), at nanosecond resolution
/// (`CLOCK_PROCESS_CPUTIME_ID`: utime + stime of /proc/self/stat without
/// their 10 ms ticks).
pub(super) fn self_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// CPU time (utime + stime) of process `pid`, from /proc/PID/stat.
pub(super) fn proc_cpu(pid: u32) -> std::io::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format"),
        )
    })?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// utime + stime, in clock ticks, of a /proc/PID/stat line. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are
/// counted after its closing parenthesis: state is field 3, utime 14,
/// stime 15.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of process `pid` in KiB, from VmRSS in
/// /proc/PID/status.
pub(super) fn proc_rss_kib(pid: u32) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS line"),
        )
    })
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU and memory at one moment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub at: Instant,
    pub cpu: Duration,
    /// The broker's CPU time and RSS (KiB), when a broker pid is given
    /// and readable.
    pub broker: Option<(Duration, u64)>,
}

impl Sample {
    pub(super) fn take(broker_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            cpu: self_cpu(),
            broker: broker_pid.and_then(|pid| Some((proc_cpu(pid).ok()?, proc_rss_kib(pid).ok()?))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_proc_stat_fields() {
        let line = "4242 (tern (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 9 0 12345 1000000 2000 rest";
        assert_eq!(parse_stat_ticks(line), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat_ticks(&own).is_some(), "{own}");
        assert!(proc_cpu(std::process::id()).is_ok());
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\ttern\nVmPeak:\t  2000 kB\nVmRSS:\t   1234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(1234));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(proc_rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::new();
        a.messages = 2;
        a.latency.record(100).unwrap();
        a.error(true, Op::Send, Failure::Status(42900), 3);
        let mut b = Tally::new();
        b.messages = 1;
        b.latency.record(300).unwrap();
        b.error(true, Op::Send, Failure::Status(42900), 1);
        b.error(false, Op::Send, Failure::Status(42900), 5);
        a.merge(&b);
        assert_eq!(a.messages, 3);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.errors.total(), 4);
        assert_eq!(a.warmup_errors, 5);
        let sorted = a.errors.sorted();
        assert_eq!(sorted[0].1.name(), "TOO_MANY_REQUESTS");
    }
}
