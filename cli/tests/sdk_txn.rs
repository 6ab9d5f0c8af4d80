//! Transactional messages with the official Apache RocketMQ Python SDK
//! (PyPI `rocketmq-python-client`), and the Go and Java ones, against real
//! `tern standalone` processes with short transaction checks
//! (`--transaction-*` flags):
//!
//! - a committed transaction is delivered, a rolled-back one never, and an
//!   orphaned one (neither committed nor rolled back) is checked through
//!   the producer's `TransactionChecker`, which commits it;
//! - an orphan whose producer left survives a `kill -9` of the broker and
//!   is checked by a producer that connects after the restart;
//! - an orphan nobody answers for ends by the configured default
//!   resolution (commit here), logged.
//!
//! `scripts/test` installs the SDKs (into `~/.cache/tern/`) and sets
//! `TERN_PYTHON`, `TERN_GO_SDK_BIN` and `TERN_JAVA_SDK_JAR`; without one
//! its tests say so and do not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;
use std::time::Duration;

use sdk_support::{MessageType, Standalone};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_txn.py");

/// Quick checks: the first one a second after the send, then every two.
const QUICK_CHECKS: [&str; 4] = [
    "--transaction-first-check-secs",
    "1",
    "--transaction-check-interval-secs",
    "2",
];

/// A standalone broker with the transaction checks `checks` and a
/// TRANSACTION topic `topic` of `queues` queues.
fn start(checks: &[&str], topic: &str, queues: i32) -> Standalone {
    let tern = Standalone::start_with(checks);
    tern.create_typed(topic, queues, MessageType::Transaction);
    tern
}

/// The Python script against `tern`, with `args`.
fn script(python: &str, tern: &Standalone, args: &[&str]) -> Command {
    let mut c = Command::new(python);
    c.arg(SCRIPT).arg(&tern.listen).args(args);
    c
}

#[track_caller]
fn python() -> Option<String> {
    sdk_support::sdk("TERN_PYTHON", "Python transaction test")
}

#[test]
fn python_commit_rollback_and_a_checked_orphan() {
    let Some(python) = python() else { return };
    let tern = start(&QUICK_CHECKS, "sdk-txn", 2);
    let args = ["sdk-txn", "all", "a"];
    tern.run_client(
        "python all",
        &mut script(&python, &tern, &args),
        "txn ok True committed True rolled_back_absent True orphan_checked True",
    );
    tern.stop();
}

#[test]
fn python_orphan_is_checked_after_a_broker_kill_and_restart() {
    let Some(python) = python() else { return };
    let checks = [
        "--transaction-first-check-secs",
        "2",
        "--transaction-check-interval-secs",
        "1",
        "--transaction-max-checks",
        "600",
    ];
    let mut tern = start(&checks, "sdk-txn-restart", 2);
    let args = ["sdk-txn-restart", "orphan", "r"];
    tern.run_client(
        "python orphan",
        &mut script(&python, &tern, &args),
        "orphan sent tern-half-",
    );
    // No producer is connected: checks find nobody to ask.
    std::thread::sleep(Duration::from_secs(3));
    tern.kill9_restart();
    let log = tern.tern.log().unwrap();
    assert!(
        log.contains("unresolved half messages scheduled for checks again"),
        "{log}"
    );
    let args = ["sdk-txn-restart", "check", "r"];
    tern.run_client(
        "python check",
        &mut script(&python, &tern, &args),
        "check ok True checked True delivered True",
    );
    tern.stop();
}

#[test]
fn python_orphan_nobody_answers_ends_by_the_default_resolution() {
    let Some(python) = python() else { return };
    let checks = [
        "--transaction-first-check-secs",
        "1",
        "--transaction-check-interval-secs",
        "1",
        "--transaction-max-checks",
        "2",
        "--transaction-default-resolution",
        "commit",
    ];
    let tern = start(&checks, "sdk-txn-default", 1);
    let args = ["sdk-txn-default", "orphan", "d"];
    tern.run_client(
        "python orphan",
        &mut script(&python, &tern, &args),
        "orphan sent",
    );
    let args = ["sdk-txn-default", "receive", "d"];
    tern.run_client(
        "python receive",
        &mut script(&python, &tern, &args),
        "receive ok True",
    );
    let log = tern.tern.log().unwrap();
    assert!(log.contains("ended by the default resolution"), "{log}");
    assert!(
        log.contains("resolution=\"commit\"") || log.contains("resolution=commit"),
        "{log}"
    );
    tern.stop();
}

#[test]
fn go_commit_rollback_and_a_checked_orphan() {
    let Some(bin) = sdk_support::sdk("TERN_GO_SDK_BIN", "Go transaction test") else {
        return;
    };
    let tern = start(&QUICK_CHECKS, "sdk-go-txn", 2);
    tern.run_client(
        "go SDK",
        Command::new(&bin)
            .args([&tern.listen, "sdk-go-txn", "go-txn-group"])
            .env("TERN_GO_SCENARIO", "txn"),
        "go txn ok true committed true rolled_back_absent true orphan_checked true",
    );
    tern.stop();
}

#[test]
fn java_commit_rollback_and_a_checked_orphan() {
    let Some(jar) = sdk_support::sdk("TERN_JAVA_SDK_JAR", "Java transaction test") else {
        return;
    };
    let tern = start(&QUICK_CHECKS, "sdk-java-txn", 2);
    tern.run_client(
        "java SDK",
        Command::new("java")
            .args(["-cp", &jar, "tern.sdktest.Txn"])
            .args([&tern.listen, "sdk-java-txn", "java-txn-group"]),
        "java txn ok true committed true rolled_back_absent true orphan_checked true",
    );
    tern.stop();
}
