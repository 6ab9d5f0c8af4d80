//! The cost of send de-duplication: the id table alone (a new id claimed
//! and recorded, a repeated id answered), its memory per id, and a whole
//! SendMessage over gRPC with de-duplication off and on.
//!
//! `cargo bench -p tern-broker --bench dedup`; CI runs it once with
//! `-- --test` (tiny sizes, no figures).
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tern_broker::dedup::{Begin, Dedup, Stored};
use tern_broker::{Broker, BrokerConfig, DedupConfig};
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, Topic};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::{
    Code, Message, MessageType, Resource, SendMessageRequest, SystemProperties,
};
use tonic::transport::Channel;

fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn table(dir: &std::path::Path) -> Arc<Dedup> {
    let store = tern_store::Store::open(tern_store::StoreConfig::new(dir)).unwrap();
    let d = Arc::new(Dedup::new(DedupConfig::default(), &store));
    store.close().unwrap();
    d
}

fn record(d: &Arc<Dedup>, topic: &str, id: &str, offset: u64) {
    match d.begin(topic, id) {
        Begin::Claimed(c) => c.stored(Stored {
            queue_id: 0,
            queue_offset: offset,
        }),
        other => panic!("{id}: {other:?}"),
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn id_table(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let d = table(dir.path());
    let mut g = c.benchmark_group("dedup_table");
    let n = AtomicU64::new(0);
    g.bench_function("new_id_claimed_and_recorded", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            record(&d, "orders", &format!("0A0B0C0D0E0F{i:020}"), i);
        });
    });
    record(&d, "orders", "REPEATED", 7);
    g.bench_function("repeated_id_answered", |b| {
        b.iter(|| match d.begin("orders", "REPEATED") {
            Begin::Stored(s) => assert_eq!(s.queue_offset, 7),
            other => panic!("{other:?}"),
        });
    });
    g.finish();

    // Memory: a fresh table filled with ids shaped like the SDKs' (34
    // hex characters) on a 16-character topic.
    let ids: u64 = if test_mode() { 1_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let d = table(dir.path());
    let before = rss();
    for i in 0..ids {
        record(&d, "orders-in-region", &format!("01{i:032X}"), i);
    }
    let after = rss();
    println!(
        "dedup memory: {ids} ids take {} MB resident, {} bytes per id",
        after.saturating_sub(before) >> 20,
        after.saturating_sub(before) / ids
    );
}

fn message(id: String) -> Message {
    Message {
        topic: Some(Resource {
            resource_namespace: String::new(),
            name: "bench".into(),
        }),
        user_properties: Default::default(),
        system_properties: Some(SystemProperties {
            message_id: id,
            message_type: MessageType::Normal as i32,
            ..Default::default()
        }),
        body: vec![b'x'; 100],
    }
}

/// A broker in this process on 127.0.0.1 and a client of it.
fn broker(rt: &tokio::runtime::Runtime, dir: &std::path::Path, dedup: DedupConfig) -> Running {
    let mut store = tern_store::StoreConfig::new(dir);
    store.segment_size = 8 << 20;
    // Shared machines run with full disks; this writes a few MiB.
    store.disk_high_water = 1.0;
    store.disk_hard_limit = 1.0;
    let mut cfg = BrokerConfig::new(store);
    cfg.dedup = dedup;
    let broker = Broker::open(cfg).unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(broker.serve(listener, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TernAdminClient::new(channel.clone())
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: "bench".into(),
                    queue_count: 4,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        Running {
            client: MessagingServiceClient::new(channel),
            stop,
            task,
        }
    })
}

/// A broker serving in the bench's runtime.
struct Running {
    client: MessagingServiceClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<tern_broker::Result<()>>,
}

impl Running {
    /// Shuts it down, so its threads do not run during the next case.
    fn stop(self, rt: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        drop(self.client);
        rt.block_on(self.task).unwrap().unwrap();
    }
}

/// Writes `count` messages with ids unlike the bench's into the store in
/// `dir`, as a previous run of the broker would have.
fn prefill(dir: &std::path::Path, count: u32) {
    let mut cfg = tern_store::StoreConfig::new(dir);
    cfg.segment_size = 8 << 20;
    cfg.disk_high_water = 1.0;
    cfg.disk_hard_limit = 1.0;
    let store = tern_store::Store::open(cfg).unwrap();
    for i in 0..count {
        let m = tern_model::Message {
            topic: tern_model::TopicName::new("bench").unwrap(),
            queue_id: i % 4,
            message_id: format!("FF{i:032X}"),
            tag: None,
            keys: Vec::new(),
            properties: Default::default(),
            body: vec![b'x'; 100],
            born_timestamp_ms: 0,
            flags: 0,
        };
        store.append(&[m]).unwrap();
    }
    store.close().unwrap();
}

async fn send(c: &mut MessagingServiceClient<Channel>, id: String) {
    let mut r = tonic::Request::new(SendMessageRequest {
        messages: vec![message(id)],
    });
    r.metadata_mut()
        .insert("x-mq-client-id", "bench".parse().unwrap());
    let r = c.send_message(r).await.unwrap().into_inner();
    assert_eq!(
        r.status.as_ref().map(|s| s.code),
        Some(Code::Ok as i32),
        "{r:?}"
    );
}

fn grpc_send(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("dedup_grpc_send");
    g.measurement_time(Duration::from_secs(5));
    let n = AtomicU64::new(0);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for (name, cfg, dir) in [
        ("new_id_dedup_on", DedupConfig::default(), &dirs[0]),
        ("new_id_dedup_off", DedupConfig::OFF, &dirs[1]),
    ] {
        let running = broker(&rt, dir.path(), cfg);
        let client = running.client.clone();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut c = client.clone();
                let i = n.fetch_add(1, Ordering::Relaxed);
                rt.block_on(send(&mut c, format!("01{i:032X}")));
            });
        });
        if cfg.enabled() {
            let mut c = client.clone();
            rt.block_on(send(&mut c, "REPEATED".into()));
            g.bench_function("repeated_id_dedup_on", |b| {
                b.iter(|| {
                    let mut c = client.clone();
                    rt.block_on(send(&mut c, "REPEATED".into()));
                });
            });
        }
        drop(client);
        running.stop(&rt);
    }

    // Just after a restart: ids not in memory are looked up in the
    // store's message-id index (here over 10 000 earlier messages).
    let dir = tempfile::tempdir().unwrap();
    prefill(dir.path(), if test_mode() { 100 } else { 10_000 });
    let running = broker(&rt, dir.path(), DedupConfig::default());
    let client = running.client.clone();
    g.bench_function("new_id_dedup_on_first_window_after_restart", |b| {
        b.iter(|| {
            let mut c = client.clone();
            let i = n.fetch_add(1, Ordering::Relaxed);
            rt.block_on(send(&mut c, format!("01{i:032X}")));
        });
    });
    g.finish();
    drop(client);
    running.stop(&rt);
    rt.shutdown_timeout(Duration::from_secs(1));
}

criterion_group!(benches, id_table, grpc_send);
criterion_main!(benches);
