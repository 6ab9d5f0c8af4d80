//! Credentials with the official SDKs (Java, Go, Python, Node.js; the
//! Rust SDK's are in interop/tests/rust_sdk_auth.rs) against a real
//! `tern standalone` that checks requests: each SDK signs with the right
//! access key and secret key and sends and receives; with a wrong secret
//! key, an unknown access key, or none at all, it gets nothing done and
//! the broker's audit log names the reason. (A request dated outside the
//! allowed clock skew is refused too: the SDKs always sign with the
//! current time, so that case is tested with a hand-signed request in
//! broker/tests/auth.rs.)
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sdk_support::Standalone;

const ROOT: &str = "root";
const ROOT_SECRET: &str = "root-secret-key";

/// A broker with `topic` (4 queues), restarted with request checks on and
/// the bootstrap super user `root`.
fn checking_broker(topic: &str) -> Standalone {
    let mut tern = Standalone::start();
    tern.create_topic(topic, 4);
    tern.restart_with(&[
        "--auth-enabled",
        "--auth-bootstrap-access-key",
        ROOT,
        "--auth-bootstrap-secret-key",
        ROOT_SECRET,
    ]);
    tern
}

/// Runs `cmd` to completion (killed after `limit`); its success and
/// output.
fn run(mut cmd: Command, limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (status.is_some_and(|s| s.success()), text)
}

/// Each credential case of one SDK: `client(access key, secret key)` makes
/// the SDK program's command for `n` messages.
fn credential_cases(what: &str, tern: &Standalone, client: impl Fn(&str, &str) -> Command) {
    let (ok, out) = run(client(ROOT, ROOT_SECRET), Duration::from_secs(120));
    assert!(
        ok && out.contains("duplicates 0 missing 0"),
        "{what} with the right credentials:\n{out}\nbroker log:\n{}",
        tern.tern.log().unwrap_or_default()
    );
    for (case, key, secret, reason) in [
        (
            "a wrong secret key",
            ROOT,
            "not-the-secret",
            "does not match",
        ),
        (
            "an unknown access key",
            "nobody",
            ROOT_SECRET,
            "unknown access key",
        ),
        ("no credentials", "", "", "no credentials"),
    ] {
        let before = audit_lines(tern, reason);
        let (ok, out) = run(client(key, secret), Duration::from_secs(30));
        assert!(!ok, "{what} with {case} succeeded:\n{out}");
        assert!(
            !out.contains("received"),
            "{what} with {case} received messages:\n{out}"
        );
        let after = audit_lines(tern, reason);
        assert!(
            after > before,
            "{what} with {case}: no audit line saying `{reason}`:\n{}",
            tern.tern.log().unwrap_or_default()
        );
    }
}

/// Audit lines of refused requests whose detail contains `reason`.
fn audit_lines(tern: &Standalone, reason: &str) -> usize {
    tern.tern
        .log()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("tern::audit") && l.contains(reason))
        .count()
}

fn with_credentials(mut cmd: Command, key: &str, secret: &str) -> Command {
    cmd.env("TERN_SDK_ACCESS_KEY", key)
        .env("TERN_SDK_SECRET_KEY", secret);
    cmd
}

#[test]
fn java_sdk_credentials() {
    let Some(jar) = sdk_support::sdk("TERN_JAVA_SDK_JAR", "Java SDK credentials test") else {
        return;
    };
    let tern = checking_broker("auth-java");
    credential_cases("java SDK", &tern, |key, secret| {
        let mut cmd = Command::new("java");
        cmd.args(["-jar", &jar, "simple", &tern.listen, "auth-java", "g", "10"]);
        with_credentials(cmd, key, secret)
    });
    tern.stop();
}

#[test]
fn go_sdk_credentials() {
    let Some(bin) = sdk_support::sdk("TERN_GO_SDK_BIN", "Go SDK credentials test") else {
        return;
    };
    let tern = checking_broker("auth-go");
    credential_cases("go SDK", &tern, |key, secret| {
        let mut cmd = Command::new(&bin);
        cmd.args([&tern.listen, "auth-go", "g", "10"]);
        with_credentials(cmd, key, secret)
    });
    tern.stop();
}

#[test]
fn python_sdk_credentials() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python SDK credentials test") else {
        return;
    };
    let tern = checking_broker("auth-python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_simple.py");
    credential_cases("python SDK", &tern, |key, secret| {
        let mut cmd = Command::new(&python);
        cmd.args([script, &tern.listen, "auth-python", "g", "10"]);
        with_credentials(cmd, key, secret)
    });
    tern.stop();
}

#[test]
fn node_sdk_credentials() {
    let Some(sdk_dir) = sdk_support::sdk("TERN_NODE_SDK_DIR", "Node.js SDK credentials test")
    else {
        return;
    };
    let node = std::env::var("TERN_NODE").unwrap_or_else(|_| "node".to_owned());
    let tern = checking_broker("auth-node");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/node/simple.js");
    credential_cases("node SDK", &tern, |key, secret| {
        let mut cmd = Command::new(&node);
        cmd.env("NODE_PATH", Path::new(&sdk_dir).join("node_modules"))
            .arg(&script)
            .args([&tern.listen, "auth-node", "g", "10"]);
        with_credentials(cmd, key, secret)
    });
    tern.stop();
}
