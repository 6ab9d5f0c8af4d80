//! Criterion benchmarks of the storage engine's hot paths.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tern_model::{Message, TopicName};
use tern_store::{FlushPolicy, Store, StoreConfig};

fn message(body: &[u8]) -> Message {
    Message {
        topic: TopicName::new("bench").expect("valid"),
        queue_id: 0,
        message_id: "id".into(),
        tag: None,
        keys: Vec::new(),
        properties: Default::default(),
        body: body.to_vec(),
        born_timestamp_ms: 0,
        flags: 0,
    }
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = StoreConfig::new(dir.path());
    cfg.flush = FlushPolicy::Async;
    cfg.segment_size = 64 << 20;
    let store = Store::open(cfg).expect("open");
    let batch = vec![message(&[7u8; 1024])];
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("async_1KiB", |b| {
        b.iter(|| store.append(&batch).expect("append"))
    });
    g.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
