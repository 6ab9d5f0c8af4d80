//! The everyday `tern` commands (`topic`, `group`, `cluster`, `produce`,
//! `consume`) as a user runs them: the real binary against a real
//! `tern standalone` on a free port, checking what they print and how they
//! exit; and `produce`/`consume` through a name server in front of two
//! `tern broker` processes.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeSet, HashSet};
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_harness::{TernProcess, cli_command, free_port};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A running `tern` server and the endpoint the commands use.
struct Node {
    tern: TernProcess,
    endpoint: String,
    /// The data directory's parent, when the node owns it.
    _tmp: Option<tempfile::TempDir>,
}

impl Node {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let endpoint = format!("127.0.0.1:{}", free_port());
        let mut tern =
            TernProcess::standalone_with(TERN, tmp.path().join("data"), &["--listen", &endpoint])
                .unwrap();
        tern.wait_for_log("listening", Duration::from_secs(30))
            .unwrap();
        Self {
            tern,
            endpoint,
            _tmp: Some(tmp),
        }
    }

    /// Runs `tern ARGS --endpoint <this node>`, with `stdin` as input.
    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = cli_command(TERN);
        c.args(args).args(["--endpoint", &self.endpoint]);
        let Some(input) = stdin else {
            return c.stdin(Stdio::null()).output().unwrap();
        };
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    #[track_caller]
    fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_with(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tern {args:?} failed ({}):\n{stdout}\n{stderr}\nbroker log:\n{}",
            out.status,
            self.tern.log().unwrap_or_default()
        );
        stdout
    }

    /// Runs a command with `--output json`; parses its one document.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Runs a command with `--output json` that prints JSON lines.
    #[track_caller]
    fn json_lines(&self, args: &[&str], stdin: Option<&str>) -> Vec<Value> {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        self.ok_with(&all, stdin)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Runs a command that must fail with exit status 1; returns its
    /// standard error.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run_with(args, None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "tern {args:?}: {stderr}{}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    fn stop(mut self) {
        self.tern.terminate().unwrap();
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[test]
fn topics_are_created_listed_described_updated_and_deleted() {
    let node = Node::start();

    let out = node.ok(&["topic", "create", "orders", "--queues", "4"]);
    assert_eq!(
        out.trim(),
        "created topic orders: 4 queues, normal messages, read-write"
    );
    let created = node.json(&[
        "topic",
        "create",
        "payments",
        "--message-type",
        "fifo",
        "--permission",
        "read",
    ]);
    assert_eq!(created["name"], "payments");
    assert_eq!(created["queues"], 8, "the broker's default queue count");
    assert_eq!(created["message_type"], "fifo");
    assert_eq!(created["permission"], "read");

    let list = node.json(&["topic", "list"]);
    assert_eq!(names(&list), ["orders", "payments"]);
    let table = node.ok(&["topic", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for (line, cells) in lines.iter().zip([
        ["NAME", "QUEUES", "MESSAGE TYPE", "PERMISSION"],
        ["orders", "4", "normal", "read-write"],
        ["payments", "8", "fifo", "read"],
    ]) {
        for cell in cells {
            assert!(line.contains(cell), "{cell} in {line:?}\n{table}");
        }
    }

    let described = node.json(&["topic", "describe", "orders"]);
    assert_eq!(described["topic"]["queues"], 4);
    let queues = described["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 4);
    for (i, q) in queues.iter().enumerate() {
        assert_eq!(q["queue_id"], i);
        assert_eq!(
            (q["min_offset"].as_u64(), q["max_offset"].as_u64()),
            (Some(0), Some(0))
        );
    }
    let table = node.ok(&["topic", "describe", "orders"]);
    assert!(table.starts_with("topic orders: 4 queues"), "{table}");
    assert!(
        table.contains("MIN OFFSET") && table.contains("MAX OFFSET"),
        "{table}"
    );

    let updated = node.json(&[
        "topic",
        "update",
        "orders",
        "--queues",
        "6",
        "--permission",
        "write",
    ]);
    assert_eq!(updated["queues"], 6);
    assert_eq!(updated["permission"], "write");
    assert_eq!(updated["message_type"], "normal", "kept");
    let out = node.ok(&["topic", "update", "payments", "--message-type", "mixed"]);
    assert_eq!(
        out.trim(),
        "updated topic payments: 8 queues, mixed messages, read"
    );

    // An update that changes nothing is refused by the argument parser.
    let out = node.run_with(&["topic", "update", "orders"], None);
    assert_eq!(out.status.code(), Some(2));
    // Shrinking is refused by the broker, with its reason.
    let err = node.fails(&["topic", "update", "orders", "--queues", "2"]);
    assert!(
        err.contains("updating topic orders") && err.contains("shrink"),
        "{err}"
    );
    // Creating twice names the topic and the gRPC status.
    let err = node.fails(&["topic", "create", "orders"]);
    assert!(
        err.contains("creating topic orders: ALREADY_EXISTS"),
        "{err}"
    );

    let deleted = node.json(&["topic", "delete", "payments"]);
    assert_eq!(deleted["deleted"], "payments");
    assert_eq!(names(&node.json(&["topic", "list"])), ["orders"]);
    let out = node.ok(&["topic", "delete", "orders"]);
    assert_eq!(out.trim(), "deleted topic orders");
    assert_eq!(node.ok(&["topic", "list"]).trim(), "no topics");
    assert_eq!(node.json(&["topic", "list"]), serde_json::json!([]));
    node.stop();
}

#[test]
fn groups_are_created_listed_described_updated_and_deleted() {
    let node = Node::start();

    let out = node.ok(&["group", "create", "billing", "--max-retries", "5"]);
    assert_eq!(out.trim(), "created group billing: not FIFO, 5 retries");
    let ledger = node.json(&["group", "create", "ledger", "--fifo"]);
    assert_eq!(ledger["fifo"], true);
    assert_eq!(ledger["max_retries"], 16, "the broker's default");

    assert_eq!(names(&node.json(&["group", "list"])), ["billing", "ledger"]);
    let table = node.ok(&["group", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for (line, cells) in lines.iter().zip([
        ["NAME", "FIFO", "MAX RETRIES"],
        ["billing", "no", "5"],
        ["ledger", "yes", "16"],
    ]) {
        for cell in cells {
            assert!(line.contains(cell), "{cell} in {line:?}\n{table}");
        }
    }

    let described = node.json(&["group", "describe", "billing"]);
    assert_eq!(described["group"]["max_retries"], 5);
    assert_eq!(described["topics"], serde_json::json!([]));
    assert_eq!(described["total_lag"], 0);
    let table = node.ok(&["group", "describe", "billing"]);
    assert!(
        table.contains("group billing: not FIFO, 5 retries"),
        "{table}"
    );
    assert!(table.contains("no consumption yet"), "{table}");

    // Options not given keep their value: the FIFO flag survives a retry change.
    let updated = node.json(&["group", "update", "ledger", "--max-retries", "3"]);
    assert_eq!(
        (updated["fifo"].as_bool(), updated["max_retries"].as_u64()),
        (Some(true), Some(3))
    );
    let updated = node.json(&["group", "update", "ledger", "--no-fifo"]);
    assert_eq!(
        (updated["fifo"].as_bool(), updated["max_retries"].as_u64()),
        (Some(false), Some(3))
    );
    let out = node.ok(&["group", "update", "billing", "--fifo"]);
    assert_eq!(out.trim(), "updated group billing: FIFO, 5 retries");

    let err = node.fails(&["group", "create", "billing"]);
    assert!(
        err.contains("creating group billing: ALREADY_EXISTS"),
        "{err}"
    );
    assert_eq!(
        node.ok(&["group", "delete", "billing"]).trim(),
        "deleted group billing"
    );
    assert_eq!(names(&node.json(&["group", "list"])), ["ledger"]);
    let err = node.fails(&["group", "describe", "billing"]);
    assert!(err.contains("describing group billing: NOT_FOUND"), "{err}");
    node.stop();
}

#[test]
fn produce_from_stdin_then_consume_everything_and_the_lag_drops_to_zero() {
    let node = Node::start();
    node.ok(&["topic", "create", "events", "--queues", "4"]);
    let input: Vec<String> = (0..100).map(|i| format!("event number {i}")).collect();
    let stdin = input.join("\n") + "\n";

    // Batches of 10: ten requests, which the broker spreads over its
    // queues (one queue per request, as RocketMQ does for a batch).
    let sent = node.json_lines(&["produce", "events", "--batch", "10"], Some(&stdin));
    assert_eq!(sent.len(), 100);
    let ids: HashSet<&str> = sent
        .iter()
        .map(|s| s["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 100, "message ids are unique");
    assert!(
        ids.iter().all(|id| id.len() == 34 && id.starts_with("01")),
        "{ids:?}"
    );
    assert_eq!(sent[99]["line"], 100);
    assert!(
        sent.iter().all(|s| s["broker"] == "tern-0"),
        "{:?}",
        sent[0]
    );

    // The broker chooses the queue of each request: all 100 are stored,
    // spread over every queue.
    let described = node.json(&["topic", "describe", "events"]);
    let per_queue: Vec<u64> = described["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["max_offset"].as_u64().unwrap() - q["min_offset"].as_u64().unwrap())
        .collect();
    assert_eq!(per_queue.iter().sum::<u64>(), 100);
    assert!(
        per_queue.len() == 4 && per_queue.iter().all(|&n| n > 0),
        "spread over every queue: {per_queue:?}"
    );

    let received = node.json_lines(
        &["consume", "events", "--group", "readers", "--max", "100"],
        None,
    );
    assert_eq!(received.len(), 100);
    let bodies: BTreeSet<&str> = received
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = input.iter().map(String::as_str).collect();
    assert_eq!(bodies, expected);
    let got_ids: HashSet<&str> = received
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(got_ids, ids);

    let group = node.json(&["group", "describe", "readers"]);
    assert_eq!(group["total_lag"], 0, "{group}");
    let topics = group["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1, "{group}");
    assert_eq!(topics[0]["topic"], "events");
    let mut consumed = 0;
    for q in topics[0]["queues"].as_array().unwrap() {
        assert_eq!(q["lag"], 0, "{q}");
        assert_eq!(q["inflight"], 0, "{q}");
        assert_eq!(q["held"], 0, "{q}");
        assert_eq!(q["consumer_offset"], q["broker_offset"], "{q}");
        consumed += q["consumer_offset"].as_u64().unwrap();
    }
    assert_eq!(consumed, 100);

    // Everything was acknowledged: nothing comes back.
    let again = node.json_lines(
        &["consume", "events", "--group", "readers", "--wait", "1"],
        None,
    );
    assert!(again.is_empty(), "{again:?}");
    node.stop();
}

#[test]
fn lag_counts_down_as_a_group_consumes() {
    let node = Node::start();
    node.ok(&["topic", "create", "jobs", "--queues", "1"]);
    node.ok(&["group", "create", "workers"]);
    let stdin: String = (0..100).map(|i| format!("job {i}\n")).collect();
    let out = node.ok_with(&["produce", "jobs", "--tag", "job"], Some(&stdin));
    assert_eq!(out.trim(), "sent 100 messages to topic jobs");

    let table = node.ok(&["group", "describe", "workers"]);
    assert!(table.contains("no consumption yet"), "{table}");

    // Human output: each message with its fields, in queue order.
    let out = node.ok(&["consume", "jobs", "--group", "workers", "--max", "40"]);
    assert_eq!(out.matches("\nmessage ").count() + 1, 40, "{out}");
    assert!(out.starts_with("message "), "{out}");
    assert!(
        out.contains("  tag:        job\n  body:       job 0\n"),
        "{out}"
    );
    assert!(out.contains("  body:       job 39\n"), "{out}");
    assert!(!out.contains("job 40\n"), "{out}");

    let table = node.ok(&["group", "describe", "workers"]);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("jobs"))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["jobs", "0", "100", "40", "60", "0", "0"], "{table}");
    assert!(table.contains("total lag: 60"), "{table}");
    let group = node.json(&["group", "describe", "workers"]);
    assert_eq!(group["total_lag"], 60);

    let rest = node.json_lines(
        &["consume", "jobs", "--group", "workers", "--max", "60"],
        None,
    );
    assert_eq!(
        rest.first().map(|m| &m["body"]),
        Some(&Value::from("job 40"))
    );
    assert_eq!(
        rest.last().map(|m| &m["body"]),
        Some(&Value::from("job 99"))
    );
    let group = node.json(&["group", "describe", "workers"]);
    assert_eq!(group["total_lag"], 0);
    assert_eq!(group["topics"][0]["queues"][0]["consumer_offset"], 100);
    node.stop();
}

#[test]
fn one_message_with_tag_keys_and_properties_and_a_tag_filter() {
    let node = Node::start();
    node.ok(&["topic", "create", "orders", "--queues", "2"]);
    let out = node.ok(&[
        "produce",
        "orders",
        "--body",
        "order 1 created",
        "--tag",
        "created",
        "--key",
        "order-1",
        "--key",
        "customer-9",
        "--property",
        "region=eu",
        "--property",
        "source=web",
    ]);
    assert!(out.starts_with("sent message 01"), "{out}");
    assert!(
        out.contains("to topic orders: broker tern-0, offset "),
        "{out}"
    );
    let paid = node.json_lines(
        &[
            "produce",
            "orders",
            "--body",
            "order 1 paid",
            "--tag",
            "paid",
        ],
        None,
    );
    assert_eq!(paid.len(), 1);
    assert!(paid[0].get("line").is_none(), "{}", paid[0]);

    // A group that only wants `paid` gets only that one.
    let got = node.json_lines(
        &[
            "consume", "orders", "--group", "payments", "--filter", "paid", "--wait", "1",
        ],
        None,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["body"], "order 1 paid");
    assert_eq!(got[0]["message_id"], paid[0]["message_id"]);

    let got = node.json_lines(
        &[
            "consume",
            "orders",
            "--group",
            "audit",
            "--filter",
            "created || shipped",
            "--max",
            "1",
        ],
        None,
    );
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["tag"], "created");
    assert_eq!(m["keys"], serde_json::json!(["order-1", "customer-9"]));
    assert_eq!(
        m["properties"],
        serde_json::json!({"region": "eu", "source": "web"})
    );
    assert_eq!(m["body"], "order 1 created");
    assert_eq!(m["delivery_attempt"], 1);
    node.stop();
}

#[test]
fn errors_name_what_failed_and_exit_non_zero() {
    let node = Node::start();

    let err = node.fails(&["produce", "nope", "--body", "x"]);
    assert!(err.contains("topic nope"), "{err}");
    assert!(err.contains("TOPIC_NOT_FOUND (40402)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let err = node.fails(&["topic", "describe", "nope"]);
    assert!(err.contains("describing topic nope: NOT_FOUND"), "{err}");
    let err = node.fails(&["consume", "nope", "--group", "g", "--wait", "1"]);
    assert!(
        err.contains("topic nope") && err.contains("TOPIC_NOT_FOUND"),
        "{err}"
    );
    let err = node.fails(&["topic", "delete", "nope"]);
    assert!(err.contains("deleting topic nope: NOT_FOUND"), "{err}");

    // Invalid names never reach the broker: the argument parser refuses them.
    for args in [
        &["topic", "create", "bad name"][..],
        &["group", "create", "bad/name"][..],
        &["consume", "orders", "--group", "x y"][..],
    ] {
        let out = node.run_with(args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("name") && stderr.contains("contains"),
            "{stderr}"
        );
    }
    let out = node.run_with(&["produce", "orders", "--property", "novalue"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=VALUE"));

    // Permissions are honoured before anything is sent.
    node.ok(&["topic", "create", "readonly", "--permission", "read"]);
    let err = node.fails(&["produce", "readonly", "--body", "x"]);
    assert!(
        err.contains("FORBIDDEN") && err.contains("no writable queue"),
        "{err}"
    );
    node.ok(&["topic", "create", "writeonly", "--permission", "write"]);
    let err = node.fails(&["consume", "writeonly", "--group", "g"]);
    assert!(
        err.contains("FORBIDDEN") && err.contains("no readable queue"),
        "{err}"
    );

    // Empty lines are skipped, and the rest are sent.
    node.ok(&["topic", "create", "lines"]);
    let out = node.run_with(&["produce", "lines"], Some("a\n\nb\n"));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sent 2 messages to topic lines"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 empty line\n"));
    node.stop();
}

#[test]
fn an_unreachable_endpoint_fails_quickly_and_clearly() {
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let out = cli_command(TERN)
        .args(["topic", "list"])
        .env("TERN_ENDPOINT", &endpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!("cannot connect to {endpoint}")),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let out = cli_command(TERN)
        .args(["cluster", "status", "--endpoint", "not-an-endpoint"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST:PORT"));
}

#[test]
fn cluster_status_shows_the_broker() {
    let node = Node::start();
    node.ok(&["topic", "create", "t1"]);
    let status = node.json(&["cluster", "status"]);
    let brokers = status["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{status}");
    assert_eq!(brokers[0]["topic_count"], 1);
    let usage = brokers[0]["store"]["disk_usage"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&usage), "{status}");
    let table = node.ok(&["cluster", "status"]);
    assert!(
        table.contains("BROKER") && table.contains("DISK USED"),
        "{table}"
    );
    let name = brokers[0]["name"].as_str().unwrap();
    assert!(
        table.lines().nth(1).is_some_and(|l| l.contains(name)),
        "{table}"
    );
    node.stop();
}

#[test]
fn help_has_examples() {
    for cmd in [
        &["topic", "--help"][..],
        &["topic", "create", "--help"][..],
        &["group", "describe", "--help"][..],
        &["produce", "--help"][..],
        &["consume", "--help"][..],
        &["cluster", "status", "--help"][..],
    ] {
        let out = cli_command(TERN).args(cmd).output().unwrap();
        assert!(out.status.success(), "{cmd:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{cmd:?}: {text}");
        assert!(
            text.contains("TERN_ENDPOINT") || cmd.len() == 2 && cmd[0] == "topic",
            "{cmd:?}: {text}"
        );
    }
}

/// `tern ARGS` for a server process, its settings only from `args`.
fn server_command(args: &[&str]) -> Command {
    let mut c = cli_command(TERN);
    for var in [
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
    ] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "info")
        .args(["--log-format", "text"])
        .args(args);
    c
}

fn spawn_server(args: &[&str], dir: &std::path::Path) -> TernProcess {
    let mut p = TernProcess::spawn(server_command(args), dir).unwrap();
    p.wait_for_log("listening", Duration::from_secs(60))
        .unwrap();
    p
}

/// Queues in the RocketMQ route of `topic` that `address` answers.
fn route_size(address: &str, topic: &str) -> usize {
    use tern_protocol::v2;
    use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
            .insert("x-mq-client-id", "cli-admin-test".parse().unwrap());
        let r = c.query_route(req).await.unwrap().into_inner();
        r.message_queues.len()
    })
}

#[test]
fn produce_and_consume_through_a_name_server_reach_every_broker() {
    let tmp = tempfile::tempdir().unwrap();
    let ns_address = format!("127.0.0.1:{}", free_port());
    let ns = spawn_server(
        &["nameserver", "--listen", &ns_address],
        &tmp.path().join("ns"),
    );
    let mut brokers = Vec::new();
    for (name, queues) in [("east", "2"), ("west", "3")] {
        let address = format!("127.0.0.1:{}", free_port());
        let dir = tmp.path().join(name);
        let broker = spawn_server(
            &[
                "broker",
                "--data-dir",
                dir.to_str().unwrap(),
                "--listen",
                &address,
                "--name",
                name,
                "--nameservers",
                &ns_address,
                "--heartbeat-interval-secs",
                "1",
            ],
            &dir,
        );
        let node = Node {
            tern: broker,
            endpoint: address,
            _tmp: None,
        };
        node.ok(&["topic", "create", "spread", "--queues", queues]);
        brokers.push(node);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while route_size(&ns_address, "spread") != 5 {
        assert!(
            Instant::now() < deadline,
            "the name server never routed both brokers"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The name server is the access point; each message goes to the broker
    // of the queue picked, round-robin over all five.
    let via_ns = Node {
        tern: ns,
        endpoint: ns_address,
        _tmp: None,
    };
    let stdin: String = (0..50).map(|i| format!("spread {i}\n")).collect();
    let sent = via_ns.json_lines(&["produce", "spread"], Some(&stdin));
    assert_eq!(sent.len(), 50);
    let on = |b: &str| sent.iter().filter(|s| s["broker"] == b).count();
    assert_eq!((on("east"), on("west")), (20, 30), "{sent:?}");

    let got = via_ns.json_lines(
        &["consume", "spread", "--group", "all", "--max", "50"],
        None,
    );
    let bodies: BTreeSet<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    let expected: BTreeSet<String> = (0..50).map(|i| format!("spread {i}")).collect();
    assert_eq!(bodies, expected.iter().map(String::as_str).collect());

    // Each broker saw its share acknowledged.
    for (node, share) in brokers.iter().zip([20, 30]) {
        let group = node.json(&["group", "describe", "all"]);
        assert_eq!(group["total_lag"], 0, "{group}");
        let consumed: u64 = group["topics"][0]["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["consumer_offset"].as_u64().unwrap())
            .sum();
        assert_eq!(consumed, share, "{group}");
    }
    for node in brokers {
        node.stop();
    }
    via_ns.stop();
}
