//! A replicated broker group of three real `tern broker` processes
//! (`--replica-id`, `--replicas`) on loopback, with a checker in the style
//! of Jepsen: a producer sends numbered messages one at a time and records
//! each one the group acknowledged; the leader is killed with SIGKILL 20
//! times under that load (and comes back, as a follower, from its files),
//! then frozen with SIGSTOP once (and thawed: it must follow the new
//! leader); at the end everything is read from the last leader and compared:
//! no acknowledged message lost, nothing delivered that was never sent,
//! duplicates counted. The distribution of the time from a kill to the
//! next acknowledged send is printed.
//!
//! Topics are created once, through the leader, and reach every replica
//! through the group's log; name servers are not supported with replicas
//! yet, so the producer finds the leader itself (a follower answers
//! HA_NOT_AVAILABLE).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tern_client::{AdminClient, MessagingClient, OutgoingMessage, ReceiveOptions, TopicSpec};
use tern_harness::{TernProcess, cli_command, free_port};
use tern_model::{GroupName, TopicName};

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Leader kills under load (the issue asks for at least 20).
const CYCLES: usize = 20;
/// Acknowledged sends between two kills.
const SENDS_PER_CYCLE: u64 = 50;

struct Replica {
    id: u64,
    dir: std::path::PathBuf,
    address: String,
    proc: Option<TernProcess>,
}

struct Group {
    replicas: Vec<Replica>,
    peers: String,
    /// A replica frozen with SIGSTOP: not tried by the producer.
    paused: Option<usize>,
    /// Ports that serve TLS only, replicas dialling each other over TLS.
    tls: bool,
}

impl Group {
    fn new(root: &Path) -> Self {
        let replicas: Vec<Replica> = (0..3)
            .map(|id| Replica {
                id,
                dir: root.join(format!("replica-{id}")),
                address: format!("127.0.0.1:{}", free_port()),
                proc: None,
            })
            .collect();
        let peers = (0..3)
            .map(|id| format!("{id}=127.0.0.1:{}", free_port()))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            replicas,
            peers,
            paused: None,
            tls: false,
        }
    }

    fn command(&self, r: &Replica) -> Command {
        let mut c = cli_command(TERN);
        for v in [
            "TERN_CONFIG",
            "TERN_DATA_DIR",
            "TERN_LISTEN",
            "TERN_NAMESERVERS",
            "TERN_REPLICAS",
        ] {
            c.env_remove(v);
        }
        c.env("RUST_LOG", "info").args([
            "--log-format",
            "text",
            "broker",
            "--data-dir",
            r.dir.to_str().unwrap(),
            "--listen",
            &r.address,
            "--tls-mode",
            if self.tls { "enforcing" } else { "disabled" },
            "--replica-id",
            &r.id.to_string(),
            "--replicas",
            &self.peers,
        ]);
        if self.tls {
            c.arg("--replication-insecure-skip-verify");
        }
        c
    }

    fn start(&mut self, i: usize) {
        let cmd = self.command(&self.replicas[i]);
        let mut proc = TernProcess::spawn(cmd, &self.replicas[i].dir).unwrap();
        proc.wait_for_log("listening", START_TIMEOUT).unwrap();
        self.replicas[i].proc = Some(proc);
    }

    fn kill(&mut self, i: usize) {
        self.replicas[i].proc.take().unwrap().kill9().unwrap();
    }
}

/// Sends message `n` through the first replica that acknowledges it,
/// trying each running one in turn (the leader takes it; a follower
/// refuses), for up to 30 s. Returns the replica that took it.
async fn send(
    clients: &mut BTreeMap<usize, MessagingClient>,
    group: &Group,
    topic: &TopicName,
    n: u64,
    acked: &mut BTreeMap<String, u64>,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, r) in group.replicas.iter().enumerate() {
            if r.proc.is_none() || group.paused == Some(i) {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = clients.entry(i) {
                match MessagingClient::connect(&r.address).await {
                    Ok(c) => {
                        slot.insert(c);
                    }
                    Err(_) => continue,
                }
            }
            let message = OutgoingMessage {
                body: format!("{n}").into_bytes(),
                ..OutgoingMessage::default()
            };
            match clients[&i].send(topic, &[message]).await {
                Ok(results) => {
                    if let Some(Ok(receipt)) = results.into_iter().next() {
                        acked.insert(receipt.message_id, n);
                        return i;
                    }
                }
                Err(_) => {
                    clients.remove(&i);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "message {n}: no replica took it within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates `topic` through the first replica that takes it (the leader),
/// trying for up to 30 s.
async fn create_topic(group: &Group, topic: &TopicName) {
    let spec = TopicSpec {
        name: topic.clone(),
        queues: Some(4),
        message_type: None,
        permission: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for r in &group.replicas {
            if r.proc.is_some()
                && let Ok(admin) = AdminClient::connect(&r.address).await
                && admin.create_topic(&spec).await.is_ok()
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replica created topic {topic}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replica `i`'s view of its group, from its cluster status.
async fn replica_view(group: &Group, i: usize) -> tern_client::ReplicaStatus {
    let admin = AdminClient::connect(&group.replicas[i].address)
        .await
        .unwrap();
    let status = admin.cluster_status().await.unwrap();
    status.brokers[0]
        .replica
        .clone()
        .expect("a replica shows its group")
}

/// The topics replica `i` knows.
async fn topics_on(group: &Group, i: usize) -> Vec<String> {
    let admin = AdminClient::connect(&group.replicas[i].address)
        .await
        .unwrap();
    admin
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[test]
fn acknowledged_messages_survive_leader_kills() {
    let root = tempfile::tempdir().unwrap();
    let mut group = Group::new(root.path());
    for i in 0..3 {
        group.start(i);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = TopicName::new("orders").unwrap();
    // The topic is created once, through whichever replica leads (a
    // follower refuses); the registry change reaches every replica.
    rt.block_on(create_topic(&group, &topic));
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut clients: BTreeMap<usize, MessagingClient> = BTreeMap::new();
    let mut n = 0u64;
    let mut failovers = Vec::new();
    for cycle in 0..=CYCLES {
        let mut leader = 0;
        for _ in 0..SENDS_PER_CYCLE {
            leader = rt.block_on(send(&mut clients, &group, &topic, n, &mut acked));
            n += 1;
        }
        if cycle == CYCLES {
            break;
        }
        // The leader dies mid-load; the next acknowledged send measures
        // how long the group could not take writes.
        group.kill(leader);
        clients.remove(&leader);
        let killed = Instant::now();
        rt.block_on(send(&mut clients, &group, &topic, n, &mut acked));
        n += 1;
        failovers.push(killed.elapsed());
        // It comes back from its files as a follower.
        group.start(leader);
    }
    // The leader frozen (SIGSTOP) rather than killed: the others elect a
    // new one; thawed, the old leader learns the newer term and follows.
    let frozen = rt.block_on(send(&mut clients, &group, &topic, n, &mut acked));
    n += 1;
    group.replicas[frozen]
        .proc
        .as_ref()
        .unwrap()
        .pause()
        .unwrap();
    group.paused = Some(frozen);
    clients.remove(&frozen);
    let paused_at = Instant::now();
    let took_over = rt.block_on(send(&mut clients, &group, &topic, n, &mut acked));
    n += 1;
    let pause_failover = paused_at.elapsed();
    assert_ne!(took_over, frozen);
    group.replicas[frozen]
        .proc
        .as_ref()
        .unwrap()
        .resume()
        .unwrap();
    group.paused = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = rt.block_on(replica_view(&group, frozen));
        if view.role == "follower" && view.leader == Some(took_over as u64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the thawed leader does not follow: {view:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut sorted = failovers.clone();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "time to writes again after {} leader kills: min {:?}, median {:?}, p90 {:?}, max {:?}; after a frozen leader {:?}",
        sorted.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0),
        pause_failover
    );
    eprintln!("each: {failovers:?}");
    // A topic created after the kills, through the last leader, is known
    // to every replica, the restarted ones too.
    let later = TopicName::new("later").unwrap();
    rt.block_on(create_topic(&group, &later));
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..3 {
        while !rt
            .block_on(topics_on(&group, i))
            .contains(&"later".to_owned())
        {
            assert!(
                Instant::now() < deadline,
                "replica {i} does not know topic later"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            rt.block_on(topics_on(&group, i))
                .contains(&"orders".to_owned())
        );
    }
    assert_eq!(failovers.len(), CYCLES);

    // Read everything back from the last leader with a new group.
    let leader = rt.block_on(send(&mut clients, &group, &topic, n, &mut acked));
    let received: Vec<(String, u64)> = rt.block_on(async {
        let client = &clients[&leader];
        let opts = ReceiveOptions {
            group: GroupName::new("checker").unwrap(),
            topic: topic.clone(),
            filter: "*".into(),
            batch_size: 32,
            invisible: Duration::from_secs(300),
            long_polling: Duration::from_secs(5),
        };
        let mut got = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let batch = client.receive(&opts).await.unwrap();
            if batch.is_empty() {
                empty += 1;
            }
            for m in batch {
                let k: u64 = String::from_utf8(m.body.clone()).unwrap().parse().unwrap();
                got.push((m.message_id.clone(), k));
            }
        }
        got
    });
    let received_ids: BTreeSet<&String> = received.iter().map(|(id, _)| id).collect();
    let lost: Vec<&String> = acked
        .keys()
        .filter(|id| !received_ids.contains(id))
        .collect();
    let unknown: Vec<&(String, u64)> = received
        .iter()
        .filter(|(id, _)| !acked.contains_key(id))
        .collect();
    let duplicates = received.len() - received_ids.len();
    eprintln!(
        "acknowledged {}, received {} ({} distinct, {duplicates} duplicates, {} not acknowledged)",
        acked.len(),
        received.len(),
        received_ids.len(),
        unknown.len()
    );
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // A send whose answer was lost with a killed leader may be stored
    // without being acknowledged; it must still be one the producer sent.
    for (_, k) in &unknown {
        assert!(*k <= n, "received message {k}, which was never sent");
    }
    // Each replica shows its group in the cluster status: one leader, in
    // the same term as the others, tracking all three.
    let views: Vec<tern_client::ReplicaStatus> = rt.block_on(async {
        let mut views = Vec::new();
        for i in 0..group.replicas.len() {
            views.push(replica_view(&group, i).await);
        }
        views
    });
    let leaders: Vec<&tern_client::ReplicaStatus> =
        views.iter().filter(|v| v.role == "leader").collect();
    assert_eq!(leaders.len(), 1, "{views:?}");
    assert_eq!(leaders[0].id, leader as u64);
    assert_eq!(leaders[0].replicas.len(), 3);
    assert!(
        views
            .iter()
            .all(|v| v.leader == Some(leaders[0].id) && v.term == leaders[0].term),
        "{views:?}"
    );
    for r in &mut group.replicas {
        if let Some(mut p) = r.proc.take() {
            p.terminate().unwrap();
        }
    }
}

/// The endpoint of replica `i` dialled over TLS, not checking the
/// generated certificate.
fn tls_endpoint(group: &Group, i: usize) -> tern_client::Endpoints {
    let tls = tern_tls::ClientTls::new(tern_tls::ClientTlsConfig {
        insecure_skip_verify: true,
        ..tern_tls::ClientTlsConfig::default()
    })
    .unwrap();
    tern_client::Endpoints::parse(&group.replicas[i].address)
        .unwrap()
        .with_tls(Some(tls))
}

#[test]
fn replicas_replicate_over_tls() {
    // Every port serves TLS only, so replicas that elect a leader and
    // copy its log to each other do it over TLS.
    let root = tempfile::tempdir().unwrap();
    let mut group = Group::new(root.path());
    group.tls = true;
    for i in 0..3 {
        group.start(i);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let timeout = Duration::from_secs(5);
    let view = |i: usize| {
        rt.block_on(async {
            let admin = AdminClient::connect_with(&tls_endpoint(&group, i), timeout, timeout)
                .await
                .ok()?;
            admin.cluster_status().await.ok()?.brokers[0]
                .replica
                .clone()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(i) = (0..3).find(|&i| view(i).is_some_and(|v| v.role == "leader")) {
            break i;
        }
        assert!(Instant::now() < deadline, "no leader over TLS");
        std::thread::sleep(Duration::from_millis(100));
    };
    let topic = TopicName::new("secure").unwrap();
    rt.block_on(async {
        let admin = AdminClient::connect_with(&tls_endpoint(&group, leader), timeout, timeout)
            .await
            .unwrap();
        let spec = TopicSpec {
            name: topic.clone(),
            queues: Some(2),
            message_type: None,
            permission: None,
        };
        admin.create_topic(&spec).await.unwrap();
        let client = MessagingClient::connect_with(tls_endpoint(&group, leader), timeout, timeout)
            .await
            .unwrap();
        for n in 0..20 {
            let message = OutgoingMessage {
                body: format!("{n}").into_bytes(),
                ..OutgoingMessage::default()
            };
            let results = client.send(&topic, &[message]).await.unwrap();
            assert!(results[0].is_ok(), "{results:?}");
        }
    });
    // Every replica applies what the leader holds.
    let last = view(leader).unwrap().last_index;
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..3 {
        while view(i).is_none_or(|v| v.applied_index < last) {
            assert!(
                Instant::now() < deadline,
                "replica {i} did not apply up to {last}: {:?}",
                view(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for r in &mut group.replicas {
        if let Some(mut p) = r.proc.take() {
            p.terminate().unwrap();
        }
    }
}
