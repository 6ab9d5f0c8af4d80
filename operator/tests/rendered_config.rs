//! The configuration files the operator renders, run by the real `tern`
//! binary: a name server and a broker start from the rendered
//! `nameserver.toml` and `broker.toml` (only the addresses and the data
//! directory are moved to this machine's loopback and a temporary
//! directory), and the endpoints the pods' probes use answer.
//!
//! Needs the `tern` binary: `cargo build -p tern-cli` first, or set
//! `TERN_BIN` (see `tern_harness::tern_bin`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tern_harness::TernProcess;
use tern_operator::build;
use tern_operator::crd::BrokerCluster;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

/// Replaces keys the operator rendered; a key it did not render fails the
/// test, so only addresses and paths move, never the set of settings.
fn replace(table: &mut toml::Table, key: &str, value: toml::Value) {
    assert!(
        table.contains_key(key),
        "the rendered file has no `{key}`:\n{table}"
    );
    table.insert(key.to_owned(), value);
}

fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut conn = TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    conn.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

fn wait_for_status(addr: &str, path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_status(addr, path);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("GET {path} on {addr} answered {last:?}, not {want}");
}

fn spawn(bin: &Path, subcommand: &str, config: &Path, data_dir: &Path) -> TernProcess {
    std::fs::create_dir_all(data_dir).expect("a directory for the logs");
    let mut command = Command::new(bin);
    command
        .args(["--log-format", "text", subcommand, "--config"])
        .arg(config);
    TernProcess::spawn(command, data_dir).expect("tern starts")
}

#[test]
fn the_rendered_files_start_a_name_server_and_a_broker_whose_probes_answer() {
    let bin = tern_harness::tern_bin().expect("the tern binary (cargo build -p tern-cli)");
    let mut cluster: BrokerCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "BrokerCluster",
        "metadata": { "name": "prod", "namespace": "mq", "uid": "uid-1" },
        "spec": {
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "broker": { "config": { "flush": "Sync", "retentionHours": 24, "segmentBytes": 1048576 } },
        },
    }))
    .expect("a valid BrokerCluster");
    cluster.metadata.generation = Some(1);
    let desired = build::desired(&cluster).expect("builds");
    let data = |cm: &k8s_openapi::api::core::v1::ConfigMap, key: &str| -> toml::Table {
        let text = &cm.data.as_ref().expect("data")[key];
        text.parse().expect("valid TOML")
    };
    let mut ns = data(&desired.nameserver.config_map, "nameserver.toml");
    let mut broker = data(&desired.groups[0].config_map, "broker.toml");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let ns_addr = format!("127.0.0.1:{}", free_port());
    let ns_http = format!("127.0.0.1:{}", free_port());
    let broker_addr = format!("127.0.0.1:{}", free_port());
    let broker_http = format!("127.0.0.1:{}", free_port());
    replace(&mut ns, "listen", ns_addr.clone().into());
    replace(&mut ns, "metrics_listen", ns_http.into());
    replace(&mut broker, "listen", broker_addr.clone().into());
    replace(&mut broker, "advertised_address", broker_addr.into());
    replace(
        &mut broker,
        "nameservers",
        toml::Value::Array(vec![ns_addr.clone().into()]),
    );
    replace(&mut broker, "metrics_listen", broker_http.clone().into());
    let data_dir = dir.path().join("broker-data");
    replace(
        &mut broker,
        "data_dir",
        data_dir.to_string_lossy().into_owned().into(),
    );

    let ns_file = dir.path().join("nameserver.toml");
    let broker_file = dir.path().join("broker.toml");
    std::fs::write(&ns_file, ns.to_string()).expect("writes");
    std::fs::write(&broker_file, broker.to_string()).expect("writes");

    let mut nameserver = spawn(&bin, "nameserver", &ns_file, &dir.path().join("ns"));
    let mut broker_process = spawn(&bin, "broker", &broker_file, &data_dir);
    broker_process
        .wait_for_log(tern_harness::STORE_OPEN, tern_harness::STARTUP_TIMEOUT)
        .expect("the broker opens its store");

    // The probes of the pods: httpGet /readyz and /healthz on the broker's
    // HTTP port, tcpSocket on the name server's gRPC port.
    wait_for_status(&broker_http, "/readyz", 200);
    wait_for_status(&broker_http, "/healthz", 200);
    assert!(
        TcpStream::connect(&ns_addr).is_ok(),
        "the name server accepts connections"
    );
    // The broker found the name server through the rendered `nameservers`
    // and registered under the rendered `name` and `cluster`.
    nameserver
        .wait_for_log("broker registered", Duration::from_secs(30))
        .expect("the broker registers");
    let log = nameserver.log().expect("the name server log");
    assert!(
        log.contains("broker=prod-broker-0") && log.contains("cluster=prod"),
        "{log}"
    );
    assert!(
        nameserver.try_wait().expect("status").is_none(),
        "the name server still runs"
    );

    let status = broker_process.terminate().expect("the broker stops");
    assert!(
        status.success(),
        "broker exit: {status}; log:\n{}",
        broker_process.log().unwrap_or_default()
    );
    let status = nameserver.terminate().expect("the name server stops");
    assert!(status.success(), "name server exit: {status}");
}
