//! The send path without a gRPC server: routing, back-pressure for every
//! kind of message, de-duplication, parks, and ending transactions.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tern_model::MessageKind;

use super::*;
use crate::meta::{MessageType, Permission};
use crate::testutil::{message, open_store, queue0_ids};
use crate::timer::DelayConfig;
use crate::txn::{Resolution, TransactionConfig};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    registry: Arc<Registry>,
    timer: Arc<Timer>,
    txn: Arc<Transactions>,
}

impl Fixture {
    /// A store with one topic of each message type (`normal`, `fifo`,
    /// `later`, `tx`; 4 queues each) and `ro`, a read-only one.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let store = open_store(&root);
        let registry = Arc::new(Registry::open(&root.join("meta")).unwrap());
        for (name, kind, perm) in [
            ("normal", MessageType::Normal, Permission::ReadWrite),
            ("fifo", MessageType::Fifo, Permission::ReadWrite),
            ("later", MessageType::Delay, Permission::ReadWrite),
            ("tx", MessageType::Transaction, Permission::ReadWrite),
            ("ro", MessageType::Normal, Permission::Read),
        ] {
            let t = TopicConfig::new(TopicName::new(name).unwrap(), 4, kind, perm).unwrap();
            registry.create_topic(t).unwrap();
        }
        let delay = DelayConfig {
            precision: Duration::from_millis(100),
            ..DelayConfig::default()
        };
        let timer = Timer::open(
            Arc::clone(&store),
            Arc::clone(&registry),
            &root.join("park"),
            delay,
        )
        .unwrap();
        let txn = Arc::new(
            Transactions::open(
                Arc::clone(&store),
                &root.join("half"),
                TransactionConfig::default(),
            )
            .unwrap(),
        );
        Self {
            _dir: dir,
            store,
            registry,
            timer,
            txn,
        }
    }

    fn produce(&self, admission: AdmissionLimits, transactions: bool) -> Produce {
        Produce::new(
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&self.timer),
            transactions.then(|| Arc::clone(&self.txn)),
            Arc::new(Metrics::new()),
            ProduceConfig {
                admission,
                dedup: DedupConfig::default(),
            },
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.timer.close();
    }
}

fn normal(id: &str) -> Message {
    message("normal", id)
}

fn fifo(id: &str, group: &str) -> Message {
    let mut m = message("fifo", id);
    m.set_kind(MessageKind::Fifo);
    m.properties.insert(
        tern_model::system::MESSAGE_GROUP.to_owned(),
        group.to_owned(),
    );
    m
}

fn delayed(id: &str, in_ms: i64) -> Message {
    let mut m = message("later", id);
    m.set_kind(MessageKind::Delay);
    m.properties.insert(
        tern_model::system::DELIVER_AT.to_owned(),
        (now_ms() + in_ms).to_string(),
    );
    m
}

fn half(id: &str) -> Message {
    let mut m = message("tx", id);
    m.set_kind(MessageKind::Transaction);
    m
}

/// Every kind of message, one each.
fn one_of_each() -> Vec<Message> {
    vec![normal("n"), fifo("f", "g"), delayed("d", 60_000), half("h")]
}

fn errors(results: &[SendResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(s) => format!("ok {s:?}"),
            Err(e) => format!("{:?}", **e).split('(').next().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn every_kind_is_written_where_it_belongs() {
    let f = Fixture::new();
    let p = f.produce(AdmissionLimits::default(), true);
    let r = p.send("client", one_of_each()).await;
    assert!(
        matches!(
            &r[0],
            Ok(Sent::Stored {
                queue_offset: 0,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(matches!(&r[1], Ok(Sent::Stored { .. })), "{r:?}");
    let Ok(Sent::Delayed { recall_handle, .. }) = &r[2] else {
        panic!("{r:?}")
    };
    assert!(!recall_handle.is_empty());
    assert!(matches!(&r[3], Ok(Sent::Half { .. })), "{r:?}");
    assert_eq!(f.timer.pending(), 1);
    assert_eq!(f.txn.pending_count(), 1);
    // The delayed message can be recalled with its handle, once.
    let id = p
        .recall(TopicName::new("later").unwrap(), recall_handle.clone())
        .await
        .unwrap();
    assert_eq!(id, "d");
    assert!(
        p.recall(TopicName::new("later").unwrap(), recall_handle.clone())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn back_pressure_refuses_every_kind_and_writes_nothing() {
    let f = Fixture::new();
    let disk_behind = AdmissionLimits {
        max_unflushed_bytes: 0,
        ..AdmissionLimits::default()
    };
    let too_many_waiting = AdmissionLimits {
        max_pending_sends: 0,
        ..AdmissionLimits::default()
    };
    for limits in [disk_behind, too_many_waiting] {
        let p = f.produce(limits, true);
        let r = p.send("client", one_of_each()).await;
        assert_eq!(r.len(), 4);
        for (i, result) in r.iter().enumerate() {
            assert!(
                matches!(
                    result.as_ref().map_err(|e| &**e),
                    Err(BrokerError::TooManyRequests(_))
                ),
                "message {i} with {limits:?}: {result:?}"
            );
        }
        assert_eq!(p.admission.pending(), 0, "refusals hold nothing");
    }
    assert_eq!(f.store.max_offset(), 0, "nothing was written");
    assert_eq!(f.timer.pending(), 0);
    assert_eq!(f.txn.pending_count(), 0);
}

#[tokio::test]
async fn refusals_name_their_reason_and_do_not_stop_the_rest() {
    let f = Fixture::new();
    let p = f.produce(AdmissionLimits::default(), false);
    let mut wrong_kind = normal("w");
    wrong_kind.set_kind(MessageKind::Fifo);
    let msgs = vec![
        message("nowhere", "u"),
        message("ro", "r"),
        wrong_kind,
        half("h"),
        normal("ok"),
    ];
    let r = p.send("client", msgs).await;
    assert_eq!(
        errors(&r)[..4],
        [
            "TopicNotFound",
            "Forbidden",
            "WrongMessageType",
            "Unsupported"
        ]
    );
    assert!(matches!(r[4], Ok(Sent::Stored { .. })), "{r:?}");
    assert_eq!(queue_ids(&f.store, "normal"), ["ok"]);
}

/// The ids stored in every queue of `topic`.
fn queue_ids(store: &Store, topic: &str) -> Vec<String> {
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(10)));
    (0..4)
        .flat_map(|q| {
            store
                .read_queue(topic, q, 0, 1000, usize::MAX)
                .unwrap()
                .messages
        })
        .map(|m| m.message.message_id)
        .collect()
}

#[tokio::test]
async fn a_request_takes_one_queue_and_a_message_group_always_the_same() {
    let f = Fixture::new();
    let p = f.produce(AdmissionLimits::default(), false);
    let queue = |r: &SendResult| match r {
        Ok(Sent::Stored { queue_id, .. }) => *queue_id,
        other => panic!("{other:?}"),
    };
    let mut seen = Vec::new();
    for turn in 0..4 {
        let r = p
            .send(
                "c",
                vec![normal(&format!("a{turn}")), normal(&format!("b{turn}"))],
            )
            .await;
        assert_eq!(queue(&r[0]), queue(&r[1]), "one request, one queue");
        seen.push(queue(&r[0]));
    }
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2, 3], "successive requests take turns");
    let mut group_queues: Vec<u32> = Vec::new();
    for i in 0..6 {
        let r = p.send("c", vec![fifo(&format!("f{i}"), "orders-7")]).await;
        group_queues.push(queue(&r[0]));
    }
    group_queues.dedup();
    assert_eq!(group_queues.len(), 1, "{group_queues:?}");
}

#[tokio::test]
async fn a_repeated_id_gets_the_first_answer_and_is_stored_once() {
    let f = Fixture::new();
    let p = f.produce(AdmissionLimits::default(), true);
    let first = p.send("c", one_of_each()).await;
    let again = p.send("c", one_of_each()).await;
    assert_eq!(errors(&first), errors(&again));
    assert_eq!(queue_ids(&f.store, "normal"), ["n"]);
    assert_eq!(f.timer.pending(), 1);
    assert_eq!(f.txn.pending_count(), 1);
}

#[tokio::test]
async fn a_committed_transaction_is_delivered_once() {
    let f = Fixture::new();
    let p = f.produce(AdmissionLimits::default(), true);
    let r = p.send("c", vec![half("h")]).await;
    let Ok(Sent::Half { transaction_id, .. }) = &r[0] else {
        panic!("{r:?}")
    };
    let tx = TopicName::new("tx").unwrap();
    // Another message's id, or another topic: refused.
    let e = p
        .end_transaction(&tx, "other", transaction_id, Resolution::Commit)
        .await;
    assert!(
        matches!(e, Err(BrokerError::InvalidTransactionId(_))),
        "{e:?}"
    );
    let e = p
        .end_transaction(&tx, "h", "not-an-id", Resolution::Commit)
        .await;
    assert!(
        matches!(e, Err(BrokerError::InvalidTransactionId(_))),
        "{e:?}"
    );
    p.end_transaction(&tx, "h", transaction_id, Resolution::Commit)
        .await
        .unwrap();
    let e = p
        .end_transaction(&tx, "h", transaction_id, Resolution::Commit)
        .await;
    assert!(matches!(e, Err(BrokerError::TransactionEnded(_))), "{e:?}");
    assert_eq!(queue_ids(&f.store, "tx"), ["h"]);
    assert!(queue0_ids(&f.store, "normal").is_empty());
}
