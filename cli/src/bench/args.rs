//! The command line of `tern bench`: one set of options for the three
//! modes, each option saying which modes read it.

use std::time::Duration;

use clap::{Args, ValueEnum};
use tern_client::{GroupName, TopicName};

use crate::admin::Conn;

/// Long help of `tern bench`.
pub(crate) const LONG_ABOUT: &str = "Generate load against a RocketMQ 5 gRPC endpoint and \
report throughput, latency percentiles, errors and CPU cost.\n\n\
It speaks apache.rocketmq.v2 like the official SDKs do (Telemetry settings first, \
heartbeats every 10 s, the x-mq-* headers), so it drives `tern standalone`, `tern broker`, \
a Tern name server or Apache RocketMQ 5's proxy alike. The topic must exist; a consumer \
group that does not is created by the broker (Tern, and Apache with its defaults).\n\n\
Modes:\n  \
produce  send messages (a --size body, a tag, a unique message id each) as fast as \
--inflight allows, or at --rate\n  \
consume  receive and acknowledge as --group with --receivers concurrent receive loops\n  \
e2e      both at once: a producer at --rate and the consumers; end-to-end latency is \
the receive time minus the message's intended send time, carried in the user property \
`bench-sent-at-us` (microseconds since the Unix epoch), which produce also sets\n\n\
Timing: the first --warmup is excluded from every figure; then the run measures for \
--duration (default 15s) or until --count messages, whichever comes first (Ctrl-C \
ends it early and still reports). With --rate the producer runs an open loop: message i \
is due at start + i/rate and its latency is counted from that due time, so a broker that \
stalls cannot hide the delay by slowing the sender down (coordinated omission). With \
--rate 0 (the default) each in-flight slot sends again as soon as its answer arrives and \
latency is counted from the call.\n\n\
Report: messages, elapsed time, msg/s, MiB/s (bodies only), send and end-to-end latency \
percentiles (p50, p90, p99, p99.9, max), errors by operation and status code, and the CPU \
time of this process over the measured window per message (with --broker-pid, the \
broker's too, and its resident memory at the start and end of the window). --output json \
prints one JSON object instead; docs/bench.md describes its fields. A progress line is \
written to standard error once a second when it is a terminal.\n\n\
Exit status: 0 when the run completed, even with errors (they are reported); 1 when it \
could not start (unreachable endpoint, unknown topic, refused settings).\n\n\
Examples:\n  \
tern topic create bench\n  \
tern bench produce --duration 30s --inflight 128\n  \
tern topic create $(seq -f 'many-%g' 0 999) --queues 8 && tern bench produce --topic many --topics 1000\n  \
tern bench consume --group bench-group --count 1000000\n  \
tern bench e2e --rate 20000 --duration 60s --broker-pid $(pgrep -f 'tern standalone')\n  \
tern bench produce --rate 5000 --output json | jq .send_latency_us";

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Send messages
    Produce,
    /// Receive and acknowledge messages
    Consume,
    /// Send at --rate and receive at the same time; end-to-end latency
    E2e,
}

impl Mode {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Consume => "consume",
            Self::E2e => "e2e",
        }
    }

    pub(super) fn produces(self) -> bool {
        matches!(self, Self::Produce | Self::E2e)
    }

    pub(super) fn consumes(self) -> bool {
        matches!(self, Self::Consume | Self::E2e)
    }
}

/// Measured time when neither --duration nor --count is given.
pub(super) const DEFAULT_DURATION: Duration = Duration::from_secs(15);

/// Arguments of `tern bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure: produce, consume or e2e
    #[arg(value_enum)]
    pub mode: Mode,

    /// Topic to send to and receive from (it must exist); with --topics N,
    /// the prefix of the N topics
    #[arg(long, short = 't', value_name = "TOPIC", default_value = "bench",
          value_parser = parse_topic)]
    pub topic: TopicName,

    /// Drive N topics at once: TOPIC-0 .. TOPIC-<N-1> (they must exist)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        long_help = "Drive N topics at once. With N > 1 the \
                     run uses the topics TOPIC-0, TOPIC-1, .. TOPIC-<N-1> (the --topic \
                     name, a dash, and the number in decimal without padding), which must \
                     exist: e.g. `tern topic create $(seq -f 'bench-%g' 0 999)`. Each \
                     topic's route is looked up at the start (64 QueryRoute calls in \
                     flight). Sends take the topics in turn, round-robin (the first queue \
                     of each, then the second of each, ...); each client's settings name \
                     every topic (a producer publishing all of them, a consumer group \
                     subscribed to all of them). A ReceiveMessage names one topic, so the \
                     --receivers receive loops share the topics out and each takes its \
                     topics in turn, one receive each, as the official simple consumers do. \
                     A receive of a topic with nothing to deliver waits the broker's \
                     shortest long polling (5 s on Tern and Apache RocketMQ) whatever \
                     --long-polling says, so with many topics and few messages each, a \
                     loop's round over its topics is slow: such runs measure sending \
                     (produce) rather than receiving."
    )]
    pub topics: u32,

    /// [produce, e2e] Spread sends over the first N writable queues of the
    /// route only [default: every queue of the route]
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        long_help = "[produce, e2e] Spread sends over the first N writable queues of the \
                     topic's route (from QueryRoute) only, of each topic's with --topics \
                     [default: every writable queue]. \
                     Each SendMessage names its queue, round-robin; brokers may choose the \
                     queue themselves (Tern and Apache's proxy do, round-robin), so this is \
                     mostly informative. Consumers always receive from every queue."
    )]
    pub queues: Option<u32>,

    /// [produce, e2e] Body size of each message, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=67_108_864))]
    pub size: u32,

    /// [produce, e2e] Messages per SendMessage call
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: u32,

    /// [produce, e2e] SendMessage calls in flight on each connection
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub inflight: u32,

    /// HTTP/2 connections per broker, for the producer and (apart) for the
    /// consumers
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=256),
        long_help = "HTTP/2 connections per broker. The producer opens this \
                     many to each broker holding writable queues, each with --inflight calls \
                     in flight; the consumers open as many again, and their --receivers \
                     receive loops take turns over them. Each connection is one client \
                     (its own client id, Telemetry settings and heartbeats)."
    )]
    pub connections: u32,

    /// [produce, e2e] Messages per second, open loop; 0 = as fast as
    /// possible
    #[arg(
        long,
        value_name = "MSG_PER_S",
        default_value_t = 0.0,
        value_parser = parse_rate,
        long_help = "[produce, e2e] Messages per second, open loop; 0 sends as fast as \
                     --inflight allows. Message i is due at start + i/rate, whatever the \
                     answers to earlier ones; its latency is counted from that due time, so \
                     a broker stall shows as latency of every message due during it (only \
                     the sender's own timer lateness, under a millisecond, is left out when \
                     a slot was free in time). If all --inflight slots are busy, due \
                     messages wait (and their latency grows), so fewer than rate x duration \
                     may be sent: raise --inflight or --connections."
    )]
    pub rate: f64,

    /// Measured time after the warm-up, e.g. 15s, 500ms, 2m [default: 15s,
    /// or none with --count]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many measured messages (sent for produce and e2e,
    /// received for consume)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Time to run before measuring; excluded from every figure
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// [produce, e2e] Tag of every message
    #[arg(long, value_name = "TAG", default_value = "bench")]
    pub tag: String,

    /// [consume, e2e] Consumer group to receive as
    #[arg(long, short = 'g', value_name = "GROUP", default_value = "bench-group",
          value_parser = parse_group)]
    pub group: GroupName,

    /// [consume, e2e] Concurrent receive loops (each receives, then
    /// acknowledges what it got)
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub receivers: u32,

    /// [consume, e2e] Most messages per ReceiveMessage call
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub receive_batch: u32,

    /// [consume, e2e] How long a received message stays invisible to the
    /// group unless acknowledged
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub invisible: Duration,

    /// [consume, e2e] How long the broker may hold a ReceiveMessage while
    /// nothing arrives (brokers clamp it to 5s..20s)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub long_polling: Duration,

    /// Process id of the broker on this host: report its CPU per message and
    /// its memory (from /proc/PID/stat and /proc/PID/status)
    #[arg(
        long,
        value_name = "PID",
        long_help = "Process id of the broker, when it runs on this host. Its CPU time \
                     (utime + stime of /proc/PID/stat) and resident memory (VmRSS of \
                     /proc/PID/status) are read at the start and end of the measured \
                     window, and reported as CPU microseconds per message, cores used, and \
                     RSS at start and end."
    )]
    pub broker_pid: Option<u32>,

    /// Runtime threads of this process; 1 runs everything on one thread
    /// (the cheapest per message)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,

    /// Do not write the progress line to standard error (it is written
    /// only to a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub conn: Conn,
}

impl BenchArgs {
    /// The measured time: --duration, else 15 s unless --count is given.
    pub(super) fn measured_time(&self) -> Option<Duration> {
        match (self.duration, self.count) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_DURATION),
        }
    }
}

fn parse_topic(text: &str) -> Result<TopicName, String> {
    TopicName::new(text).map_err(|e| e.to_string())
}

fn parse_group(text: &str) -> Result<GroupName, String> {
    GroupName::new(text).map_err(|e| e.to_string())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "`{text}` is not a rate: give messages per second, 0 or more"
        )),
    }
}

/// `15s`, `500ms`, `2m`, `1h`, `1.5s`, `100us`; a bare number is seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 15s, 500ms or 2m"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use us, ms, s, m or h"
            ));
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert_eq!(parse_rate("2500.5").unwrap(), 2500.5);
        assert!(parse_rate("-3").is_err());
        assert!(parse_rate("inf").is_err());
    }
}
