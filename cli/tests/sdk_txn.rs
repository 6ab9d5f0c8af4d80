//! Transactional messages with the official Apache RocketMQ Python SDK
//! (PyPI `rocketmq-python-client`) against real `tern broker` processes
//! (no name server: routes name the broker itself) with short transaction
//! checks:
//!
//! - a committed transaction is delivered, a rolled-back one never, and an
//!   orphaned one (neither committed nor rolled back) is checked through
//!   the producer's `TransactionChecker`, which commits it;
//! - an orphan whose producer left survives a `kill -9` of the broker and
//!   is checked by a producer that connects after the restart;
//! - an orphan nobody answers for ends by the configured default
//!   resolution (commit here), logged.
//!
//! `scripts/test` installs the SDK into a cached virtualenv and sets
//! `TERN_PYTHON` to its interpreter; without it this test says so and does
//! not run.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tern_harness::TernProcess;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, MessageType, Permission, Topic};

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_txn.py");

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `tern broker` on `port` with its data in `dir` and the
/// transaction checks `checks` (`--transaction-*` flags).
fn broker(dir: &Path, port: u16, checks: &[&str]) -> TernProcess {
    let data = dir.join("data");
    let mut cmd = Command::new(TERN);
    cmd.args(["--log-format", "text", "broker", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(checks)
        .env("RUST_LOG", "info");
    let mut tern = TernProcess::spawn(cmd, &data).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    tern
}

/// Creates a read-write TRANSACTION topic through the admin API on `port`.
fn create_txn_topic(port: u16, name: &str, queues: i32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut admin = TernAdminClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        admin
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: name.to_owned(),
                    queue_count: queues,
                    message_type: MessageType::Transaction as i32,
                    permission: Permission::ReadWrite as i32,
                }),
            })
            .await
            .unwrap();
    });
}

/// Runs the script in `mode`; asserts it succeeded and printed `expected`.
/// Returns its output.
#[track_caller]
fn run(python: &str, tern: &TernProcess, port: u16, args: &[&str], expected: &str) -> String {
    let endpoint = format!("127.0.0.1:{port}");
    let out = Command::new(python)
        .arg(SCRIPT)
        .arg(&endpoint)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("python {args:?} output:\n{stdout}{stderr}");
    assert!(
        out.status.success() && stdout.contains(expected),
        "python {args:?} failed ({}):\n{stdout}\n{stderr}\nbroker log:\n{}",
        out.status,
        tern.log().unwrap_or_default()
    );
    stdout
}

fn python() -> Option<String> {
    let p = std::env::var("TERN_PYTHON").ok();
    if p.is_none() {
        eprintln!("TERN_PYTHON is not set (scripts/test sets it): Python transaction test not run");
    }
    p
}

#[test]
fn python_commit_rollback_and_a_checked_orphan() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut tern = broker(
        tmp.path(),
        port,
        &[
            "--transaction-first-check-secs",
            "1",
            "--transaction-check-interval-secs",
            "2",
        ],
    );
    create_txn_topic(port, "sdk-txn", 2);
    run(
        &python,
        &tern,
        port,
        &["sdk-txn", "all", "a"],
        "txn ok True committed True rolled_back_absent True orphan_checked True",
    );
    tern.terminate().unwrap();
}

#[test]
fn python_orphan_is_checked_after_a_broker_kill_and_restart() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let checks = [
        "--transaction-first-check-secs",
        "2",
        "--transaction-check-interval-secs",
        "1",
        "--transaction-max-checks",
        "600",
    ];
    let mut tern = broker(tmp.path(), port, &checks);
    create_txn_topic(port, "sdk-txn-restart", 2);
    let sent = run(
        &python,
        &tern,
        port,
        &["sdk-txn-restart", "orphan", "r"],
        "orphan sent tern-half-",
    );
    // No producer is connected: checks find nobody to ask.
    std::thread::sleep(Duration::from_secs(3));
    tern.kill9().unwrap();

    let mut tern = broker(tmp.path(), port, &checks);
    let log = tern.log().unwrap();
    assert!(
        log.contains("unresolved half messages scheduled for checks again"),
        "{log}"
    );
    run(
        &python,
        &tern,
        port,
        &["sdk-txn-restart", "check", "r"],
        "check ok True checked True delivered True",
    );
    assert!(sent.contains("orphan sent"));
    tern.terminate().unwrap();
}

#[test]
fn python_orphan_nobody_answers_ends_by_the_default_resolution() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut tern = broker(
        tmp.path(),
        port,
        &[
            "--transaction-first-check-secs",
            "1",
            "--transaction-check-interval-secs",
            "1",
            "--transaction-max-checks",
            "2",
            "--transaction-default-resolution",
            "commit",
        ],
    );
    create_txn_topic(port, "sdk-txn-default", 1);
    run(
        &python,
        &tern,
        port,
        &["sdk-txn-default", "orphan", "d"],
        "orphan sent",
    );
    run(
        &python,
        &tern,
        port,
        &["sdk-txn-default", "receive", "d"],
        "receive ok True",
    );
    let log = tern.log().unwrap();
    assert!(log.contains("ended by the default resolution"), "{log}");
    assert!(
        log.contains("resolution=\"commit\"") || log.contains("resolution=commit"),
        "{log}"
    );
    tern.terminate().unwrap();
}

#[test]
fn go_commit_rollback_and_a_checked_orphan() {
    let Ok(bin) = std::env::var("TERN_GO_SDK_BIN") else {
        eprintln!("TERN_GO_SDK_BIN is not set (scripts/test sets it): Go transaction test not run");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut tern = broker(
        tmp.path(),
        port,
        &[
            "--transaction-first-check-secs",
            "1",
            "--transaction-check-interval-secs",
            "2",
        ],
    );
    create_txn_topic(port, "sdk-go-txn", 2);
    let out = Command::new(&bin)
        .args([&format!("127.0.0.1:{port}"), "sdk-go-txn", "go-txn-group"])
        .env("TERN_GO_SCENARIO", "txn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("go SDK output:\n{stdout}{stderr}");
    let expected = "go txn ok true committed true rolled_back_absent true orphan_checked true";
    assert!(
        out.status.success() && stdout.contains(expected),
        "go SDK failed ({}):\n{stdout}\n{stderr}\nbroker log:\n{}",
        out.status,
        tern.log().unwrap_or_default()
    );
    tern.terminate().unwrap();
}

#[test]
fn java_commit_rollback_and_a_checked_orphan() {
    let Ok(jar) = std::env::var("TERN_JAVA_SDK_JAR") else {
        eprintln!(
            "TERN_JAVA_SDK_JAR is not set (scripts/test sets it): Java transaction test not run"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut tern = broker(
        tmp.path(),
        port,
        &[
            "--transaction-first-check-secs",
            "1",
            "--transaction-check-interval-secs",
            "2",
        ],
    );
    create_txn_topic(port, "sdk-java-txn", 2);
    let out = Command::new("java")
        .args(["-cp", &jar, "tern.sdktest.Txn"])
        .args([
            &format!("127.0.0.1:{port}"),
            "sdk-java-txn",
            "java-txn-group",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("java SDK output:\n{stdout}{stderr}");
    let expected = "java txn ok true committed true rolled_back_absent true orphan_checked true";
    assert!(
        out.status.success() && stdout.contains(expected),
        "java SDK failed ({}):\n{stdout}\n{stderr}\nbroker log:\n{}",
        out.status,
        tern.log().unwrap_or_default()
    );
    tern.terminate().unwrap();
}
