//! `tern standalone` as a real process: clean shutdown on SIGTERM,
//! reopening a data directory after SIGKILL, and accepting connections on
//! its --listen address; and its settings coming from a configuration
//! file, `TERN_*` variables and flags, as `tern broker`'s do.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use tern_harness::{STORE_CLOSED, STORE_OPEN, TernProcess, free_port};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// Starts `tern standalone` on an ephemeral port (tests run in parallel).
fn start(data_dir: &std::path::Path) -> TernProcess {
    TernProcess::standalone_with(TERN, data_dir, &["--listen", "127.0.0.1:0"])
        .unwrap_or_else(|err| panic!("starting tern standalone: {err}"))
}

#[test]
fn sigterm_closes_the_store_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut tern = start(&data_dir);
    let log = tern.log().unwrap();
    assert!(log.contains(STORE_OPEN), "{log}");
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

#[test]
fn accepts_connections_on_the_listen_port() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut tern = TernProcess::standalone_with(TERN, &data_dir, &["--listen", &listen])
        .unwrap_or_else(|err| panic!("starting tern standalone: {err}"));
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(&listen) {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("connecting to {listen}: {e}\n{}", tern.log().unwrap()),
        }
    }
    let log = tern.log().unwrap();
    assert!(log.contains(&listen), "{log}");

    let status = tern.terminate().unwrap();
    let log = tern.log().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains(STORE_CLOSED), "{log}");
}

/// A client that opened an HTTP/2 connection and then never answers (a
/// frozen or hostile one) does not hold the shutdown: after the grace
/// period its connection is closed and the broker exits 0 with its store
/// closed, while that client still holds the socket.
#[test]
fn a_client_that_never_answers_does_not_hold_a_shutdown() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut tern =
        TernProcess::standalone_with(TERN, tmp.path().join("data"), &["--listen", &listen])
            .unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    let mut silent = TcpStream::connect(&listen).unwrap();
    // The client preface and an empty SETTINGS frame; then nothing, ever.
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let status = tern.terminate().unwrap();
    let log = tern.log().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains("after the shutdown grace period"), "{log}");
    assert!(log.contains(STORE_CLOSED), "{log}");
    drop(silent);
}

/// `--metrics-listen` serves Prometheus metrics and the health endpoints.
#[test]
fn serves_metrics_and_health_when_asked() {
    use std::io::{Read as _, Write as _};

    let tmp = tempfile::tempdir().unwrap();
    let mut tern = TernProcess::standalone_with(
        TERN,
        tmp.path().join("data"),
        &["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
    )
    .unwrap();
    tern.wait_for_log("serving /metrics", Duration::from_secs(10))
        .unwrap();
    let log = tern.log().unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .unwrap();
    let address = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .unwrap_or_else(|| panic!("no address in {line}"));
    let get = |path: &str| {
        let mut s = TcpStream::connect(address).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let ready = get("/readyz");
    assert!(
        ready.starts_with("HTTP/1.0 200") || ready.starts_with("HTTP/1.1 200"),
        "{ready}"
    );
    let metrics = get("/metrics");
    assert!(metrics.contains(" 200 "), "{metrics}");
    assert!(metrics.contains("# TYPE"), "{metrics}");
    assert_eq!(tern.terminate().unwrap().code(), Some(0));
}

/// Runs the `tern` CLI against `endpoint`, without the test environment's
/// CLI variables.
fn cli(endpoint: &str, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(TERN);
    for var in ["TERN_ENDPOINT", "TERN_OUTPUT", "TERN_TIMEOUT", "RUST_LOG"] {
        c.env_remove(var);
    }
    c.args(args)
        .args(["--endpoint", endpoint])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Sends a `len`-byte body to `topic` with `tern produce`; returns the
/// JSON line printed, or the error.
fn produce(endpoint: &str, topic: &str, len: usize) -> Result<String, String> {
    let body = "b".repeat(len);
    let out = cli(
        endpoint,
        &["produce", topic, "--body", &body, "--output", "json"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{}: {stdout}{stderr}", out.status))
    }
}

/// Starts `tern standalone` with `args` (and `--data-dir` under `dir`) and
/// the environment `env`, waits until it listens, and checks it listens on
/// `listen`.
fn start_configured(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    listen: &str,
) -> TernProcess {
    let data = dir.join("data");
    let mut cmd = std::process::Command::new(TERN);
    cmd.args(["--log-format", "text", "standalone", "--data-dir"])
        .arg(&data)
        .args(args)
        .env("RUST_LOG", "info");
    for var in [
        "TERN_CONFIG",
        "TERN_LISTEN",
        "TERN_NAME",
        "TERN_STORE_MAX_BODY_BYTES",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let mut tern = TernProcess::spawn(cmd, &data).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}: {}", tern.log().unwrap_or_default()));
    let log = tern.log().unwrap();
    let line = log.lines().find(|l| l.contains("listening")).unwrap();
    assert!(line.contains(listen), "{line}");
    tern
}

/// A configuration file in the broker's format: its listen address, name
/// and body limit reach `tern standalone`.
#[test]
fn takes_its_settings_from_a_configuration_file() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let file = tmp.path().join("standalone.toml");
    std::fs::write(
        &file,
        format!("listen = \"{listen}\"\nname = \"from-file\"\n\n[store]\nmax_body_bytes = 100\n"),
    )
    .unwrap();
    let mut tern = start_configured(
        tmp.path(),
        &["--config", file.to_str().unwrap()],
        &[],
        &listen,
    );
    let created = cli(&listen, &["topic", "create", "cfg", "--queues", "1"]);
    assert!(created.status.success(), "{created:?}");
    let sent = produce(&listen, "cfg", 100).unwrap();
    assert!(sent.contains("\"broker\":\"from-file\""), "{sent}");
    let refused = produce(&listen, "cfg", 101).unwrap_err();
    assert!(refused.contains("100"), "{refused}");
    assert_eq!(tern.terminate().unwrap().code(), Some(0));
}

/// Flags beat `TERN_*` variables, which beat the file.
#[test]
fn flags_and_variables_override_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("standalone.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{}\"\nname = \"from-file\"\n[store]\nmax_body_bytes = 100\n",
            free_port()
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut tern = start_configured(
        tmp.path(),
        &["--listen", &listen, "--store-max-body-bytes", "1000"],
        &[
            ("TERN_CONFIG", file.to_str().unwrap()),
            ("TERN_NAME", "from-env"),
            ("TERN_STORE_MAX_BODY_BYTES", "10"),
        ],
        &listen,
    );
    let created = cli(&listen, &["topic", "create", "cfg", "--queues", "1"]);
    assert!(created.status.success(), "{created:?}");
    let sent = produce(&listen, "cfg", 1000).unwrap();
    assert!(sent.contains("\"broker\":\"from-env\""), "{sent}");
    assert!(produce(&listen, "cfg", 1001).is_err());
    assert_eq!(tern.terminate().unwrap().code(), Some(0));
}

/// A standalone broker joins no cluster: a file naming name servers is
/// refused, not silently half-applied.
#[test]
fn refuses_a_file_with_cluster_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("broker.toml");
    std::fs::write(&file, "nameservers = [\"127.0.0.1:9876\"]\n").unwrap();
    let output = std::process::Command::new(TERN)
        .args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nameservers") && stderr.contains("tern broker"),
        "{stderr}"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "no data directory opened"
    );
}
