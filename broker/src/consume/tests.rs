//! The read path without a gRPC server: receive with long polling and
//! its wake-ups, settling, pull and offsets, lag.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::meta::{MessageType, Permission, TopicConfig};
use crate::pop::PopConfig;
use crate::testutil::{message, open_store};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    consume: Arc<Consume>,
    wakers: Arc<Wakers>,
    closing: Closing,
}

/// A store with the topic `t` (2 queues), and the read path over it.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let registry = Arc::new(Registry::open(&dir.path().join("meta")).unwrap());
    let t = TopicConfig::new(
        TopicName::new("t").unwrap(),
        2,
        MessageType::Normal,
        Permission::ReadWrite,
    )
    .unwrap();
    registry.create_topic(t).unwrap();
    let pop = Arc::new(
        Pop::open(
            PopConfig::new(dir.path().join("pop")),
            Arc::clone(&store),
            Arc::clone(&registry),
        )
        .unwrap(),
    );
    let wakers = Arc::new(Wakers::default());
    let closing = Closing::default();
    let consume = Arc::new(Consume::new(
        Arc::clone(&store),
        registry,
        pop,
        Arc::new(Metrics::new()),
        Arc::clone(&wakers),
        Duration::from_secs(60),
        closing.clone(),
    ));
    Fixture {
        _dir: dir,
        store,
        consume,
        wakers,
        closing,
    }
}

fn receive(poll: Duration) -> Receive {
    Receive {
        client: "c".into(),
        group: GroupName::new("g").unwrap(),
        topic: TopicName::new("t").unwrap(),
        filter: Filter::ALL,
        batch: 10,
        invisible_ms: None,
        auto_renew: false,
        poll,
    }
}

fn append(store: &Store, id: &str, queue: u32) {
    let mut m = message("t", id);
    m.queue_id = queue;
    store.append(&[m]).unwrap();
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(10)));
}

#[tokio::test]
async fn a_receive_gets_messages_of_every_queue_and_acks_them() {
    let f = fixture();
    append(&f.store, "a", 0);
    append(&f.store, "b", 1);
    let got = f.consume.receive(receive(Duration::ZERO)).await.unwrap();
    let mut ids: Vec<_> = got
        .deliveries
        .iter()
        .map(|d| d.message.message.message_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    let handles = got.deliveries.iter().map(|d| d.receipt.clone()).collect();
    let (g, t) = (GroupName::new("g").unwrap(), TopicName::new("t").unwrap());
    let acked = f.consume.ack(&g, &t, handles).await;
    assert!(acked.iter().all(Result::is_ok), "{acked:?}");
    // Acked twice: the handles are stale now.
    let again = f
        .consume
        .ack(&g, &t, vec![got.deliveries[0].receipt.clone()])
        .await;
    assert!(matches!(
        again[0],
        Err(BrokerError::InvalidReceiptHandle(_))
    ));
    // A handle checked against another topic than it was issued for.
    let other = TopicName::new("u").unwrap();
    let wrong = f
        .consume
        .change_invisible(&g, &other, got.deliveries[1].receipt.clone(), 1000)
        .await;
    assert!(wrong.is_err());
}

/// Three receives of one group wait with a batch of one; two messages
/// arrive with one wake-up. One receive is woken per wake-up, takes a
/// full batch and passes the turn on, so the second message goes out at
/// once too, and the third receive goes on waiting.
#[tokio::test]
async fn a_wake_up_wakes_one_receive_of_a_group_which_passes_a_full_batch_on() {
    let f = fixture();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let c = Arc::clone(&f.consume);
        let mut r = receive(Duration::from_secs(20));
        r.batch = 1;
        waiting.push(tokio::spawn(async move { c.receive(r).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&f.store, "one", 0);
    append(&f.store, "two", 1);
    f.wakers.wake("t");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (done, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|h| h.is_finished());
        waiting = rest;
        for h in done {
            let r = h.await.unwrap().unwrap();
            got.extend(
                r.deliveries
                    .into_iter()
                    .map(|d| d.message.message.message_id),
            );
        }
    }
    got.sort();
    assert_eq!(
        got,
        ["one", "two"],
        "both messages went out long before the polling time"
    );
    // Nothing else arrived: the third receive still waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(waiting.len(), 1);
    assert!(!waiting[0].is_finished());
    f.closing.close();
    let last = tokio::time::timeout(Duration::from_secs(5), waiting.remove(0))
        .await
        .expect("a close ends the wait")
        .unwrap()
        .unwrap();
    assert!(last.deliveries.is_empty());
}

#[tokio::test]
async fn a_waiting_receive_wakes_when_its_topic_does_and_ends_on_close() {
    let f = fixture();
    let c = Arc::clone(&f.consume);
    let waiting = tokio::spawn(async move { c.receive(receive(Duration::from_secs(20))).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&f.store, "late", 0);
    // The store has no listener in this fixture: the wake-up is explicit.
    f.wakers.wake("t");
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken long before the polling time")
        .unwrap()
        .unwrap();
    assert_eq!(got.deliveries.len(), 1);
    let c = Arc::clone(&f.consume);
    let waiting = tokio::spawn(async move { c.receive(receive(Duration::from_secs(20))).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.closing.close();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("a close ends the wait")
        .unwrap()
        .unwrap();
    assert!(got.deliveries.is_empty());
}

#[tokio::test]
async fn invisible_durations_must_be_positive() {
    let f = fixture();
    let r = Receive {
        invisible_ms: Some(0),
        ..receive(Duration::ZERO)
    };
    let e = f.consume.receive(r).await.unwrap_err();
    assert!(matches!(e, BrokerError::InvisibleTime(_)), "{e:?}");
}

#[tokio::test]
async fn pull_reads_from_an_offset_and_keeps_offsets() {
    let f = fixture();
    for id in ["a", "b", "c"] {
        append(&f.store, id, 1);
    }
    let pull = |offset| Pull {
        group: GroupName::new("puller").unwrap(),
        topic: TopicName::new("t").unwrap(),
        queue: 1,
        offset,
        batch: 2,
        filter: Filter::ALL,
        poll: Duration::ZERO,
    };
    match f.consume.pull(pull(1)).await.unwrap() {
        Pulled::Messages { messages, next } => {
            assert_eq!(messages.len(), 2);
            assert_eq!(next, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.consume.pull(pull(3)).await.unwrap(),
        Pulled::Nothing { next: 3 }
    ));
    assert!(matches!(
        f.consume.pull(pull(9)).await.unwrap(),
        Pulled::OutOfRange { queue: 1, next: 3 }
    ));
    assert!(matches!(
        f.consume.pull(pull(-1)).await,
        Err(BrokerError::IllegalOffset(_))
    ));
    let bad_queue = Pull {
        queue: 2,
        ..pull(0)
    };
    assert!(matches!(
        f.consume.pull(bad_queue).await,
        Err(BrokerError::Invalid(_))
    ));
    let (g, t) = (
        GroupName::new("puller").unwrap(),
        TopicName::new("t").unwrap(),
    );
    f.consume.set_offset(g.clone(), &t, 1, 2).await.unwrap();
    assert_eq!(f.consume.offset(&g, &t, 1).unwrap(), 2);
    assert!(matches!(
        f.consume.set_offset(g.clone(), &t, 1, 4).await,
        Err(BrokerError::IllegalOffset(_))
    ));
    assert!(matches!(
        f.consume.offset(&g, &t, 0),
        Err(BrokerError::OffsetNotFound(_))
    ));
    assert_eq!(
        f.consume
            .find_offset(&t, 1, OffsetPolicy::End)
            .await
            .unwrap(),
        3
    );
    let lag = f.consume.lag("puller");
    assert_eq!(lag.len(), 1);
    let q = &lag[0].queues[0];
    assert_eq!((q.queue_id, q.consumer_offset, q.lag), (1, 2, 1));
}

#[tokio::test]
async fn a_queue_consumed_by_receives_refuses_a_new_offset() {
    let f = fixture();
    append(&f.store, "a", 0);
    let got = f.consume.receive(receive(Duration::ZERO)).await.unwrap();
    assert_eq!(got.deliveries.len(), 1);
    let (g, t) = (GroupName::new("g").unwrap(), TopicName::new("t").unwrap());
    assert!(matches!(
        f.consume.set_offset(g, &t, 0, 0).await,
        Err(BrokerError::Precondition(_))
    ));
}

/// What the read path keeps in memory for topics and groups: wake-up
/// channels (topics, group channels), subscriptions, metric series.
fn kept(c: &Consume) -> ((usize, usize), usize, usize) {
    (
        c.wakers.len(),
        c.pop.subscriptions().len(),
        c.metrics.labelled_series(),
    )
}

fn topic_config(name: &str) -> TopicConfig {
    TopicConfig::new(
        TopicName::new(name).unwrap(),
        1,
        MessageType::Normal,
        Permission::ReadWrite,
    )
    .unwrap()
}

/// 1,000 topics made, sent to, received from, pulled from and deleted,
/// then 1,000 groups made by their first receive and deleted: the wake-up
/// channels, the consumption state and the metric series are back to
/// what they were, and the one topic and group that stayed still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topics_and_groups_leave_nothing_in_memory() {
    let f = fixture();
    let c = &f.consume;
    append(&f.store, "keep", 0);
    let got = c.receive(receive(Duration::ZERO)).await.unwrap();
    assert_eq!(got.deliveries.len(), 1);
    c.metrics.stored("t", 4);
    let before = kept(c);
    assert_eq!(before, ((1, 1), 1, 4));

    for i in 0..1000 {
        let name = format!("d{i}");
        c.registry.create_topic(topic_config(&name)).unwrap();
        f.store.append(&[message(&name, &name)]).unwrap();
        assert!(
            f.store
                .wait_dispatched(f.store.max_offset(), Duration::from_secs(10))
        );
        c.metrics.stored(&name, 4);
        let mut r = receive(Duration::ZERO);
        r.topic = TopicName::new(name.as_str()).unwrap();
        assert_eq!(c.receive(r).await.unwrap().deliveries.len(), 1);
        let pulled = c
            .pull(Pull {
                group: GroupName::new("puller").unwrap(),
                topic: TopicName::new(name.as_str()).unwrap(),
                queue: 0,
                offset: 1,
                batch: 1,
                filter: Filter::ALL,
                poll: Duration::ZERO,
            })
            .await
            .unwrap();
        assert!(matches!(pulled, Pulled::Nothing { next: 1 }), "{pulled:?}");
    }
    assert_eq!(c.pop.subscriptions().len(), 1001);
    for i in 0..1000 {
        c.delete_topic(format!("d{i}")).await.unwrap();
    }
    assert_eq!(c.registry.delete_group("puller").map(|_| ()).ok(), Some(()));
    assert_eq!(kept(c), before);

    for i in 0..1000 {
        let mut r = receive(Duration::ZERO);
        r.group = GroupName::new(format!("h{i}")).unwrap();
        assert_eq!(c.receive(r).await.unwrap().deliveries.len(), 1);
    }
    assert_eq!(c.pop.subscriptions().len(), 1001);
    for i in 0..1000 {
        c.delete_group(format!("h{i}")).await.unwrap();
    }
    assert_eq!(kept(c), before);
    assert_eq!(c.registry.counts(), (1, 1));

    // The topic and group that stayed are served as before.
    append(&f.store, "more", 0);
    f.wakers.wake("t");
    let got = c.receive(receive(Duration::from_secs(5))).await.unwrap();
    let ids: Vec<_> = got
        .deliveries
        .iter()
        .map(|d| d.message.message.message_id.as_str())
        .collect();
    assert_eq!(ids, ["more"]);
}

/// A receive waiting on a topic that is deleted ends at once with
/// TOPIC_NOT_FOUND, and makes no state for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_ends_the_receives_waiting_on_it() {
    let f = fixture();
    let c = Arc::clone(&f.consume);
    let waiting = tokio::spawn(async move { c.receive(receive(Duration::from_secs(20))).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.wakers.len(), (1, 1));
    let started = std::time::Instant::now();
    f.consume.delete_topic("t".into()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ended, Err(BrokerError::TopicNotFound(_))),
        "{ended:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(kept(&f.consume), ((0, 0), 0, 0));
}

/// A forgotten group's state stays forgotten after a restart (its
/// `Forget` records, before any compaction); state of a topic deleted
/// without the read path knowing (the broker stopped before the journal
/// was flushed) is dropped when the journal is replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_journal_keeps_deleted_state_away() {
    let f = fixture();
    append(&f.store, "a", 0);
    for g in ["g", "h"] {
        let mut r = receive(Duration::ZERO);
        r.group = GroupName::new(g).unwrap();
        assert_eq!(f.consume.receive(r).await.unwrap().deliveries.len(), 1);
    }
    let dir = f._dir.path().join("pop");
    let registry = Arc::clone(&f.consume.registry);
    let store = Arc::clone(&f.store);
    let reopen = |pop: Arc<Pop>| {
        let pop = Arc::try_unwrap(pop).unwrap();
        pop.close().unwrap();
        Pop::open(
            PopConfig::new(&dir),
            Arc::clone(&store),
            Arc::clone(&registry),
        )
        .unwrap()
    };
    let pop = Arc::clone(&f.consume.pop);
    drop(f.consume);
    assert_eq!(pop.forget_group("h"), 1);
    let pop = reopen(pop);
    assert_eq!(pop.subscriptions(), [("g".to_owned(), "t".to_owned())]);
    registry.delete_topic("t").unwrap();
    let pop = reopen(Arc::new(pop));
    assert!(pop.subscriptions().is_empty());
}
