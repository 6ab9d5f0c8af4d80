//! The result of a run: one JSON object (field names are documented in
//! docs/bench.md and kept stable) or a few lines for people.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::stats::{Errors, Sample};

const MIB: f64 = 1024.0 * 1024.0;

/// Everything a run reports.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// `produce`, `consume` or `e2e`.
    pub mode: &'static str,
    /// The access point connected to, `host:port`.
    pub endpoint: String,
    /// The topic, or with several the prefix of their names.
    pub topic: String,
    /// How many topics: 1, or N for `topic-0` .. `topic-<N-1>`.
    pub topics: usize,
    /// The consumer group (consume, e2e).
    pub group: Option<String>,
    /// Brokers the load went to.
    pub brokers: usize,
    /// Queues sent to (produce, e2e) or readable queues (consume).
    pub queues: usize,
    pub settings: Settings,
    /// Ended early by Ctrl-C.
    pub interrupted: bool,
    /// Length of the measured window, in seconds.
    pub elapsed_s: f64,
    /// Measured messages: sent (produce), received (consume, e2e).
    pub messages: u64,
    pub msg_per_s: f64,
    /// Body bytes of `messages` per second, in MiB.
    pub mib_per_s: f64,
    pub sent: Option<Flow>,
    pub received: Option<Received>,
    pub send_latency_us: Option<Latency>,
    pub e2e_latency_us: Option<Latency>,
    /// Errors in the measured window (sum of `errors`).
    pub error_count: u64,
    pub errors: Vec<ErrorCount>,
    /// Errors during the warm-up, not counted in `errors`.
    pub warmup_errors: u64,
    pub cpu: Cpu,
}

/// The options the run used.
#[derive(Debug, Serialize)]
pub(super) struct Settings {
    pub size: u32,
    pub batch: u32,
    pub inflight: u32,
    pub connections: u32,
    pub rate: f64,
    pub receivers: u32,
    pub receive_batch: u32,
    pub invisible_s: f64,
    pub long_polling_s: f64,
    pub warmup_s: f64,
    pub duration_s: Option<f64>,
    pub count: Option<u64>,
    pub threads: u32,
    pub tag: String,
}

/// Messages moved in one direction.
#[derive(Debug, Serialize)]
pub(super) struct Flow {
    pub messages: u64,
    pub bytes: u64,
    pub msg_per_s: f64,
    pub mib_per_s: f64,
}

impl Flow {
    pub(super) fn new(messages: u64, bytes: u64, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        let per_s = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        Self {
            messages,
            bytes,
            msg_per_s: round3(per_s(messages as f64)),
            mib_per_s: round3(per_s(bytes as f64 / MIB)),
        }
    }
}

/// The receiving side.
#[derive(Debug, Serialize)]
pub(super) struct Received {
    #[serde(flatten)]
    pub flow: Flow,
    /// e2e: messages received that this run did not send (older ones of
    /// the group), acknowledged and not counted.
    pub stale: u64,
    /// Receives that found nothing.
    pub empty_receives: u64,
    /// e2e: measured messages sent but not received before the consumers
    /// gave up waiting.
    pub missing: Option<u64>,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    /// `None` for an empty histogram.
    pub(super) fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        Some(Self {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// How often one call failed one way.
#[derive(Debug, Serialize)]
pub(super) struct ErrorCount {
    /// `send`, `receive`, `ack` or `heartbeat`.
    pub operation: &'static str,
    /// `status` (a RocketMQ status code in the answer), `grpc` (the call
    /// failed: transport, deadline...) or `response` (an answer that does
    /// not fit the request).
    pub kind: &'static str,
    /// The RocketMQ code (e.g. 42900) or the gRPC code (e.g. 14).
    pub code: Option<i32>,
    /// Its name: TOO_MANY_REQUESTS, UNAVAILABLE...
    pub name: &'static str,
    /// Messages (send, ack) or calls (receive, heartbeat).
    pub count: u64,
}

pub(super) fn error_counts(errors: &Errors) -> Vec<ErrorCount> {
    errors
        .sorted()
        .into_iter()
        .map(|(op, f, count)| ErrorCount {
            operation: op.name(),
            kind: f.kind(),
            code: f.code(),
            name: f.name(),
            count,
        })
        .collect()
}

/// CPU cost over the measured window.
#[derive(Debug, Default, Serialize)]
pub(super) struct Cpu {
    /// Wall time between the two samples, in seconds.
    pub window_s: Option<f64>,
    /// CPU time of this process (user + system), in seconds.
    pub bench_cpu_s: Option<f64>,
    /// `bench_cpu_s / window_s`.
    pub bench_cores: Option<f64>,
    /// CPU microseconds per measured message.
    pub bench_us_per_msg: Option<f64>,
    /// CPU seconds per million measured messages (the same number as
    /// `bench_us_per_msg`, in other units).
    pub bench_cpu_s_per_million_msgs: Option<f64>,
    pub broker_pid: Option<u32>,
    pub broker_cpu_s: Option<f64>,
    pub broker_cores: Option<f64>,
    pub broker_us_per_msg: Option<f64>,
    /// Resident memory of the broker at the start and end of the window.
    pub broker_rss_start_kib: Option<u64>,
    pub broker_rss_end_kib: Option<u64>,
}

impl Cpu {
    pub(super) fn between(
        start: Option<Sample>,
        end: Sample,
        messages: u64,
        broker_pid: Option<u32>,
    ) -> Self {
        let Some(start) = start else {
            return Self {
                broker_pid,
                ..Self::default()
            };
        };
        let window = end.at.saturating_duration_since(start.at).as_secs_f64();
        let cores = |cpu: f64| (window > 0.0).then(|| round3(cpu / window));
        let per_msg = |cpu: f64| (messages > 0).then(|| round3(cpu * 1e6 / messages as f64));
        let bench = end.cpu.saturating_sub(start.cpu).as_secs_f64();
        let mut out = Self {
            window_s: Some(round3(window)),
            bench_cpu_s: Some(round3(bench)),
            bench_cores: cores(bench),
            bench_us_per_msg: per_msg(bench),
            bench_cpu_s_per_million_msgs: per_msg(bench),
            broker_pid,
            ..Self::default()
        };
        if let (Some((c0, r0)), Some((c1, r1))) = (start.broker, end.broker) {
            let broker = c1.saturating_sub(c0).as_secs_f64();
            out.broker_cpu_s = Some(round3(broker));
            out.broker_cores = cores(broker);
            out.broker_us_per_msg = per_msg(broker);
            out.broker_rss_start_kib = Some(r0);
            out.broker_rss_end_kib = Some(r1);
        }
        out
    }
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A latency in microseconds for people: `512us`, `12.3ms`, `1.25s`.
fn human_us(us: u64) -> String {
    if us < 1000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1000.0)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn secs(d: f64) -> String {
    if d.fract() == 0.0 {
        format!("{d:.0}s")
    } else {
        format!("{d}s")
    }
}

impl Report {
    /// The report for people.
    pub(super) fn text(&self) -> String {
        let mut o = String::new();
        let s = &self.settings;
        let topics = if self.topics > 1 {
            format!(
                "{} topics {}-0 .. {}-{}",
                self.topics,
                self.topic,
                self.topic,
                self.topics - 1
            )
        } else {
            format!("topic {}", self.topic)
        };
        let _ = writeln!(
            o,
            "tern bench {}: {topics} at {} ({}, {})",
            self.mode,
            self.endpoint,
            plural(self.brokers as u64, "broker"),
            plural(self.queues as u64, "queue"),
        );
        if self.sent.is_some() {
            let pace = if s.rate > 0.0 {
                format!("open loop at {} msg/s", s.rate)
            } else {
                "as fast as possible".to_owned()
            };
            let _ = writeln!(
                o,
                "  producer: {} x {} in flight, batch {}, {}-byte bodies, {pace}",
                plural(u64::from(s.connections), "connection"),
                s.inflight,
                s.batch,
                s.size,
            );
        }
        if let Some(group) = &self.group {
            let _ = writeln!(
                o,
                "  consumer: group {group}, {} over {}, batch {}, invisible {}, long polling {}",
                plural(u64::from(s.receivers), "receiver"),
                plural(u64::from(s.connections), "connection"),
                s.receive_batch,
                secs(s.invisible_s),
                secs(s.long_polling_s),
            );
        }
        let _ = writeln!(
            o,
            "  warm-up {}, then {:.2}s measured{}",
            secs(s.warmup_s),
            self.elapsed_s,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        o.push('\n');
        if let Some(f) = &self.sent {
            let _ = writeln!(
                o,
                "sent        {:>12}  {:>12.1} msg/s  {:>9.2} MiB/s",
                f.messages, f.msg_per_s, f.mib_per_s
            );
        }
        if let Some(r) = &self.received {
            let _ = write!(
                o,
                "received    {:>12}  {:>12.1} msg/s  {:>9.2} MiB/s",
                r.flow.messages, r.flow.msg_per_s, r.flow.mib_per_s
            );
            let mut notes = Vec::new();
            if let Some(m) = r.missing.filter(|m| *m > 0) {
                notes.push(format!("{m} missing"));
            }
            if r.stale > 0 {
                notes.push(format!("{} stale", r.stale));
            }
            if notes.is_empty() {
                o.push('\n');
            } else {
                let _ = writeln!(o, "  ({})", notes.join(", "));
            }
            if r.stale * 20 > r.flow.messages.max(20) {
                let _ = writeln!(
                    o,
                    "note: the group had a backlog of messages sent before this run, received \
                     first; end-to-end latency includes that wait. Drain the group first \
                     (`tern bench consume --group ...`) or use a topic without history: on Tern \
                     a new group starts at the oldest message stored."
                );
            }
        }
        let rows: Vec<(&str, &Latency)> = [
            ("send", self.send_latency_us.as_ref()),
            ("end-to-end", self.e2e_latency_us.as_ref()),
        ]
        .into_iter()
        .filter_map(|(n, l)| Some((n, l?)))
        .collect();
        if !rows.is_empty() {
            o.push('\n');
            let _ = writeln!(
                o,
                "{:<12}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
                "latency", "p50", "p90", "p99", "p99.9", "max", "mean"
            );
            for (name, l) in rows {
                let _ = writeln!(
                    o,
                    "{:<12}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
                    name,
                    human_us(l.p50),
                    human_us(l.p90),
                    human_us(l.p99),
                    human_us(l.p999),
                    human_us(l.max),
                    human_us(l.mean.round() as u64),
                );
            }
        }
        o.push('\n');
        if self.errors.is_empty() {
            let _ = write!(o, "errors      none");
        } else {
            let _ = write!(o, "errors      {}", self.error_count);
            for e in &self.errors {
                let code = e.code.map(|c| format!(" ({c})")).unwrap_or_default();
                let unit = if matches!(e.operation, "send" | "ack") {
                    "message"
                } else {
                    "call"
                };
                let _ = write!(
                    o,
                    "\n  {} {} {}{code}: {}",
                    e.operation,
                    e.kind,
                    e.name,
                    plural(e.count, unit)
                );
            }
        }
        if self.warmup_errors > 0 {
            let _ = write!(o, " (and {} during the warm-up)", self.warmup_errors);
        }
        o.push('\n');
        let c = &self.cpu;
        match (c.bench_us_per_msg, c.bench_cores) {
            (Some(us), Some(cores)) => {
                let _ = writeln!(
                    o,
                    "bench CPU   {us:.2} us/msg ({us:.2} CPU-s per million messages), {cores:.2} cores"
                );
            }
            _ => {
                let _ = writeln!(o, "bench CPU   not measured (no messages in the window)");
            }
        }
        if let Some(pid) = c.broker_pid {
            match (c.broker_us_per_msg, c.broker_cores) {
                (Some(us), Some(cores)) => {
                    let _ = write!(
                        o,
                        "broker CPU  {us:.2} us/msg, {cores:.2} cores (pid {pid})"
                    );
                }
                _ => {
                    let _ = write!(o, "broker CPU  not measured (pid {pid})");
                }
            }
            if let (Some(a), Some(b)) = (c.broker_rss_start_kib, c.broker_rss_end_kib) {
                let _ = write!(
                    o,
                    "; RSS {:.1} MiB -> {:.1} MiB",
                    a as f64 / 1024.0,
                    b as f64 / 1024.0
                );
            }
            o.push('\n');
        }
        o
    }

    pub(super) fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer_pretty(&mut out, self)?;
            writeln!(out)?;
        } else {
            out.write_all(self.text().as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn latencies_come_from_the_histogram() {
        let mut h = super::super::stats::histogram();
        assert!(Latency::of(&h).is_none());
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let l = Latency::of(&h).unwrap();
        assert_eq!(l.count, 1000);
        assert_eq!((l.min, l.max), (1, 1000));
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
        assert!((499..=501).contains(&l.p50), "{}", l.p50);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(512), "512us");
        assert_eq!(human_us(12_345), "12.35ms");
        assert_eq!(human_us(1_250_000), "1.25s");
        assert_eq!(secs(5.0), "5s");
        assert_eq!(secs(0.5), "0.5s");
    }

    #[test]
    fn flows_divide_by_the_window() {
        let f = Flow::new(1000, 1024 * 1024, Duration::from_secs(2));
        assert_eq!(f.msg_per_s, 500.0);
        assert_eq!(f.mib_per_s, 0.5);
        assert_eq!(Flow::new(5, 5, Duration::ZERO).msg_per_s, 0.0);
    }
}
