//! Consumption scenarios with the official Python SDK (PyPI
//! `rocketmq-python-client`) against real `tern standalone` processes:
//! every group gets every message, the members of one group share the
//! messages without duplicates, an unacknowledged message comes back and
//! ends in the group's dead-letter queue (which is itself readable), a broker
//! killed with SIGKILL under `--flush sync` loses no acknowledged send, the
//! messages of a consumer process killed mid-receive come back, and the
//! push consumer consumes.
//!
//! Topics read with the SimpleConsumer have one queue here: the Python SDK
//! (5.1.2) polls a randomly chosen queue on each receive (it builds a new
//! queue selector every call), and each empty poll waits out the long-poll
//! time, so a many-queue topic makes the tests slow and their idle-based
//! ends unreliable.
//!
//! The SDK steps are `tests/sdk/python_scenarios.py`; `scripts/test` sets
//! `TERN_PYTHON` to the interpreter of a virtualenv holding the SDK. Without
//! it these tests say so and do not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sdk_support::{Standalone, free_port};
use tern_harness::TernProcess;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateGroupRequest, Group};

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_scenarios.py");

#[track_caller]
fn python() -> Option<String> {
    sdk_support::sdk("TERN_PYTHON", "scenario test")
}

/// `python python_scenarios.py ARGS...`, output captured.
fn step(python: &str, args: &[&str]) -> Command {
    let mut command = Command::new(python);
    command
        .arg(SCRIPT)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for a step and checks that it succeeded; returns its stdout.
#[track_caller]
fn finish(what: &str, child: Child, broker: &TernProcess) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr);
    eprintln!("{what}:\n{stdout}{stderr}");
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{stderr}\nbroker log:\n{}",
        broker.log().unwrap_or_default()
    );
    stdout
}

/// Runs a step to the end and checks that it succeeded; returns its stdout.
#[track_caller]
fn run(what: &str, python: &str, args: &[&str], broker: &TernProcess) -> String {
    finish(what, step(python, args).spawn().unwrap(), broker)
}

/// The `got BODY attempt A` lines of a receive step, in order.
fn deliveries(stdout: &str) -> Vec<(String, u32)> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("got ")?;
            let (body, attempt) = rest.rsplit_once(" attempt ")?;
            Some((body.to_owned(), attempt.parse().unwrap()))
        })
        .collect()
}

fn bodies(prefix: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Creates a consumer group with `max_retries` through the admin API.
fn create_group(port: u16, name: &str, max_retries: i32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut admin = TernAdminClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        admin
            .create_group(CreateGroupRequest {
                group: Some(Group {
                    name: name.to_owned(),
                    fifo: false,
                    max_retries,
                }),
            })
            .await
            .unwrap();
    });
}

#[test]
fn two_groups_each_get_every_message() {
    let Some(py) = python() else { return };
    let tern = Standalone::start();
    tern.create_topic("signups", 1);
    let ep = tern.listen.as_str();
    run(
        "send",
        &py,
        &["send", ep, "signups", "40", "user"],
        &tern.tern,
    );

    let email = step(&py, &["receive", ep, "signups", "email", "40"])
        .spawn()
        .unwrap();
    let sms = step(&py, &["receive", ep, "signups", "sms", "40"])
        .spawn()
        .unwrap();
    for (group, child) in [("email", email), ("sms", sms)] {
        let out = finish(group, child, &tern.tern);
        let got = deliveries(&out);
        let distinct: BTreeSet<String> = got.iter().map(|(b, _)| b.clone()).collect();
        assert_eq!(distinct, bodies("user", 40), "group {group}");
        assert_eq!(got.len(), 40, "group {group} had redeliveries: {got:?}");
    }
    tern.stop();
}

#[test]
fn members_of_one_group_share_the_messages() {
    let Some(py) = python() else { return };
    let tern = Standalone::start();
    tern.create_topic("jobs", 1);
    let ep = tern.listen.as_str();
    run("send", &py, &["send", ep, "jobs", "60", "job"], &tern.tern);

    // Two clients of one group, small batches, slowly: both get a share.
    let out = run(
        "two members",
        &py,
        &["share", ep, "jobs", "workers", "60", "2"],
        &tern.tern,
    );
    let member = |m: &str| -> Vec<(String, u32)> {
        let prefix = format!("member {m} ");
        deliveries(
            &out.lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    let (a, b) = (member("0"), member("1"));
    let set_a: BTreeSet<String> = a.iter().map(|(x, _)| x.clone()).collect();
    let set_b: BTreeSet<String> = b.iter().map(|(x, _)| x.clone()).collect();
    assert!(
        !set_a.is_empty() && !set_b.is_empty(),
        "one member got nothing: a {} b {}",
        set_a.len(),
        set_b.len()
    );
    let both: Vec<_> = set_a.intersection(&set_b).collect();
    assert!(both.is_empty(), "delivered to both members: {both:?}");
    let all: BTreeSet<String> = set_a.union(&set_b).cloned().collect();
    assert_eq!(all, bodies("job", 60));
    // Every delivery was acked in time: nothing came twice.
    assert_eq!(a.len() + b.len(), 60, "redeliveries: {a:?} {b:?}");
    tern.stop();
}

#[test]
fn unacked_message_comes_back_then_goes_to_the_dead_letter_queue() {
    let Some(py) = python() else { return };
    let tern = Standalone::start();
    tern.create_topic("payments", 1);
    // One retry: two deliveries, then the dead-letter queue.
    create_group(tern.port, "billing", 1);
    let ep = tern.listen.as_str();
    run(
        "send",
        &py,
        &["send", ep, "payments", "1", "poison"],
        &tern.tern,
    );

    // Never acks; 2 s invisibility; keeps polling for 10 s after the first
    // delivery (it waits for a second distinct body that never comes). The
    // second attempt expires at about 4 s.
    let out = run(
        "receive without ack",
        &py,
        &[
            "receive",
            ep,
            "payments",
            "billing",
            "2",
            "--no-ack",
            "--invisible",
            "2",
            "--idle",
            "10",
        ],
        &tern.tern,
    );
    let got = deliveries(&out);
    assert_eq!(
        got,
        vec![("poison-0".to_owned(), 1), ("poison-0".to_owned(), 2)],
        "expected exactly two deliveries (attempts 1 and 2)"
    );

    // The group is done with it: the next receive that finds it expired at
    // its last attempt moves it to the dead-letter queue instead.
    let out = run(
        "receive again",
        &py,
        &["receive", ep, "payments", "billing", "1", "--idle", "6"],
        &tern.tern,
    );
    assert_eq!(deliveries(&out), vec![], "{out}");

    // The dead-letter queue is a topic like any other.
    let out = run(
        "read the dead-letter queue",
        &py,
        &["receive", ep, "%DLQ%billing", "dlq-reader", "1"],
        &tern.tern,
    );
    let got = deliveries(&out);
    assert_eq!(got, vec![("poison-0".to_owned(), 1)]);
    tern.stop();
}

#[test]
fn sync_flush_broker_killed_mid_send_keeps_every_acknowledged_message() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--listen", listen.as_str(), "--flush", "sync"];
    let mut tern = TernProcess::standalone_with(TERN, &data, &args).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(sdk_support::create_topic(port, "orders", 1));

    let mut producer = step(
        &py,
        &[
            "send",
            &listen,
            "orders",
            "100000",
            "order",
            "--keep-going-on-failure",
        ],
    )
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = producer.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // Kill the broker once a few hundred sends were acknowledged.
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 300 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|err| panic!("producer stalled ({err}) after {}", acked.len()));
        if let Some(body) = line.strip_prefix("acked ") {
            acked.insert(body.to_owned());
        }
    }
    tern.kill9().unwrap();
    // Everything the producer printed before it noticed is acknowledged too.
    let mut failures = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        if let Some(body) = line.strip_prefix("acked ") {
            acked.insert(body.to_owned());
        } else if line.starts_with("failed ") {
            failures.push(line);
        }
    }
    // It exits on its own once a send fails; a stuck one is a failure.
    let exited = Instant::now();
    let status = loop {
        if let Some(status) = producer.try_wait().unwrap() {
            break status;
        }
        if exited.elapsed() > Duration::from_secs(60) {
            producer.kill().unwrap();
            panic!("the producer did not give up after the broker died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    assert!(
        status.success() && failures.len() == 1,
        "producer: {status} {failures:?}"
    );
    eprintln!("{} sends acknowledged before the kill", acked.len());

    let mut tern = TernProcess::standalone_with(TERN, &data, &args).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    let want = tmp.path().join("acked.txt");
    let lines: Vec<&str> = acked.iter().map(String::as_str).collect();
    std::fs::write(&want, lines.join("\n")).unwrap();
    let out = run(
        "receive after restart",
        &py,
        &[
            "receive",
            &listen,
            "orders",
            "after-crash",
            "0",
            "--want-file",
            want.to_str().unwrap(),
        ],
        &tern,
    );
    let got: BTreeMap<String, u32> = deliveries(&out).into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|b| !got.contains_key(*b)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    tern.terminate().unwrap();
}

#[test]
fn python_push_consumer_consumes_every_message() {
    let Some(py) = python() else { return };
    let tern = Standalone::start();
    tern.create_topic("clicks", 4);
    let ep = tern.listen.as_str();
    run(
        "send",
        &py,
        &["send", ep, "clicks", "50", "click"],
        &tern.tern,
    );
    tern.run_client(
        "push consumer",
        Command::new(&py).args([SCRIPT, "push", ep, "clicks", "analytics", "50"]),
        "received 50 duplicates 0",
    );
    tern.stop();
}

#[test]
fn messages_of_a_consumer_killed_mid_receive_come_back() {
    let Some(py) = python() else { return };
    let tern = Standalone::start();
    tern.create_topic("emails", 1);
    let ep = tern.listen.as_str();
    run(
        "send",
        &py,
        &["send", ep, "emails", "5", "mail"],
        &tern.tern,
    );

    // A consumer takes all five (3 s invisibility) and is killed before it
    // acks any.
    let mut doomed = step(
        &py,
        &[
            "receive",
            ep,
            "emails",
            "mailers",
            "5",
            "--no-ack",
            "--invisible",
            "3",
            "--slow",
            "60",
        ],
    )
    .spawn()
    .unwrap();
    let stdout = BufReader::new(doomed.stdout.take().unwrap());
    let mut taken = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.starts_with("got ") {
            taken.push(line);
            // It sleeps 60 s after each message: this is mid-receive.
            break;
        }
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    assert_eq!(taken.len(), 1, "the doomed consumer received nothing");

    // Another member of the group gets all five once their invisibility
    // ends, each on its second delivery.
    let out = run(
        "receive after the kill",
        &py,
        &["receive", ep, "emails", "mailers", "5"],
        &tern.tern,
    );
    let got: BTreeMap<String, u32> = deliveries(&out).into_iter().collect();
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        bodies("mail", 5)
    );
    assert!(
        got.values().all(|attempt| *attempt == 2),
        "each message should be on its second delivery: {got:?}"
    );
    tern.stop();
}
