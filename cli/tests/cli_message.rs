//! `tern message get` and `tern message query` as a user runs them: the
//! real binary against a real `tern standalone` on a free port, with
//! messages sent by `tern produce`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tern_harness::{TernProcess, cli_command, free_port};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A running `tern standalone` and the endpoint the commands use.
struct Node {
    tern: TernProcess,
    endpoint: String,
    _tmp: tempfile::TempDir,
}

impl Node {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let endpoint = format!("127.0.0.1:{}", free_port());
        let mut tern =
            TernProcess::standalone_with(TERN, tmp.path().join("data"), &["--listen", &endpoint])
                .unwrap();
        tern.wait_for_log("listening", Duration::from_secs(30))
            .unwrap();
        Self {
            tern,
            endpoint,
            _tmp: tmp,
        }
    }

    /// Runs `tern ARGS --endpoint <this node>` without the test
    /// environment's CLI variables.
    fn run(&self, args: &[&str]) -> Output {
        cli_command(TERN)
            .args(args)
            .args(["--endpoint", &self.endpoint])
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "tern {args:?} failed ({}):\n{stdout}\n{}\nbroker log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.tern.log().unwrap_or_default()
        );
        stdout
    }

    /// Runs a command with `--output json`; parses its output.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Sends one message with `tern produce`; returns its id.
    #[track_caller]
    fn produce(&self, body: &str, key: &str) -> String {
        let sent = self.json(&[
            "produce",
            "orders",
            "--body",
            body,
            "--tag",
            "created",
            "--key",
            key,
            "--property",
            "region=eu",
        ]);
        sent["message_id"].as_str().unwrap().to_owned()
    }

    /// Runs a command that must fail with exit status 1; returns its
    /// standard error.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "tern {args:?}: {stderr}{}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    fn stop(mut self) {
        self.tern.terminate().unwrap();
    }
}

fn ids(result: &Value) -> Vec<&str> {
    result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect()
}

#[test]
fn get_by_id_query_by_key_and_by_time_range() {
    let node = Node::start();
    node.ok(&["topic", "create", "orders", "--queues", "2"]);

    // Five messages, two with key order-1; the last three stored later.
    let mut sent = Vec::new();
    for (i, key) in ["order-1", "order-2", "order-3"].iter().enumerate() {
        sent.push(node.produce(&format!("early {i}"), key));
    }
    std::thread::sleep(Duration::from_millis(50));
    for (i, key) in ["order-1", "order-4"].iter().enumerate() {
        sent.push(node.produce(&format!("late {i}"), key));
    }

    // By id: every field, as a person reads it and as JSON.
    let text = node.ok(&["message", "get", &sent[1]]);
    for needle in [
        format!("message {}", sent[1]),
        "topic:      orders".to_owned(),
        "tag:        created".to_owned(),
        "keys:       order-2".to_owned(),
        "properties: region=eu".to_owned(),
        "body:       early 1".to_owned(),
        "stored:     20".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} in\n{text}");
    }
    let got = node.json(&["message", "get", &sent[3]]);
    let got = &got.as_array().unwrap()[..];
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["message_id"], sent[3].as_str());
    assert_eq!(m["topic"], "orders");
    assert_eq!(m["body"], "late 0");
    assert_eq!(m["keys"], serde_json::json!(["order-1"]));
    assert_eq!(m["properties"]["region"], "eu");
    assert!(m["queue_id"].as_u64().unwrap() < 2);
    assert!(m["queue_offset"].is_u64());
    let late_start = m["store_timestamp_ms"].as_i64().unwrap();
    assert!(m["store_time"].as_str().unwrap().ends_with('Z'), "{m}");

    // By key: both order-1 messages, oldest first; a table for people.
    let by_key = node.json(&["message", "query", "--topic", "orders", "--key", "order-1"]);
    assert_eq!(ids(&by_key), [sent[0].as_str(), sent[3].as_str()]);
    assert_eq!(by_key["truncated"], false);
    let table = node.ok(&["message", "query", "--topic", "orders", "--key", "order-1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for cell in [
        "ID",
        "QUEUE",
        "OFFSET",
        "STORED",
        "TAG",
        "KEYS",
        "PROPERTIES",
        "BODY",
    ] {
        assert!(lines[0].contains(cell), "{cell} in {table}");
    }
    assert!(
        lines[1].contains(&sent[0]) && lines[1].contains("early 0"),
        "{table}"
    );
    assert!(
        lines[2].contains(&sent[3]) && lines[2].contains("late 0"),
        "{table}"
    );
    assert!(
        lines[2].contains("region=eu") && lines[2].contains("order-1"),
        "{table}"
    );

    // By time: RFC 3339 bounds split the early and the late messages.
    let since = node.json(&["message", "get", &sent[3]])[0]["store_time"]
        .as_str()
        .unwrap()
        .to_owned();
    let late = node.json(&["message", "query", "--topic", "orders", "--since", &since]);
    assert_eq!(ids(&late), [sent[3].as_str(), sent[4].as_str()]);
    let early = node.json(&["message", "query", "--topic", "orders", "--until", &since]);
    assert_eq!(
        ids(&early),
        &sent.iter().map(String::as_str).collect::<Vec<_>>()[..3]
    );
    for m in early["messages"].as_array().unwrap() {
        assert!(m["store_timestamp_ms"].as_i64().unwrap() < late_start);
    }
    // Relative times: everything was stored in the last hour, nothing
    // in the future.
    let recent = node.json(&["message", "query", "--topic", "orders", "--since", "1h"]);
    assert_eq!(ids(&recent).len(), 5);
    let future = node.json(&[
        "message",
        "query",
        "--topic",
        "orders",
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(ids(&future).is_empty());
    node.stop();
}

#[test]
fn max_limits_the_answer_with_a_note_and_unknown_ids_fail() {
    let node = Node::start();
    node.ok(&["topic", "create", "orders", "--queues", "2"]);
    let sent: Vec<String> = (0..4)
        .map(|i| node.produce(&format!("m{i}"), "same"))
        .collect();

    let two = node.json(&["message", "query", "--topic", "orders", "--max", "2"]);
    assert_eq!(
        ids(&two),
        [sent[0].as_str(), sent[1].as_str()],
        "the oldest two"
    );
    assert_eq!(two["truncated"], true);
    let table = node.ok(&["message", "query", "--topic", "orders", "--max", "2"]);
    assert!(
        table.contains("more messages match; showing the oldest 2 messages"),
        "{table}"
    );
    let newest = node.json(&[
        "message", "query", "-t", "orders", "--key", "same", "--max", "3",
    ]);
    assert_eq!(
        ids(&newest),
        [sent[1].as_str(), sent[2].as_str(), sent[3].as_str()]
    );
    assert_eq!(newest["truncated"], true);
    let none = node.ok(&["message", "query", "--topic", "orders", "--key", "nobody"]);
    assert_eq!(none.trim(), "no messages found in topic orders");

    let err = node.fails(&["message", "get", "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"]);
    assert!(
        err.contains("getting message 01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF: NOT_FOUND"),
        "{err}"
    );
    assert!(err.contains("no message with id"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let err = node.fails(&["message", "query", "--topic", "nope", "--key", "k"]);
    assert!(err.contains("NOT_FOUND") && err.contains("nope"), "{err}");
    let err = node.fails(&[
        "message", "query", "--topic", "orders", "--since", "now", "--until", "1h",
    ]);
    assert!(err.contains("later than"), "{err}");

    // Bad times are refused before anything is sent (clap: status 2).
    let out = node.run(&[
        "message",
        "query",
        "--topic",
        "orders",
        "--since",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    node.stop();
}
