//! TLS with the official SDKs against a real `tern standalone` whose port
//! is `enforcing` (TLS only), so a client that gets through used TLS:
//! the Java and Go SDKs with their default settings (they dial TLS and do
//! not check the certificate), the Python and Node SDKs switched to TLS
//! and trusting the broker's generated CA (DATA_DIR/tls/ca.crt) the way
//! gRPC lets them (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH). The Java and Go
//! suites in sdk_java.rs and sdk_go.rs also run with the SDKs' default
//! TLS, against the default `permissive` port.
//!
//! Also: the tern CLI refused in plaintext with a message naming TLS, and
//! let in with `--ca-file` or `--insecure-skip-verify`; a certificate
//! replaced on disk is what the next connection is shown.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sdk_support::Standalone;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A standalone broker that serves TLS only, with a topic of 4 queues.
fn enforcing_broker(topic: &str) -> (Standalone, String) {
    enforcing_broker_with(topic, &[])
}

fn enforcing_broker_with(topic: &str, args: &[&str]) -> (Standalone, String) {
    let mut all = vec!["--tls-mode", "enforcing"];
    all.extend_from_slice(args);
    let tern = Standalone::start_with(&all);
    let ca = tern.generated_ca().to_str().unwrap().to_owned();
    tern.cli(&["topic", "create", topic, "--queues", "4", "--ca-file", &ca]);
    (tern, ca)
}

#[test]
fn plaintext_is_refused_with_a_clear_error_when_tls_is_enforced() {
    let metrics = format!("127.0.0.1:{}", sdk_support::free_port());
    let (tern, ca) = enforcing_broker_with("tls-cli", &["--metrics-listen", &metrics]);
    let out = Command::new(TERN)
        .args(["topic", "list", "--endpoint", &tern.listen])
        .env_remove("TERN_TLS")
        .env_remove("TERN_CA_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "plaintext was served: {stderr}");
    assert!(
        stderr.contains("UNAUTHENTICATED") && stderr.contains("requires TLS"),
        "{stderr}"
    );
    // Trusting the generated CA, by IP address and by name, or trusting
    // nothing at all, the CLI gets through.
    assert!(
        tern.cli(&["topic", "list", "--ca-file", &ca])
            .contains("tls-cli")
    );
    let by_name = format!("localhost:{}", tern.port);
    let out = Command::new(TERN)
        .args(["topic", "list", "--endpoint", &by_name, "--ca-file", &ca])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        tern.cli(&["topic", "list", "--insecure-skip-verify"])
            .contains("tls-cli")
    );
    // A CA that did not sign the certificate is not trusted.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other.crt");
    std::fs::write(&other_ca, foreign_ca_pem()).unwrap();
    let out = Command::new(TERN)
        .args(["topic", "list", "--endpoint", &tern.listen, "--ca-file"])
        .arg(&other_ca)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("certificate"),
        "{stderr}"
    );
    tern.stop();
}

#[test]
fn java_sdk_with_its_default_tls() {
    let Some(jar) = sdk_support::sdk("TERN_JAVA_SDK_JAR", "Java SDK TLS test") else {
        return;
    };
    let (tern, _) = enforcing_broker("tls-java");
    tern.run_client(
        "java SDK (default TLS)",
        Command::new("java").args(["-jar", &jar, "simple", &tern.listen, "tls-java", "g", "30"]),
        "received 30 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn go_sdk_with_its_default_tls() {
    let Some(bin) = sdk_support::sdk("TERN_GO_SDK_BIN", "Go SDK TLS test") else {
        return;
    };
    let (tern, _) = enforcing_broker("tls-go");
    tern.run_client(
        "go SDK (default TLS)",
        Command::new(&bin).args([&tern.listen, "tls-go", "g", "30"]),
        "received 30 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn python_sdk_over_tls_trusting_the_generated_ca() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python SDK TLS test") else {
        return;
    };
    let (tern, ca) = enforcing_broker("tls-python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_simple.py");
    tern.run_client(
        "python SDK (TLS)",
        Command::new(&python)
            .args([script, &tern.listen, "tls-python", "g", "30"])
            .env("TERN_SDK_TLS", "1")
            .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &ca),
        "received 30 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn node_sdk_over_tls_trusting_the_generated_ca() {
    let Some(sdk_dir) = sdk_support::sdk("TERN_NODE_SDK_DIR", "Node.js SDK TLS test") else {
        return;
    };
    let node = std::env::var("TERN_NODE").unwrap_or_else(|_| "node".to_owned());
    let (tern, ca) = enforcing_broker("tls-node");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/node/simple.js");
    tern.run_client(
        "node SDK (TLS)",
        Command::new(&node)
            .env("NODE_PATH", Path::new(&sdk_dir).join("node_modules"))
            .arg(&script)
            .args([&tern.listen, "tls-node", "g", "30"])
            .env("TERN_SDK_TLS", "1")
            .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &ca),
        "received 30 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn a_certificate_replaced_on_disk_is_served_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = Pair::new();
    first.write(&cert, &key);
    let tern = Standalone::start_with(&[
        "--tls-mode",
        "enforcing",
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-reload-secs",
        "1",
    ]);
    let trusts = |pair: &Pair| {
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, &pair.ca_pem).unwrap();
        Command::new(TERN)
            .args(["topic", "list", "--endpoint", &tern.listen, "--ca-file"])
            .arg(&ca)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(trusts(&first));
    let second = Pair::new();
    assert!(!trusts(&second));
    second.write(&cert, &key);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !trusts(&second) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 15 s:\n{}",
            tern.tern.log().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!trusts(&first), "the old certificate is still served");
    tern.stop();
}

/// A CA and a certificate for localhost and 127.0.0.1 it signed.
struct Pair {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl Pair {
    fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &rcgen::Issuer::new(ca, &ca_key))
            .unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the certificate and key, the key first so the pair on disk
    /// is only briefly mismatched (the broker keeps the old pair then).
    fn write(&self, cert: &Path, key: &Path) {
        std::fs::write(key, &self.key_pem).unwrap();
        std::fs::write(cert, &self.cert_pem).unwrap();
    }
}

fn foreign_ca_pem() -> String {
    Pair::new().ca_pem
}
