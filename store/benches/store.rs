//! Criterion micro-benchmarks of the storage engine's hot paths: append,
//! queue read, lookup by message id. Sustained throughput beside the disk's
//! limits is measured by `benches/throughput.rs`.
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tern_model::{Message, TopicName};
use tern_store::{FlushPolicy, Store, StoreConfig};

fn message(n: u64, body: &[u8]) -> Message {
    Message {
        topic: TopicName::new("bench").expect("valid"),
        queue_id: (n % 4) as u32,
        message_id: format!("id-{n}"),
        tag: Some("TagA".into()),
        keys: vec![format!("key-{n}")],
        properties: Default::default(),
        body: body.to_vec(),
        born_timestamp_ms: 0,
        flags: 0,
    }
}

fn open(dir: &std::path::Path, flush: FlushPolicy) -> Store {
    let mut cfg = StoreConfig::new(dir);
    cfg.flush = flush;
    cfg.segment_size = 64 << 20;
    cfg.disk_high_water = 1.0;
    cfg.disk_hard_limit = 1.0;
    Store::open(cfg).expect("open")
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), FlushPolicy::Async);
    let body = [7u8; 1024];
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Bytes(1024));
    let mut n = 0;
    g.bench_function("async_1KiB", |b| {
        b.iter(|| {
            n += 1;
            store.append(&[message(n, &body)]).expect("append")
        })
    });
    let batch: Vec<_> = (0..32).map(|i| message(i, &body)).collect();
    g.throughput(Throughput::Bytes(32 * 1024));
    g.bench_function("async_batch_32x1KiB", |b| {
        b.iter(|| store.append(&batch).expect("append"))
    });
    g.finish();
    store.close().expect("close");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), FlushPolicy::Sync);
    let mut g = c.benchmark_group("append_sync");
    g.throughput(Throughput::Bytes(1024));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("sync_1KiB_one_writer", |b| {
        b.iter(|| {
            n += 1;
            store.append(&[message(n, &body)]).expect("append")
        })
    });
    g.finish();
    store.close().expect("close");
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), FlushPolicy::Async);
    let body = [7u8; 1024];
    let total = 20_000u64;
    for chunk in 0..total / 100 {
        let batch: Vec<_> = (0..100).map(|i| message(chunk * 100 + i, &body)).collect();
        store.append(&batch).expect("append");
    }
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(30)));
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(32 * 1024));
    let mut at = 0u64;
    g.bench_function("read_queue_32x1KiB_warm", |b| {
        b.iter_batched(
            || {
                at = (at + 32) % (total / 4 - 32);
                at
            },
            |from| {
                store
                    .read_queue("bench", 1, from, 32, usize::MAX)
                    .expect("read")
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    let mut k = 0u64;
    g.bench_function("find_by_message_id", |b| {
        b.iter(|| {
            k = (k + 7919) % total;
            store
                .find_by_message_id(&format!("id-{k}"), 1)
                .expect("lookup")
        })
    });
    g.finish();
    store.close().expect("close");
}

criterion_group!(benches, append, read);
criterion_main!(benches);
