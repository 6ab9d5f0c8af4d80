//! `tern standalone` as a real process: clean shutdown on SIGTERM, and
//! reopening a data directory after SIGKILL.

use std::os::unix::process::ExitStatusExt as _;

use tern_harness::{STORE_CLOSED, STORE_OPEN, TernProcess};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn start(data_dir: &std::path::Path) -> TernProcess {
    TernProcess::standalone_with(TERN, data_dir, &[])
        .unwrap_or_else(|err| panic!("starting tern standalone: {err}"))
}

#[test]
fn sigterm_closes_the_store_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut tern = start(&data_dir);
    let log = tern.log().unwrap();
    assert!(log.contains(STORE_OPEN), "{log}");
    assert!(log.contains("not served yet"), "{log}");
    assert!(data_dir.is_dir(), "the data directory was not created");

    let status = tern.terminate().unwrap();
    let log = tern.log().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains(STORE_CLOSED), "{log}");
}

#[test]
fn reopens_after_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");

    let mut first = start(&data_dir);
    let status = first.kill9().unwrap();
    assert_eq!(status.signal(), Some(9), "exit status {status}");
    assert!(!first.log().unwrap().contains(STORE_CLOSED));

    let mut second = start(&data_dir);
    assert_ne!(first.log_path(), second.log_path());
    let log = second.log().unwrap();
    assert!(log.contains(STORE_OPEN), "{log}");

    let status = second.terminate().unwrap();
    let log = second.log().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains(STORE_CLOSED), "{log}");
}

#[test]
fn rejects_a_malformed_listen_address() {
    let output = std::process::Command::new(TERN)
        .args(["standalone", "--listen", "8081"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HOST:PORT"), "{stderr}");
}
