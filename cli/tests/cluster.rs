//! A cluster of real processes: `tern nameserver` and `tern broker` on free
//! ports, with short heartbeats and expiry.
//!
//! - routes merge across brokers on every name server and on every broker
//!   (any of them is an access point), a name server that goes down does not
//!   hold up the others, and a restarted one learns the brokers again;
//!   a killed broker's queues leave the routes after the expiry, a broker
//!   stopped with SIGTERM unregisters and leaves them at once;
//! - the official Python and Go SDKs, given a name server address as their
//!   access point, send N messages spread over both brokers and receive and
//!   ack each exactly once, with a simple consumer and (Python) a push
//!   consumer (each skipped, saying so, when `scripts/test` did not provide
//!   the SDK: TERN_PYTHON, TERN_GO_SDK_BIN; failed under TERN_REQUIRE_SDKS);
//! - a broker with 100,000 topics registers with a name server, and the
//!   route of the last topic resolves.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// Shared with the `sdk_*` tests; this one uses only `sdk`.
#[allow(dead_code)]
mod sdk_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tern_harness::{TernProcess, free_port};
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{
    CreateTopicRequest, DescribeTopicRequest, MessageType, Permission, Topic,
};
use tern_protocol::nameserver::QueryRouteRequest;
use tern_protocol::nameserver::tern_nameserver_client::TernNameserverClient;
use tern_protocol::v2;
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;

const TERN: &str = env!("CARGO_BIN_EXE_tern");
/// Brokers heartbeat every second; name servers expire them after 4 s.
const HEARTBEAT_SECS: &str = "1";
const EXPIRY_SECS: u64 = 4;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables that would change what the processes do.
const TERN_VARS: &[&str] = &[
    "TERN_CONFIG",
    "TERN_DATA_DIR",
    "TERN_LISTEN",
    "TERN_ADVERTISED_ADDRESS",
    "TERN_NAME",
    "TERN_CLUSTER",
    "TERN_NAMESERVERS",
    "TERN_FLUSH",
    "TERN_METRICS_LISTEN",
    "TERN_HEARTBEAT_INTERVAL_SECS",
    "TERN_BROKER_EXPIRY_SECS",
    "TERN_LOG_FORMAT",
];

fn tern(args: &[&str]) -> Command {
    let mut c = Command::new(TERN);
    for v in TERN_VARS {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "info")
        .args(["--log-format", "text"])
        .args(args);
    c
}

/// A name server process.
struct Ns {
    proc: TernProcess,
    address: String,
}

fn start_nameserver(dir: &Path, address: &str) -> Ns {
    let cmd = tern(&[
        "nameserver",
        "--listen",
        address,
        "--broker-expiry-secs",
        &EXPIRY_SECS.to_string(),
    ]);
    let mut proc = TernProcess::spawn(cmd, dir).unwrap();
    proc.wait_for_log("listening", START_TIMEOUT).unwrap();
    Ns {
        proc,
        address: address.to_owned(),
    }
}

/// A broker process.
struct Bk {
    proc: TernProcess,
    address: String,
    port: u16,
}

fn start_broker(data_dir: &Path, name: &str, nameservers: &[&Ns]) -> Bk {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let ns: Vec<&str> = nameservers.iter().map(|n| n.address.as_str()).collect();
    let cmd = tern(&[
        "broker",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen",
        &address,
        "--name",
        name,
        "--nameservers",
        &ns.join(","),
        "--heartbeat-interval-secs",
        HEARTBEAT_SECS,
    ]);
    let mut proc = TernProcess::spawn(cmd, data_dir).unwrap();
    proc.wait_for_log("listening", START_TIMEOUT).unwrap();
    Bk {
        proc,
        address,
        port,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn create_topic(broker: &Bk, name: &str, queues: i32) {
    let mut admin = TernAdminClient::connect(format!("http://{}", broker.address))
        .await
        .unwrap();
    admin
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: name.to_owned(),
                queue_count: queues,
                message_type: MessageType::Normal as i32,
                permission: Permission::ReadWrite as i32,
            }),
        })
        .await
        .unwrap();
}

/// Messages stored in all queues of `topic` on `broker`.
async fn stored(broker: &Bk, topic: &str) -> u64 {
    let mut admin = TernAdminClient::connect(format!("http://{}", broker.address))
        .await
        .unwrap();
    let t = admin
        .describe_topic(DescribeTopicRequest {
            name: topic.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    t.queues.iter().map(|q| q.max_offset - q.min_offset).sum()
}

/// The (broker name, port, queue id) of each queue in the RocketMQ route
/// of `topic` as `address` answers it; empty when TOPIC_NOT_FOUND.
async fn rocketmq_route(address: &str, topic: &str) -> Vec<(String, i32, i32)> {
    let mut c = MessagingServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let mut req = tonic::Request::new(v2::QueryRouteRequest {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: topic.to_owned(),
        }),
        endpoints: None,
    });
    req.metadata_mut()
        .insert("x-mq-client-id", "cluster-test".parse().unwrap());
    let r = c.query_route(req).await.unwrap().into_inner();
    let code = r.status.unwrap().code;
    if code == v2::Code::TopicNotFound as i32 {
        return Vec::new();
    }
    assert_eq!(code, v2::Code::Ok as i32, "route of {topic} at {address}");
    let mut queues: Vec<(String, i32, i32)> = r
        .message_queues
        .iter()
        .map(|q| {
            let b = q.broker.as_ref().unwrap();
            (
                b.name.clone(),
                b.endpoints.as_ref().unwrap().addresses[0].port,
                q.id,
            )
        })
        .collect();
    queues.sort();
    queues
}

/// The (broker name, queue id) of each assignment `address` gives a push
/// consumer of `group` on `topic`.
async fn rocketmq_assignment(address: &str, topic: &str, group: &str) -> Vec<(String, i32)> {
    let mut c = MessagingServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let resource = |name: &str| {
        Some(v2::Resource {
            resource_namespace: String::new(),
            name: name.to_owned(),
        })
    };
    let mut req = tonic::Request::new(v2::QueryAssignmentRequest {
        topic: resource(topic),
        group: resource(group),
        endpoints: None,
    });
    req.metadata_mut()
        .insert("x-mq-client-id", "cluster-test".parse().unwrap());
    let r = c.query_assignment(req).await.unwrap().into_inner();
    assert_eq!(r.status.unwrap().code, v2::Code::Ok as i32);
    let mut out: Vec<(String, i32)> = r
        .assignments
        .iter()
        .map(|a| {
            let q = a.message_queue.as_ref().unwrap();
            (q.broker.as_ref().unwrap().name.clone(), q.id)
        })
        .collect();
    out.sort();
    out
}

/// Waits until `address` routes `topic` to exactly `expected`.
async fn wait_for_route(address: &str, topic: &str, expected: &[(String, i32, i32)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rocketmq_route(address, topic).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "route of {topic} at {address}: {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn queues_of(name: &str, port: u16, n: i32) -> Vec<(String, i32, i32)> {
    (0..n)
        .map(|q| (name.to_owned(), i32::from(port), q))
        .collect()
}

/// Two name servers and two brokers registered with both, sharing a topic
/// with 2 queues on each broker.
struct Cluster {
    ns: Vec<Ns>,
    brokers: Vec<Bk>,
    tmp: tempfile::TempDir,
}

impl Cluster {
    fn start(topic: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let ns: Vec<Ns> = (0..2)
            .map(|i| {
                let address = format!("127.0.0.1:{}", free_port());
                start_nameserver(&tmp.path().join(format!("ns-{i}")), &address)
            })
            .collect();
        let brokers: Vec<Bk> = ["broker-a", "broker-b"]
            .iter()
            .map(|name| start_broker(&tmp.path().join(name), name, &[&ns[0], &ns[1]]))
            .collect();
        let c = Self { ns, brokers, tmp };
        runtime().block_on(async {
            for b in &c.brokers {
                create_topic(b, topic, 2).await;
            }
            let expected = c.full_route();
            for ns in &c.ns {
                wait_for_route(&ns.address, topic, &expected).await;
            }
        });
        c
    }

    /// Both brokers' queues, sorted as `rocketmq_route` gives them.
    fn full_route(&self) -> Vec<(String, i32, i32)> {
        let mut all = queues_of("broker-a", self.brokers[0].port, 2);
        all.extend(queues_of("broker-b", self.brokers[1].port, 2));
        all
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for ns in &self.ns {
            out += &format!(
                "--- {}:\n{}\n",
                ns.address,
                ns.proc.log().unwrap_or_default()
            );
        }
        for b in &self.brokers {
            out += &format!("--- {}:\n{}\n", b.address, b.proc.log().unwrap_or_default());
        }
        out
    }

    /// Runs an SDK client against a name server as access point and checks
    /// its verdict line, and that both brokers stored some of the N
    /// messages.
    fn run_sdk(&self, what: &str, command: &mut Command, topic: &str, n: u64, verdict: &str) {
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{what} output:\n{stdout}{stderr}");
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{stdout}\n{stderr}\n{}",
            out.status,
            self.logs()
        );
        assert!(stdout.contains(verdict), "{what}: {stdout}\n{stderr}");
        let per_broker: Vec<u64> = runtime().block_on(async {
            let mut v = Vec::new();
            for b in &self.brokers {
                v.push(stored(b, topic).await);
            }
            v
        });
        assert_eq!(per_broker.iter().sum::<u64>(), n, "{per_broker:?}");
        assert!(
            per_broker.iter().all(|&m| m > 0),
            "messages were not spread over both brokers: {per_broker:?}"
        );
    }
}

#[test]
fn routes_span_brokers_survive_a_nameserver_restart_and_expire() {
    let mut c = Cluster::start("orders");
    let full = c.full_route();
    let rt = runtime();
    rt.block_on(async {
        // Each broker is an access point too: its route spans the cluster.
        for b in &c.brokers {
            wait_for_route(&b.address, "orders", &full).await;
        }
        // Push consumers ask any broker (or name server) for assignments:
        // one per broker for a normal group.
        let both = vec![("broker-a".to_owned(), -1), ("broker-b".to_owned(), -1)];
        for address in [&c.brokers[1].address, &c.ns[0].address] {
            assert_eq!(
                rocketmq_assignment(address, "orders", "push-group").await,
                both
            );
        }
        // Tern's own route query.
        let mut ns = TernNameserverClient::connect(format!("http://{}", c.ns[0].address))
            .await
            .unwrap();
        let r = ns
            .query_route(QueryRouteRequest {
                topic: "orders".to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = r.brokers.iter().map(|b| b.broker_name.as_str()).collect();
        assert_eq!(names, ["broker-a", "broker-b"]);
    });

    // Name server 1 goes away: a topic created meanwhile still reaches
    // name server 0.
    let ns1_address = c.ns[1].address.clone();
    assert_eq!(c.ns[1].proc.terminate().unwrap().code(), Some(0));
    let only_a = queues_of("broker-a", c.brokers[0].port, 3);
    rt.block_on(async {
        create_topic(&c.brokers[0], "audit", 3).await;
        wait_for_route(&c.ns[0].address, "audit", &only_a).await;
    });

    // Restarted on its address, it knows nobody until the brokers' next
    // heartbeats ask them to register again.
    c.ns[1] = start_nameserver(&c.tmp.path().join("ns-1-again"), &ns1_address);
    rt.block_on(async {
        wait_for_route(&ns1_address, "audit", &only_a).await;
        wait_for_route(&ns1_address, "orders", &full).await;
    });

    // Broker b dies: after the expiry its queues leave every route.
    c.brokers[1].proc.kill9().unwrap();
    let killed = Instant::now();
    let only_a = queues_of("broker-a", c.brokers[0].port, 2);
    rt.block_on(async {
        for ns in &c.ns {
            wait_for_route(&ns.address, "orders", &only_a).await;
        }
        wait_for_route(&c.brokers[0].address, "orders", &only_a).await;
    });
    let gone_after = killed.elapsed();
    assert!(
        gone_after >= Duration::from_secs(EXPIRY_SECS - 1),
        "routes changed after {gone_after:?}, before the expiry"
    );
    // Routes skip an expired broker at once; the sweep that drops it and
    // says so runs a few times per expiry window.
    for ns in &mut c.ns {
        ns.proc
            .wait_for_log("broker expired", Duration::from_secs(EXPIRY_SECS))
            .unwrap();
    }

    // A broker stopped gracefully unregisters: its routes go at once, long
    // before the expiry.
    let stopping = Instant::now();
    assert_eq!(c.brokers[0].proc.terminate().unwrap().code(), Some(0));
    rt.block_on(async {
        for ns in &c.ns {
            assert!(rocketmq_route(&ns.address, "orders").await.is_empty());
        }
    });
    assert!(stopping.elapsed() < Duration::from_secs(EXPIRY_SECS));
    for ns in &mut c.ns {
        ns.proc
            .wait_for_log("broker unregistered", Duration::from_secs(1))
            .unwrap();
    }
    for ns in &mut c.ns {
        assert_eq!(ns.proc.terminate().unwrap().code(), Some(0));
    }
}

#[test]
fn python_sdk_through_a_nameserver() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python cluster test") else {
        return;
    };
    let c = Cluster::start("sdk-cluster-py");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_simple.py");
    c.run_sdk(
        "python SDK",
        Command::new(&python).args([script, &c.ns[0].address, "sdk-cluster-py", "py-group", "40"]),
        "sdk-cluster-py",
        40,
        "received 40 duplicates 0 missing 0",
    );
}

/// The Python push consumer, given a name server as its access point,
/// consumes the messages of both brokers exactly once. (That a broker
/// hands out every broker's assignments is checked directly in
/// `routes_span_brokers_survive_a_nameserver_restart_and_expire`.)
#[test]
fn python_push_consumer_through_a_nameserver() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python push cluster test") else {
        return;
    };
    let c = Cluster::start("sdk-cluster-push");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_scenarios.py");
    let ns = c.ns[0].address.as_str();
    let out = Command::new(&python)
        .args([script, "send", ns, "sdk-cluster-push", "40", "push"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    c.run_sdk(
        "python push consumer",
        Command::new(&python).args([script, "push", ns, "sdk-cluster-push", "push-group", "40"]),
        "sdk-cluster-push",
        40,
        "received 40 duplicates 0",
    );
}

#[test]
fn go_sdk_through_a_nameserver() {
    let Some(bin) = sdk_support::sdk("TERN_GO_SDK_BIN", "Go cluster test") else {
        return;
    };
    let c = Cluster::start("sdk-cluster-go");
    c.run_sdk(
        "go SDK",
        Command::new(&bin).args([&c.ns[1].address, "sdk-cluster-go", "go-group", "40"]),
        "sdk-cluster-go",
        40,
        "received 40 duplicates 0 missing 0",
    );
}

/// Fills the registry of a broker data directory with `n` topics, in
/// one change (creating them one by one is timed by the registry's own
/// tests; here only the registration matters).
fn create_topics(data_dir: &Path, n: usize) -> Duration {
    let registry = tern_broker::Registry::open(&data_dir.join("meta")).unwrap();
    let started = Instant::now();
    let topics = (0..n)
        .map(|i| {
            tern_broker::TopicConfig::new(
                tern_model::TopicName::new(format!("topic-{i:06}")).unwrap(),
                2,
                tern_broker::MessageType::Normal,
                tern_broker::Permission::ReadWrite,
            )
            .unwrap()
        })
        .collect();
    registry.create_topics(topics).unwrap();
    started.elapsed()
}

#[test]
fn a_broker_with_a_hundred_thousand_topics_registers() {
    let tmp = tempfile::tempdir().unwrap();
    let data: PathBuf = tmp.path().join("broker-big");
    let took = create_topics(&data, 100_000);
    eprintln!("created 100,000 topics in {took:?}");

    let mut ns = start_nameserver(
        &tmp.path().join("ns"),
        &format!("127.0.0.1:{}", free_port()),
    );
    let started = Instant::now();
    let mut broker = start_broker(&data, "broker-big", &[&ns]);
    let expected = queues_of("broker-big", broker.port, 2);
    runtime().block_on(async {
        wait_for_route(&ns.address, "topic-099999", &expected).await;
        wait_for_route(&broker.address, "topic-099999", &expected).await;
    });
    eprintln!("broker up and registered in {:?}", started.elapsed());
    let log = broker.proc.log().unwrap();
    assert!(
        log.contains("registered with the name server") && log.contains("topics=100000"),
        "{log}"
    );

    // With its only name server gone, the broker still answers routes
    // (its own queues) once the cached answer is stale, and still stops
    // cleanly (the goodbye to the name server fails fast).
    assert_eq!(ns.proc.terminate().unwrap().code(), Some(0));
    std::thread::sleep(Duration::from_millis(2500));
    runtime().block_on(async {
        assert_eq!(
            rocketmq_route(&broker.address, "topic-099999").await,
            expected
        );
    });
    let stopping = Instant::now();
    assert_eq!(broker.proc.terminate().unwrap().code(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
}

/// Where a name server's settings come from: flag over `TERN_*` variable
/// over file over default; an unknown key in the file stops it with a
/// message naming the key.
#[test]
fn settings_flag_over_environment_over_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ns.toml");
    let [from_file, from_env, from_flag] = [0; 3].map(|_| format!("127.0.0.1:{}", free_port()));
    std::fs::write(
        &file,
        format!("listen = \"{from_file}\"\nbroker_expiry_secs = 9\n"),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    for (i, (env, flag, expected)) in [
        (None, None, &from_file),
        (Some(&from_env), None, &from_env),
        (Some(&from_env), Some(&from_flag), &from_flag),
    ]
    .into_iter()
    .enumerate()
    {
        let mut args = vec!["nameserver", "--config", config];
        if let Some(f) = flag {
            args.extend(["--listen", f.as_str()]);
        }
        let mut cmd = tern(&args);
        if let Some(e) = env {
            cmd.env("TERN_LISTEN", e);
        }
        let mut ns = TernProcess::spawn(cmd, tmp.path().join(format!("ns-{i}"))).unwrap();
        ns.wait_for_log("listening", START_TIMEOUT).unwrap();
        let log = ns.log().unwrap();
        assert!(
            log.contains(&format!("address={expected}")) && log.contains("broker_expiry=9s"),
            "{log}"
        );
        assert_eq!(ns.terminate().unwrap().code(), Some(0));
    }

    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nbroker_expiry = 9\n").unwrap();
    let out = tern(&["nameserver", "--config", config]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown field `broker_expiry`") && stderr.contains(config),
        "{stderr}"
    );
}

/// Name servers and brokers that serve TLS only: the broker registers over
/// TLS (--nameservers-insecure-skip-verify: the name server's certificate
/// is generated), and a client that reaches the cluster through the name
/// server over TLS sends to and receives from the broker it is routed to,
/// over TLS too. A broker dialling the name server in plaintext is refused
/// and says so in its log.
#[test]
fn registration_and_routing_over_tls_only() {
    let tmp = tempfile::tempdir().unwrap();
    let ns_address = format!("127.0.0.1:{}", free_port());
    let mut cmd = tern(&[
        "nameserver",
        "--listen",
        &ns_address,
        "--tls-mode",
        "enforcing",
    ]);
    let mut ns = TernProcess::spawn(
        {
            cmd.args(["--broker-expiry-secs", &EXPIRY_SECS.to_string()]);
            cmd
        },
        tmp.path().join("ns"),
    )
    .unwrap();
    ns.wait_for_log("listening", START_TIMEOUT).unwrap();
    let broker_address = format!("127.0.0.1:{}", free_port());
    let data = tmp.path().join("broker");
    let mut broker = TernProcess::spawn(
        tern(&[
            "broker",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &broker_address,
            "--name",
            "tls-broker",
            "--nameservers",
            &ns_address,
            "--heartbeat-interval-secs",
            HEARTBEAT_SECS,
            "--tls-mode",
            "enforcing",
            "--nameservers-insecure-skip-verify",
        ]),
        &data,
    )
    .unwrap();
    broker.wait_for_log("listening", START_TIMEOUT).unwrap();
    let run = |args: &[&str]| {
        let out = tern(args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = run(&[
        "topic",
        "create",
        "tls-topic",
        "--queues",
        "2",
        "-e",
        &broker_address,
        "--insecure-skip-verify",
    ]);
    assert!(ok, "{out}");
    // Through the name server: the route must have been registered over TLS.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, out) = run(&[
            "produce",
            "tls-topic",
            "--body",
            "over tls",
            "-e",
            &ns_address,
            "--insecure-skip-verify",
        ]);
        if ok {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no send through the name server: {out}\nname server log:\n{}\nbroker log:\n{}",
            ns.log().unwrap_or_default(),
            broker.log().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (ok, out) = run(&[
        "consume",
        "tls-topic",
        "--group",
        "g",
        "--max",
        "1",
        "--wait",
        "10",
        "-e",
        &ns_address,
        "--insecure-skip-verify",
    ]);
    assert!(ok && out.contains("over tls"), "{out}");

    // A broker that dials the name server in plaintext is refused.
    let plain_address = format!("127.0.0.1:{}", free_port());
    let plain_data = tmp.path().join("plain");
    let mut plain = TernProcess::spawn(
        tern(&[
            "broker",
            "--data-dir",
            plain_data.to_str().unwrap(),
            "--listen",
            &plain_address,
            "--name",
            "plain-broker",
            "--nameservers",
            &ns_address,
            "--heartbeat-interval-secs",
            HEARTBEAT_SECS,
        ]),
        &plain_data,
    )
    .unwrap();
    plain
        .wait_for_log("requires TLS", START_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}: {}", plain.log().unwrap_or_default()));
    plain.terminate().unwrap();
    broker.terminate().unwrap();
    ns.terminate().unwrap();
}
