//! The configuration files the operator renders, run by the real `tern`
//! binary: a name server and a broker start from the rendered
//! `nameserver.toml` and `broker.toml` (only the addresses and the data
//! directory are moved to this machine's loopback and a temporary
//! directory), and the endpoints the pods' probes use answer.
//!
//! The same with TLS: certificate files from a Secret (moved to a
//! temporary directory like the addresses) or generated ones, the ports
//! enforcing TLS, and the broker registering with the name server over TLS
//! as the rendered `nameservers_*` keys say.
//!
//! With authentication `Acl`: the broker started with the rendered `[auth]`
//! table and the environment the pod gets from the admin Secret refuses
//! unsigned admin calls and accepts the Secret's user.
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

/// Moves a path the operator rendered under `/etc/tern/tls` into `dir`.
fn move_tls_path(table: &mut toml::Table, key: &str, dir: &Path) {
    let rendered = table
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("the rendered file has no `{key}`:\n{table}"));
    let file = rendered
        .strip_prefix("/etc/tern/tls/")
        .unwrap_or_else(|| panic!("`{key}` = {rendered} is not in the Secret's mount"));
    replace(
        table,
        key,
        dir.join(file).to_string_lossy().into_owned().into(),
    );
}

/// Writes what a `kubernetes.io/tls` Secret made by cert-manager's CA
/// issuer holds: `ca.crt`, and `tls.crt` and `tls.key` for this machine's
/// loopback (the pods' DNS names in a cluster).
fn write_secret_files(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    std::fs::create_dir_all(dir).expect("a directory for the certificate");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a key")).expect("CA");
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("parameters")
        .signed_by(&key, &ca)
        .expect("signed");
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("writes");
    std::fs::write(dir.join("tls.crt"), cert.pem()).expect("writes");
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("writes");
}

fn spawn(
    bin: &Path,
    subcommand: &str,
    config: &Path,
    data_dir: &Path,
    env: &[(String, String)],
) -> TernProcess {
    std::fs::create_dir_all(data_dir).expect("a directory for the logs");
    let mut command = Command::new(bin);
    command
        .args(["--log-format", "text", subcommand, "--config"])
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k, v)));
    TernProcess::spawn(command, data_dir).expect("tern starts")
}

/// The broker container's environment as the kubelet would resolve it:
/// literal values, and `secretKeyRef`s to the cluster's admin Secret (made
/// here as the operator makes it, with a new key).
fn broker_env(cluster: &BrokerCluster, desired: &build::Desired) -> Vec<(String, String)> {
    let owner = build::Owner::new(cluster).expect("an owner");
    let key = build::auth::generate_secret_key().expect("a key");
    let admin = build::auth::admin_secret(&owner, &key);
    let sts = &desired.groups[0].stateful_set;
    let pod = sts.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let env = pod
        .and_then(|p| p.containers[0].env.clone())
        .unwrap_or_default();
    env.into_iter()
        .map(|e| {
            let value = match (e.value, e.value_from.and_then(|v| v.secret_key_ref)) {
                (Some(v), _) => v,
                (None, Some(r)) => {
                    assert_eq!(Some(&r.name), admin.metadata.name.as_ref(), "{}", e.name);
                    build::auth::secret_value(&admin, &r.key).expect("a key of the Secret")
                }
                (None, None) => panic!("{} has no value", e.name),
            };
            (e.name, value)
        })
        .collect()
}

/// Builds `spec`, runs its rendered files (addresses, data directory and
/// certificate paths moved to this machine), and checks the probes and the
/// broker's registration. With `secret`, certificate files are written
/// where the Secret would be mounted.
fn run_rendered(spec: serde_json::Value, secret: bool) -> (toml::Table, toml::Table) {
    run_rendered_then(spec, secret, |_, _| {})
}

/// [`run_rendered`], calling `check` with the broker's gRPC address and
/// environment while it runs.
fn run_rendered_then(
    spec: serde_json::Value,
    secret: bool,
    check: impl FnOnce(&str, &[(String, String)]),
) -> (toml::Table, toml::Table) {
    let bin = tern_harness::tern_bin().expect("the tern binary (cargo build -p tern-cli)");
    let mut cluster: BrokerCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "BrokerCluster",
        "metadata": { "name": "prod", "namespace": "mq", "uid": "uid-1" },
        "spec": spec,
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
    let rendered = (ns.clone(), broker.clone());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let ns_addr = format!("127.0.0.1:{}", free_port());
    let ns_http = format!("127.0.0.1:{}", free_port());
    let broker_addr = format!("127.0.0.1:{}", free_port());
    let broker_http = format!("127.0.0.1:{}", free_port());
    replace(&mut ns, "listen", ns_addr.clone().into());
    replace(&mut ns, "metrics_listen", ns_http.into());
    replace(&mut broker, "listen", broker_addr.clone().into());
    replace(
        &mut broker,
        "advertised_address",
        broker_addr.clone().into(),
    );
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
    if secret {
        let certs = dir.path().join("secret");
        write_secret_files(&certs);
        for file in [&mut ns, &mut broker] {
            let tls = file
                .get_mut("tls")
                .and_then(|t| t.as_table_mut())
                .expect("a [tls] table");
            for key in ["cert_file", "key_file", "client_ca_file"] {
                if tls.contains_key(key) {
                    move_tls_path(tls, key, &certs);
                }
            }
        }
        if broker.contains_key("nameservers_ca_file") {
            move_tls_path(&mut broker, "nameservers_ca_file", &certs);
        }
    }

    let ns_file = dir.path().join("nameserver.toml");
    let broker_file = dir.path().join("broker.toml");
    std::fs::write(&ns_file, ns.to_string()).expect("writes");
    std::fs::write(&broker_file, broker.to_string()).expect("writes");

    let env = broker_env(&cluster, &desired);
    let mut nameserver = spawn(&bin, "nameserver", &ns_file, &dir.path().join("ns"), &[]);
    let mut broker_process = spawn(&bin, "broker", &broker_file, &data_dir, &env);
    broker_process
        .wait_for_log(tern_harness::STORE_OPEN, tern_harness::STARTUP_TIMEOUT)
        .unwrap_or_else(|e| {
            panic!(
                "the broker opens its store: {e}; log:\n{}",
                broker_process.log().unwrap_or_default()
            )
        });

    // The probes of the pods: httpGet /readyz and /healthz on the broker's
    // HTTP port, tcpSocket on the name server's gRPC port.
    wait_for_status(&broker_http, "/readyz", 200);
    wait_for_status(&broker_http, "/healthz", 200);
    assert!(
        TcpStream::connect(&ns_addr).is_ok(),
        "the name server accepts connections"
    );
    // The broker found the name server through the rendered `nameservers`
    // (and, under TLS, dialled it as the rendered `nameservers_*` say) and
    // registered under the rendered `name` and `cluster`.
    if let Err(e) = nameserver.wait_for_log("broker registered", Duration::from_secs(30)) {
        panic!(
            "the broker registers: {e}; broker log:\n{}\nname server log:\n{}",
            broker_process.log().unwrap_or_default(),
            nameserver.log().unwrap_or_default()
        );
    }
    let log = nameserver.log().expect("the name server log");
    assert!(
        log.contains("broker=prod-broker-0") && log.contains("cluster=prod"),
        "{log}"
    );
    assert!(
        nameserver.try_wait().expect("status").is_none(),
        "the name server still runs"
    );
    check(&broker_addr, &env);

    let status = broker_process.terminate().expect("the broker stops");
    assert!(
        status.success(),
        "broker exit: {status}; log:\n{}",
        broker_process.log().unwrap_or_default()
    );
    let status = nameserver.terminate().expect("the name server stops");
    assert!(status.success(), "name server exit: {status}");
    rendered
}

#[test]
fn the_rendered_files_start_a_name_server_and_a_broker_whose_probes_answer() {
    let (ns, broker) = run_rendered(
        serde_json::json!({
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "broker": { "config": { "flush": "Sync", "retentionHours": 24, "segmentBytes": 1048576 } },
        }),
        false,
    );
    for file in [&ns, &broker] {
        assert_eq!(file["tls"]["mode"].as_str(), Some("permissive"));
    }
}

#[test]
fn enforcing_tls_with_a_certificate_secret_runs_and_registers_over_tls() {
    let (ns, broker) = run_rendered(
        serde_json::json!({
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "tls": { "mode": "Enforcing", "certificateSecret": "prod-tls" },
        }),
        true,
    );
    assert_eq!(
        ns["tls"]["cert_file"].as_str(),
        Some("/etc/tern/tls/tls.crt")
    );
    assert_eq!(broker["nameservers_tls"].as_bool(), Some(true));
    assert_eq!(
        broker["nameservers_ca_file"].as_str(),
        Some("/etc/tern/tls/ca.crt")
    );
}

#[test]
fn enforcing_tls_with_generated_certificates_runs_and_registers_over_tls() {
    let (_, broker) = run_rendered(
        serde_json::json!({
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "tls": { "mode": "Enforcing" },
        }),
        false,
    );
    assert_eq!(
        broker["nameservers_insecure_skip_verify"].as_bool(),
        Some(true)
    );
}

#[test]
fn client_authentication_renders_a_file_tern_accepts() {
    // Permissive: the broker still registers in plaintext while TLS
    // clients must show a certificate signed by the Secret's ca.crt.
    let (ns, broker) = run_rendered(
        serde_json::json!({
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "tls": { "mode": "Permissive", "certificateSecret": "prod-tls", "clientAuthentication": true },
        }),
        true,
    );
    for file in [&ns, &broker] {
        assert_eq!(
            file["tls"]["client_ca_file"].as_str(),
            Some("/etc/tern/tls/ca.crt")
        );
    }
}

#[test]
fn acl_brokers_check_requests_and_know_the_admin_secret_user() {
    let (ns, broker) = run_rendered_then(
        serde_json::json!({
            "image": "tern:test",
            "nameserver": { "replicas": 1 },
            "authentication": { "type": "Acl" },
        }),
        false,
        |addr, env| {
            let var = |name: &str| {
                env.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("no {name} in {env:?}"))
            };
            let credentials = tern_client::Credentials::new(
                var("TERN_AUTH_BOOTSTRAP_ACCESS_KEY"),
                var("TERN_AUTH_BOOTSTRAP_SECRET_KEY"),
            )
            .expect("valid credentials");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let unsigned = tern_client::AdminClient::connect(addr)
                    .await
                    .expect("connects");
                let refused = unsigned.list_users().await;
                assert!(refused.is_err(), "an unsigned call: {refused:?}");
                let signed = unsigned.with_credentials(Some(credentials));
                let users = signed
                    .list_users()
                    .await
                    .expect("the admin user may list users");
                assert!(users.iter().any(|u| u.name == "tern-operator"), "{users:?}");
            });
        },
    );
    assert_eq!(broker["auth"]["enabled"].as_bool(), Some(true));
    assert!(!ns.contains_key("auth"));
}
