//! `tern bench` against a real `tern standalone` on a free port: what it
//! reports for produce, consume and e2e runs, its open-loop rate, runs
//! over several topics (`--topics`, with the topics made by one `tern
//! topic create` of several names), its error for an unknown topic, and
//! its help. Only sanity bands are
//! checked, never timings: test machines are slow and shared.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tern_harness::{TernProcess, cli_command, free_port};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// Every option of `tern bench`.
const OPTIONS: &[&str] = &[
    "--endpoint",
    "--topic",
    "--topics",
    "--queues",
    "--size",
    "--batch",
    "--inflight",
    "--connections",
    "--rate",
    "--duration",
    "--count",
    "--warmup",
    "--tag",
    "--group",
    "--receivers",
    "--receive-batch",
    "--invisible",
    "--long-polling",
    "--broker-pid",
    "--threads",
    "--no-progress",
    "--output",
    "--timeout",
];

/// A running `tern standalone` and the endpoint to reach it.
struct Node {
    tern: TernProcess,
    endpoint: String,
    _tmp: tempfile::TempDir,
}

impl Node {
    /// A standalone broker with the topic `bench` (4 queues).
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let endpoint = format!("127.0.0.1:{}", free_port());
        let mut tern =
            TernProcess::standalone_with(TERN, tmp.path().join("data"), &["--listen", &endpoint])
                .unwrap();
        tern.wait_for_log("listening", Duration::from_secs(30))
            .unwrap();
        let node = Self {
            tern,
            endpoint,
            _tmp: tmp,
        };
        let out = node.run(&["topic", "create", "bench", "--queues", "4"]);
        assert!(out.status.success(), "{}", text(&out));
        node
    }

    fn run(&self, args: &[&str]) -> Output {
        cli_command(TERN)
            .args(args)
            .args(["--endpoint", &self.endpoint])
            .output()
            .unwrap()
    }

    /// Runs `tern bench ARGS --output json`, which must succeed; its
    /// report.
    #[track_caller]
    fn bench(&self, args: &[&str]) -> Value {
        let mut all = vec!["bench"];
        all.extend(args);
        all.extend(["--output", "json", "--no-progress"]);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "tern {all:?} failed ({}):\n{}\nbroker log:\n{}",
            out.status,
            text(&out),
            self.tern.log().unwrap_or_default()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    fn stop(mut self) {
        self.tern.terminate().unwrap();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Percentiles are present and ordered.
#[track_caller]
fn assert_ordered(latency: &Value) {
    let [min, p50, p90, p99, p999, max] =
        ["min", "p50", "p90", "p99", "p999", "max"].map(|k| u(&latency[k]));
    assert!(u(&latency["count"]) > 0, "{latency}");
    assert!(
        min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{latency}"
    );
    assert!(min >= 1, "{latency}");
}

#[test]
fn produce_then_consume_drains_what_was_sent() {
    let node = Node::start();
    let pid = node.tern.pid().to_string();

    let sent = node.bench(&[
        "produce",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--broker-pid",
        &pid,
    ]);
    assert_eq!(sent["mode"], "produce");
    assert_eq!(sent["topic"], "bench");
    assert_eq!(sent["queues"], 4);
    let messages = u(&sent["messages"]);
    assert!(messages > 0, "{sent}");
    assert_eq!(u(&sent["sent"]["messages"]), messages);
    assert_eq!(u(&sent["sent"]["bytes"]), messages * 1024);
    assert_eq!(sent["error_count"], 0, "{sent}");
    assert_eq!(sent["errors"], serde_json::json!([]));
    assert!(sent["msg_per_s"].as_f64().unwrap() > 0.0, "{sent}");
    assert!(sent["mib_per_s"].as_f64().unwrap() > 0.0, "{sent}");
    let elapsed = sent["elapsed_s"].as_f64().unwrap();
    assert!((2.0..30.0).contains(&elapsed), "{sent}");
    assert_ordered(&sent["send_latency_us"]);
    assert_eq!(u(&sent["send_latency_us"]["count"]), messages);
    assert!(sent["received"].is_null() && sent["e2e_latency_us"].is_null());
    let cpu = &sent["cpu"];
    assert!(cpu["bench_us_per_msg"].as_f64().unwrap() > 0.0, "{cpu}");
    assert_eq!(cpu["bench_us_per_msg"], cpu["bench_cpu_s_per_million_msgs"]);
    assert!(cpu["broker_us_per_msg"].as_f64().unwrap() > 0.0, "{cpu}");
    assert!(u(&cpu["broker_rss_start_kib"]) > 0, "{cpu}");
    assert!(u(&cpu["broker_rss_end_kib"]) > 0, "{cpu}");

    // Everything sent is there to drain; the group starts at the oldest
    // message (Tern).
    let count = messages.to_string();
    let got = node.bench(&[
        "consume",
        "--count",
        &count,
        "--duration",
        "120s",
        "--warmup",
        "0s",
    ]);
    assert_eq!(got["mode"], "consume");
    assert_eq!(got["group"], "bench-group");
    assert!(u(&got["messages"]) >= messages, "{got}");
    assert_eq!(got["error_count"], 0, "{got}");
    assert!(got["elapsed_s"].as_f64().unwrap() < 120.0, "{got}");
    assert!(got["sent"].is_null() && got["send_latency_us"].is_null());
    // produce stamps every message with its send time: the consumer
    // reports how old each was when it arrived.
    assert_ordered(&got["e2e_latency_us"]);

    // The group is drained: a short run finds nothing more.
    let empty = node.bench(&["consume", "--duration", "1s", "--warmup", "0s"]);
    assert_eq!(empty["messages"], 0, "{empty}");
    assert_eq!(empty["error_count"], 0, "{empty}");
    node.stop();
}

#[test]
fn e2e_records_end_to_end_latency_at_the_rate() {
    let node = Node::start();
    let report = node.bench(&[
        "e2e",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--group",
        "e2e-group",
    ]);
    assert_eq!(report["mode"], "e2e");
    // Open loop: the messages due in the window are 200 x 2 s.
    let sent = u(&report["sent"]["messages"]);
    assert!((300..=401).contains(&sent), "{report}");
    let received = u(&report["received"]["messages"]);
    assert!(received >= sent * 9 / 10, "{report}");
    assert_eq!(u(&report["messages"]), received);
    assert_eq!(report["received"]["missing"], sent.saturating_sub(received));
    assert_eq!(report["received"]["stale"], 0, "{report}");
    assert_eq!(report["error_count"], 0, "{report}");
    assert_ordered(&report["send_latency_us"]);
    assert_ordered(&report["e2e_latency_us"]);
    assert_eq!(u(&report["e2e_latency_us"]["count"]), received);

    // The table form says the same for people.
    let out = node.run(&[
        "bench",
        "e2e",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--group",
        "e2e-group",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for needle in [
        "tern bench e2e: topic bench",
        "sent",
        "received",
        "end-to-end",
        "p99.9",
        "errors      none",
        "bench CPU",
    ] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    node.stop();
}

#[test]
fn an_open_loop_sends_about_rate_times_duration() {
    let node = Node::start();
    // The warm-up's messages (due in its first second) are not counted.
    let report = node.bench(&[
        "produce",
        "--rate",
        "500",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--queues",
        "2",
    ]);
    let sent = u(&report["messages"]);
    assert!((700..=1001).contains(&sent), "{report}");
    assert_eq!(report["queues"], 2);
    assert_eq!(report["settings"]["rate"], 500.0);
    assert_eq!(report["error_count"], 0, "{report}");
    let rate = report["msg_per_s"].as_f64().unwrap();
    assert!((250.0..=600.0).contains(&rate), "{report}");
    assert_ordered(&report["send_latency_us"]);

    // --count ends a closed-loop run after exactly that many messages,
    // sent in batches.
    let counted = node.bench(&[
        "produce",
        "--count",
        "1000",
        "--batch",
        "16",
        "--warmup",
        "0s",
        "--connections",
        "2",
    ]);
    assert_eq!(counted["messages"], 1000, "{counted}");
    assert_eq!(counted["error_count"], 0, "{counted}");
    node.stop();
}

/// Messages stored in `topic`: the sum over its queues of max - min
/// offset.
fn stored(node: &Node, topic: &str) -> u64 {
    let out = node.run(&["topic", "describe", topic, "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    d["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| u(&q["max_offset"]) - u(&q["min_offset"]))
        .sum()
}

#[test]
fn several_topics_share_the_load() {
    let node = Node::start();
    // One `tern topic create` makes several topics alike.
    let out = node.run(&[
        "topic", "create", "multi-0", "multi-1", "multi-2", "--queues", "2",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for i in 0..3 {
        assert!(
            shown.contains(&format!("created topic multi-{i}: 2 queues")),
            "{shown}"
        );
    }
    // One that exists is reported; the others are still created.
    let out = node.run(&["topic", "create", "multi-2", "multi-3", "--queues", "2"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("multi-2") && shown.contains("1 of 2 topics not created"),
        "{shown}"
    );
    assert!(shown.contains("created topic multi-3"), "{shown}");

    // Sends take the topics (and their queues) in turn: as many to each.
    let sent = node.bench(&[
        "produce", "--topic", "multi", "--topics", "4", "--count", "400", "--warmup", "0s",
    ]);
    assert_eq!(sent["topic"], "multi");
    assert_eq!(sent["topics"], 4);
    assert_eq!(sent["queues"], 8);
    assert_eq!(sent["messages"], 400, "{sent}");
    assert_eq!(sent["error_count"], 0, "{sent}");
    for i in 0..4 {
        assert_eq!(stored(&node, &format!("multi-{i}")), 100, "multi-{i}");
    }

    // One group subscribed to every topic drains them all, with fewer
    // receive loops than topics.
    let got = node.bench(&[
        "consume",
        "--topic",
        "multi",
        "--topics",
        "4",
        "--receivers",
        "2",
        "--count",
        "400",
        "--duration",
        "120s",
        "--warmup",
        "0s",
        "--group",
        "multi-group",
    ]);
    assert_eq!(got["topics"], 4);
    assert_eq!(got["queues"], 8);
    assert!(u(&got["messages"]) >= 400, "{got}");
    assert_eq!(got["error_count"], 0, "{got}");

    // e2e over the topics: what was sent in the window arrives.
    let report = node.bench(&[
        "e2e",
        "--topic",
        "multi",
        "--topics",
        "4",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--group",
        "multi-e2e",
    ]);
    let sent = u(&report["sent"]["messages"]);
    assert!(sent >= 300, "{report}");
    assert_eq!(report["received"]["missing"], 0, "{report}");
    assert_eq!(report["error_count"], 0, "{report}");

    // The table names the range of topics; a missing one is a clear error.
    let out = node.run(&[
        "bench", "produce", "--topic", "multi", "--topics", "4", "--count", "10", "--warmup", "0s",
    ]);
    assert!(
        text(&out).contains("4 topics multi-0 .. multi-3"),
        "{}",
        text(&out)
    );
    let out = node.run(&["bench", "produce", "--topic", "multi", "--topics", "5"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("topic multi-4 does not exist"), "{shown}");
    node.stop();
}

#[test]
fn an_unknown_topic_is_a_clear_error() {
    let node = Node::start();
    for mode in ["produce", "consume", "e2e"] {
        let out = node.run(&["bench", mode, "--topic", "nope", "--duration", "1s"]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {shown}");
        assert!(
            shown.contains("topic nope does not exist") && shown.contains("tern topic create"),
            "{mode}: {shown}"
        );
        assert!(out.stdout.is_empty(), "{mode}: {shown}");
    }
    node.stop();

    // Nothing listening: a clear error too.
    let out = cli_command(TERN)
        .args(["bench", "produce", "--endpoint"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
}

#[test]
fn help_mentions_every_option() {
    let out = cli_command(TERN)
        .args(["bench", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in OPTIONS {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
    for needle in [
        "produce",
        "consume",
        "e2e",
        "[default: bench]",
        "[default: 1024]",
        "[default: 64]",
        "[default: 5s]",
        "[default: bench-group]",
        "[default: 30s]",
        "open loop",
        "bench-sent-at-us",
        "docs/bench.md",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    // The top-level help lists the command.
    let out = cli_command(TERN).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("bench"));
    // A bad option value is refused by the parser.
    let out = cli_command(TERN)
        .args(["bench", "produce", "--duration", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
