//! The official Apache RocketMQ Node.js SDK (npm `rocketmq-client-nodejs`)
//! against a real `tern standalone` process: its producer sends, its simple
//! consumer receives and acks, each message exactly once; delayed messages
//! arrive on time; FIFO messages are acknowledged in send order per message
//! group through redeliveries; transactions commit, roll back, and an
//! orphan is resolved through the producer's `TransactionChecker`.
//!
//! `scripts/test` installs the SDK (pinned by `tests/sdk/node/package.json`)
//! into a cached directory and sets `TERN_NODE_SDK_DIR` to it; without it
//! this test says so and does not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sdk_support::{MessageType, Standalone};

/// The SDK's `node_modules` and the `node` to run, or `None` to skip (see
/// [`sdk_support::sdk`]).
#[track_caller]
fn node_sdk(what: &str) -> Option<(PathBuf, String)> {
    let sdk_dir = sdk_support::sdk("TERN_NODE_SDK_DIR", &format!("Node.js {what} test"))?;
    let node = std::env::var("TERN_NODE").unwrap_or_else(|_| "node".to_owned());
    Some((Path::new(&sdk_dir).join("node_modules"), node))
}

/// `node tests/sdk/node/<script> ARGS`, finding the SDK through NODE_PATH.
fn node_script(node: &str, modules: &Path, script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(node);
    cmd.env("NODE_PATH", modules)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/sdk/node")
                .join(script),
        )
        .args(args);
    cmd
}

#[test]
fn node_producer_and_simple_consumer() {
    let Some((modules, node)) = node_sdk("SDK") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_topic("sdk-node", 4);
    // The scripts stay in the source tree; `require` finds the SDK through
    // NODE_PATH, which Node consults after the script's own directories.
    tern.run_client(
        "node SDK",
        &mut node_script(
            &node,
            &modules,
            "simple.js",
            &[&tern.listen, "sdk-node", "node-group", "50"],
        ),
        "received 50 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn node_delayed_messages_arrive_on_time() {
    let Some((modules, node)) = node_sdk("delay") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_typed("sdk-node-delay", 2, MessageType::Delay);
    tern.run_client(
        "node SDK (delay)",
        &mut node_script(
            &node,
            &modules,
            "delay.js",
            &[&tern.listen, "sdk-node-delay", "node-delay", "30", "1000"],
        ),
        "received 30 duplicates 0 missing 0 wrong 0",
    );
    tern.stop();
}

#[test]
fn node_fifo_order_per_message_group_with_retries() {
    let Some((modules, node)) = node_sdk("FIFO") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_typed("sdk-node-fifo", 4, MessageType::Fifo);
    tern.cli(&["group", "create", "node-fifo", "--fifo"]);
    // 20 message groups of 25: 25 of the 500 (one or two in every group) are
    // left unacknowledged once and come back after 3 s.
    tern.run_client(
        "node SDK (FIFO)",
        &mut node_script(
            &node,
            &modules,
            "fifo.js",
            &[&tern.listen, "sdk-node-fifo", "node-fifo", "20", "25"],
        ),
        "fifo ok true",
    );
    tern.stop();
}

#[test]
fn node_commit_rollback_and_a_checked_orphan() {
    let Some((modules, node)) = node_sdk("transaction") else {
        return;
    };
    // Half messages checked 1 s after they are stored and every 2 s after.
    let tern = Standalone::start_with(&[
        "--transaction-first-check-secs",
        "1",
        "--transaction-check-interval-secs",
        "2",
    ]);
    tern.create_typed("sdk-node-txn", 2, MessageType::Transaction);
    tern.run_client(
        "node SDK (transactions)",
        &mut node_script(
            &node,
            &modules,
            "txn.js",
            &[&tern.listen, "sdk-node-txn", "node-txn"],
        ),
        "txn ok true committed true rolled_back_absent true orphan_checked true",
    );
    tern.stop();
}

/// `tern group describe GROUP --output json`, parsed.
fn describe_json(tern: &Standalone, group: &str) -> serde_json::Value {
    let out = tern.cli(&["group", "describe", group, "--output", "json"]);
    serde_json::from_str(&out).unwrap()
}

/// The sums of `inflight` and `held` over every queue in a `describe_json`.
fn inflight_and_held(described: &serde_json::Value) -> (u64, u64) {
    let queues = described["topics"][0]["queues"].as_array().unwrap();
    let sum = |field: &str| {
        queues
            .iter()
            .map(|q| q[field].as_u64().unwrap_or_else(|| panic!("{q}")))
            .sum()
    };
    (sum("inflight"), sum("held"))
}

#[test]
fn group_describe_shows_fifo_messages_held_behind_their_head() {
    let Some((modules, node)) = node_sdk("FIFO hold") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_typed("sdk-node-hold", 2, MessageType::Fifo);
    tern.cli(&["group", "create", "node-hold", "--fifo"]);

    // Five messages of one message group: the script receives the first and
    // keeps it unacknowledged until it reads a line, so the other four are
    // held.
    let mut client = node_script(
        &node,
        &modules,
        "hold.js",
        &[&tern.listen, "sdk-node-hold", "node-hold", "5"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "holding h:0 then \n");

    let described = describe_json(&tern, "node-hold");
    assert_eq!(inflight_and_held(&described), (1, 4), "{described}");
    let table = tern.cli(&["group", "describe", "node-hold"]);
    let header = table.lines().find(|l| l.starts_with("TOPIC"));
    assert!(
        header.is_some_and(|h| h.trim_end().ends_with("INFLIGHT  HELD")),
        "{table}"
    );
    // topic, queue, broker offset, consumer offset, lag, inflight, held.
    let row: Vec<&str> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&"sdk-node-hold") && cells.get(2) == Some(&"5"))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row[2..], ["5", "0", "5", "1", "4"], "{table}");

    client.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = client.wait().unwrap();
    assert!(
        status.success() && rest.contains("hold ok true"),
        "{status}: {line}{rest}"
    );
    let described = describe_json(&tern, "node-hold");
    assert_eq!(inflight_and_held(&described), (0, 0), "{described}");
    tern.stop();
}
