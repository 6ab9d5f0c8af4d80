//! `[limits] max_topics` and `max_groups` on a real `tern standalone`
//! (the first from a flag, the second from its `TERN_*` variable):
//! `tern topic create` and `tern group create` past them fail with a
//! message naming the limit, what exists stays, and a restart with
//! higher limits creates again.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use tern_harness::{TernProcess, cli_command, free_port};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn start(data: &Path, endpoint: &str, max_topics: &str, max_groups: &str) -> TernProcess {
    let mut c = Command::new(TERN);
    c.args(["--log-format", "text", "standalone", "--data-dir"])
        .arg(data)
        .args(["--listen", endpoint, "--limits-max-topics", max_topics])
        .env("TERN_LIMITS_MAX_GROUPS", max_groups)
        .env("RUST_LOG", "info");
    let mut tern = TernProcess::spawn(c, data).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    tern
}

fn run(endpoint: &str, args: &[&str]) -> Output {
    cli_command(TERN)
        .args(args)
        .args(["--endpoint", endpoint])
        .output()
        .unwrap()
}

#[track_caller]
fn ok(endpoint: &str, args: &[&str]) {
    let out = run(endpoint, args);
    assert!(
        out.status.success(),
        "tern {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[track_caller]
fn refused(endpoint: &str, args: &[&str], setting: &str) {
    let out = run(endpoint, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "tern {args:?} should fail");
    assert!(stderr.contains(setting), "tern {args:?}: {stderr}");
}

#[test]
fn topics_and_groups_stop_at_their_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let endpoint = format!("127.0.0.1:{}", free_port());
    let mut tern = start(&data, &endpoint, "2", "2");
    ok(&endpoint, &["topic", "create", "a"]);
    ok(&endpoint, &["topic", "create", "b"]);
    refused(&endpoint, &["topic", "create", "c"], "max_topics");
    ok(&endpoint, &["group", "create", "g1"]);
    ok(&endpoint, &["group", "create", "g2"]);
    refused(&endpoint, &["group", "create", "g3"], "max_groups");
    // Deleting one makes room for another.
    ok(&endpoint, &["group", "delete", "g1"]);
    ok(&endpoint, &["group", "create", "g3"]);
    refused(&endpoint, &["group", "create", "g4"], "max_groups");
    tern.terminate().unwrap();

    let mut tern = start(&data, &endpoint, "3", "3");
    ok(&endpoint, &["topic", "create", "c"]);
    ok(&endpoint, &["group", "create", "g4"]);
    refused(&endpoint, &["topic", "create", "d"], "max_topics");
    let out = run(&endpoint, &["group", "list"]);
    let groups = String::from_utf8_lossy(&out.stdout);
    assert!(
        ["g2", "g3", "g4"].iter().all(|g| groups.contains(g)) && !groups.contains("g1"),
        "{groups}"
    );
    tern.terminate().unwrap();
}
