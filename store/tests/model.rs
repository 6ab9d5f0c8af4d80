//! Property test: random appends, reads, offset commits and reopens,
//! checked against a plain in-memory model of what the store must hold.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;

use common::{body_for, msg, small_config};
use proptest::prelude::*;
use tern_store::{FlushPolicy, Store, StoreConfig, StoreError};

#[derive(Debug, Clone)]
enum Op {
    Append { queue: u32, sizes: Vec<usize> },
    Read { queue: u32, offset: u64, max: usize },
    Commit { queue: u32, offset: u64 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..3, prop::collection::vec(1usize..900, 1..6))
            .prop_map(|(queue, sizes)| Op::Append { queue, sizes }),
        3 => (0u32..3, 0u64..40, 1usize..10).prop_map(|(queue, offset, max)| Op::Read { queue, offset, max }),
        1 => (0u32..3, 0u64..100).prop_map(|(queue, offset)| Op::Commit { queue, offset }),
        1 => Just(Op::Reopen),
    ]
}

fn config(dir: &std::path::Path, sync: bool) -> StoreConfig {
    let mut c = small_config(
        dir,
        if sync {
            FlushPolicy::Sync
        } else {
            FlushPolicy::Async
        },
    );
    c.segment_size = 6144;
    c.cq_entries_per_file = 16;
    c.index_entries_per_file = 32;
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..60), sync in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(config(dir.path(), sync)).unwrap();
        let mut model: HashMap<u32, Vec<(String, Vec<u8>)>> = HashMap::new();
        let mut offsets: HashMap<u32, u64> = HashMap::new();
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Append { queue, sizes } => {
                    let batch: Vec<_> = sizes.iter().map(|&len| {
                        seq += 1;
                        msg("model", queue, &format!("s{seq}"), &body_for(seq, len))
                    }).collect();
                    let acks = match store.append(&batch) {
                        Ok(a) => a,
                        // Some random batches exceed the tiny segment: refused whole.
                        Err(StoreError::BatchTooLarge { len, segment_size }) => {
                            prop_assert!(len > segment_size);
                            continue;
                        }
                        Err(e) => return Err(TestCaseError::fail(e.to_string())),
                    };
                    let q = model.entry(queue).or_default();
                    for (a, m) in acks.iter().zip(&batch) {
                        prop_assert_eq!(a.queue_offset, q.len() as u64);
                        q.push((m.message_id.clone(), m.body.clone()));
                    }
                }
                Op::Read { queue, offset, max } => {
                    store.wait_dispatched(store.max_offset(), std::time::Duration::from_secs(5));
                    let want = model.get(&queue).map_or(&[][..], |v| &v[..]);
                    let r = store.read_queue("model", queue, offset, max, usize::MAX).unwrap();
                    prop_assert_eq!(r.max_offset, want.len() as u64);
                    let expect: Vec<_> = want.iter().skip(offset as usize).take(max).collect();
                    prop_assert_eq!(r.messages.len(), expect.len());
                    for (m, (id, b)) in r.messages.iter().zip(expect) {
                        prop_assert_eq!(&m.message.message_id, id);
                        prop_assert_eq!(&m.message.body, b);
                    }
                }
                Op::Commit { queue, offset } => {
                    store.commit_offset("g", "model", queue, offset);
                    offsets.insert(queue, offset);
                }
                Op::Reopen => {
                    store.close().unwrap();
                    store = Store::open(config(dir.path(), sync)).unwrap();
                }
            }
        }
        // Final full comparison, after one more reopen.
        store.close().unwrap();
        let store = Store::open(config(dir.path(), sync)).unwrap();
        for q in 0..3 {
            let want = model.get(&q).map_or(&[][..], |v| &v[..]);
            prop_assert_eq!(store.queue_range("model", q), (0, want.len() as u64));
            let r = store.read_queue("model", q, 0, 10_000, usize::MAX).unwrap();
            let got: Vec<_> = r.messages.iter().map(|m| (m.message.message_id.clone(), m.message.body.clone())).collect();
            prop_assert_eq!(&got[..], want);
            for (id, b) in want {
                let found = store.find_by_message_id(id, 2).unwrap();
                prop_assert_eq!(found.len(), 1);
                prop_assert_eq!(&found[0].message.body, b);
            }
            prop_assert_eq!(store.committed_offset("g", "model", q), offsets.get(&q).copied());
        }
        store.close().unwrap();
    }
}
