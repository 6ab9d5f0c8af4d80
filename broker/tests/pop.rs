//! POP consumption over a real store: receive, ack, redelivery, groups,
//! dead letters, handles and filters.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use common::{Broker, INV, T0, group, no_tag, offsets};
use tern_broker::pop::{PROP_DELIVERY_ATTEMPTS, PROP_ORIGIN_QUEUE_OFFSET, PROP_ORIGIN_TOPIC};
use tern_broker::{
    BrokerError, Filter, GroupConfig, MessageType, Permission, Receipt, ReceiptCodec, ReceiptError,
    TagFilter, TopicConfig,
};
use tern_model::{GroupName, TopicName};

fn stale(r: Result<(), BrokerError>) -> bool {
    matches!(
        r,
        Err(BrokerError::InvalidReceiptHandle(ReceiptError::Stale))
    )
}

#[test]
fn receive_then_ack_commits_and_nothing_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 10, no_tag);

    let ds = b.recv(&g, &t, 32, T0);
    assert_eq!(offsets(&ds), (0..10).collect::<Vec<_>>());
    assert!(
        ds.iter()
            .all(|d| d.attempt == 1 && d.invisible_until_ms == T0 + INV)
    );
    assert_eq!(ds[3].message.message.message_id, "orders-0-3");
    assert!(b.recv(&g, &t, 32, T0 + 1).is_empty(), "all in flight");
    for d in &ds {
        b.pop.ack(&d.receipt).unwrap();
    }
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(10));
    assert!(b.recv(&g, &t, 32, T0 + 10 * INV).is_empty());
    b.close();
}

#[test]
fn unacked_message_returns_after_invisibility_with_attempt_2() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 3, no_tag);

    let first = b.recv(&g, &t, 32, T0);
    b.pop.ack(&first[0].receipt).unwrap();
    assert!(b.recv(&g, &t, 32, T0 + INV - 1).is_empty());
    let again = b.recv(&g, &t, 32, T0 + INV);
    assert_eq!(offsets(&again), [1, 2]);
    assert!(again.iter().all(|d| d.attempt == 2));
    assert!(
        stale(b.pop.ack(&first[1].receipt)),
        "redelivery makes the first handle stale"
    );
    for d in &again {
        b.pop.ack(&d.receipt).unwrap();
    }
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(3));
}

#[test]
fn committed_offset_waits_for_the_lowest_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 4, no_tag);
    let ds = b.recv(&g, &t, 32, T0);
    for i in [1, 3, 2] {
        b.pop.ack(&ds[i].receipt).unwrap();
    }
    assert_eq!(b.store.committed_offset("g", "orders", 0), None);
    b.pop.ack(&ds[0].receipt).unwrap();
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(4));
}

#[test]
fn members_of_one_group_never_share_an_in_flight_message() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 4);
    let g = group("g");
    for q in 0..4 {
        b.send("orders", q, 50, no_tag);
    }
    let seen = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let ds = b.recv(&g, &t, 7, T0);
                    if ds.is_empty() {
                        break;
                    }
                    seen.lock().unwrap().extend(where_(&ds));
                }
            });
        }
    });
    let seen = seen.into_inner().unwrap();
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 200, "each message delivered once");
    assert_eq!(unique.len(), 200);
}

#[test]
fn any_queue_receive_visits_every_queue() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 3);
    let g = group("g");
    for q in 0..3 {
        b.send("orders", q, 5, no_tag);
    }
    let mut queues = BTreeSet::new();
    for _ in 0..3 {
        let ds = b.recv(&g, &t, 2, T0);
        assert_eq!(ds.len(), 2);
        queues.extend(where_(&ds).into_iter().map(|(q, _)| q));
    }
    assert_eq!(
        queues.len(),
        3,
        "successive receives start at different queues"
    );
    let one = b
        .pop
        .receive(&g, &t, Some(2), 32, INV, &Filter::ALL, T0)
        .unwrap();
    assert!(where_(&one).iter().all(|&(q, _)| q == 2));
}

#[test]
fn two_groups_each_get_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 2);
    b.send("orders", 0, 5, no_tag);
    b.send("orders", 1, 5, no_tag);
    for name in ["g1", "g2"] {
        let g = group(name);
        let ds = b.recv(&g, &t, 32, T0);
        let got: BTreeSet<_> = where_(&ds).into_iter().collect();
        assert_eq!(got.len(), 10, "{name}");
        for d in &ds {
            b.pop.ack(&d.receipt).unwrap();
        }
        assert_eq!(b.store.committed_offset(name, "orders", 1), Some(5));
    }
}

#[test]
fn a_group_with_a_committed_offset_starts_there() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    b.send("orders", 0, 6, no_tag);
    b.store.commit_offset("g", "orders", 0, 4);
    assert_eq!(offsets(&b.recv(&group("g"), &t, 32, T0)), [4, 5]);
    assert_eq!(
        offsets(&b.recv(&group("fresh"), &t, 32, T0)),
        (0..6).collect::<Vec<_>>()
    );
}

#[test]
fn message_goes_to_the_dead_letter_queue_after_max_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = GroupConfig::new(GroupName::new("g").unwrap(), false, 2).unwrap();
    b.send("orders", 0, 1, |_| Some("red".into()));

    let mut now = T0;
    for attempt in 1..=3 {
        let ds = b.recv(&g, &t, 32, now);
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].attempt, attempt);
        now += INV;
    }
    assert!(
        b.recv(&g, &t, 32, now).is_empty(),
        "a fourth delivery is a dead letter"
    );
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(1));
    assert!(b.recv(&g, &t, 32, now + 10 * INV).is_empty());

    let dlq = b.registry.topic("%DLQ%g").unwrap();
    assert_eq!(dlq.queues(), 1);
    b.settle();
    let r = b.store.read_queue("%DLQ%g", 0, 0, 10, usize::MAX).unwrap();
    assert_eq!(r.messages.len(), 1);
    let m = &r.messages[0].message;
    assert_eq!(m.message_id, "orders-0-0");
    assert_eq!(m.body, b"body of orders-0-0");
    assert_eq!(m.tag.as_deref(), Some("red"));
    assert_eq!(m.properties[PROP_ORIGIN_TOPIC], "orders");
    assert_eq!(m.properties[PROP_ORIGIN_QUEUE_OFFSET], "0");
    assert_eq!(m.properties[PROP_DELIVERY_ATTEMPTS], "3");
    assert_eq!(m.properties["p"], "orders-0-0");

    // The dead-letter topic is an ordinary readable topic.
    let dg = group("dlq-reader");
    let ds = b.recv(&dg, &dlq, 32, now);
    assert_eq!(ds.len(), 1);
}

/// A message past its delivery limit reaches the dead-letter queue once
/// its last invisibility runs out, even if the group never receives again
/// (the background sweep, not the next receive, moves it).
#[test]
fn dead_letters_are_swept_without_another_receive() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tern_broker::PopConfig::new(dir.path().join("pop"));
    cfg.sweep_interval = std::time::Duration::from_millis(50);
    let b = Broker::open_with(dir.path(), cfg);
    let t = b.topic("orders", 1);
    let g = GroupConfig::new(GroupName::new("g").unwrap(), false, 0).unwrap();
    b.registry.create_group(g.clone()).unwrap();
    b.send("orders", 0, 1, |_| None);
    b.settle();

    let wall = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    // One delivery allowed (no retries), invisible for 300 ms.
    let ds = b
        .pop
        .receive(&g, &t, None, 32, 300, &Filter::ALL, wall())
        .unwrap();
    assert_eq!(ds.len(), 1);
    assert!(
        b.registry.topic("%DLQ%g").is_err(),
        "nothing is dead yet, so no dead-letter topic"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let moved = loop {
        let stored = b
            .registry
            .topic("%DLQ%g")
            .ok()
            .and_then(|_| b.store.read_queue("%DLQ%g", 0, 0, 10, usize::MAX).ok())
            .map_or(0, |r| r.messages.len());
        if stored > 0 || std::time::Instant::now() > deadline {
            break stored;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(moved, 1, "the sweep moved the dead message");
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(1));
    // Settled for the group: the old handle is stale.
    assert!(stale(b.pop.ack(&ds[0].receipt)));
}

#[test]
fn client_forwards_to_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 2, no_tag);
    let ds = b.recv(&g, &t, 32, T0);
    b.pop.forward_to_dlq(&ds[1].receipt, T0 + 5).unwrap();
    assert!(stale(b.pop.ack(&ds[1].receipt)));
    assert!(stale(b.pop.forward_to_dlq(&ds[1].receipt, T0 + 6)));
    b.pop.ack(&ds[0].receipt).unwrap();
    assert_eq!(b.store.committed_offset("g", "orders", 0), Some(2));
    b.settle();
    let r = b.store.read_queue("%DLQ%g", 0, 0, 10, usize::MAX).unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].message.message_id, "orders-0-1");
    assert!(b.recv(&g, &t, 32, T0 + 10 * INV).is_empty());
}

#[test]
fn stale_forged_and_malformed_handles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 1, no_tag);
    let ds = b.recv(&g, &t, 32, T0);
    let h = &ds[0].receipt;

    let genuine = b.pop.receipts().decode(h).unwrap();
    let other = ReceiptCodec::new([9; 32]);
    let forged = other.encode(&genuine);
    assert!(matches!(
        b.pop.ack(&forged),
        Err(BrokerError::InvalidReceiptHandle(ReceiptError::Forged))
    ));
    assert!(matches!(
        b.pop.ack("not a handle!"),
        Err(BrokerError::InvalidReceiptHandle(ReceiptError::Malformed(
            _
        )))
    ));
    // Genuine signature, but no such delivery.
    let wrong_seq = b.pop.receipts().encode(&Receipt {
        seq: genuine.seq + 1,
        ..genuine.clone()
    });
    assert!(stale(b.pop.ack(&wrong_seq)));
    let unknown_queue = b.pop.receipts().encode(&Receipt {
        topic: TopicName::new("elsewhere").unwrap(),
        ..genuine
    });
    assert!(stale(b.pop.ack(&unknown_queue)));

    b.pop.ack(h).unwrap();
    assert!(stale(b.pop.ack(h)), "a second ack is stale");
    assert!(matches!(
        b.pop.change_invisible(h, INV, T0),
        Err(BrokerError::InvalidReceiptHandle(ReceiptError::Stale))
    ));
}

#[test]
fn change_invisible_issues_a_new_handle_and_moves_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = group("g");
    b.send("orders", 0, 1, no_tag);
    let ds = b.recv(&g, &t, 32, T0);
    let h2 = b
        .pop
        .change_invisible(&ds[0].receipt, 3 * INV, T0 + 10)
        .unwrap();
    assert!(stale(b.pop.ack(&ds[0].receipt)));
    let r = b.pop.receipts().decode(&h2).unwrap();
    assert_eq!((r.attempt, r.invisible_until_ms), (1, T0 + 10 + 3 * INV));

    assert!(
        b.recv(&g, &t, 32, T0 + INV).is_empty(),
        "the old deadline no longer counts"
    );
    let again = b.recv(&g, &t, 32, T0 + 10 + 3 * INV);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert!(stale(b.pop.ack(&h2)));
    assert!(matches!(
        b.pop.change_invisible(&again[0].receipt, 0, T0),
        Err(BrokerError::Invalid(_))
    ));
}

#[test]
fn tag_filters_select_exactly_the_matching_messages() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let tags = ["a", "b", "c", ""];
    b.send("orders", 0, 40, |i| {
        Some(tags[i % 4])
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    });

    let g = group("ac");
    let f = Filter::from(TagFilter::parse(" a || c ").unwrap());
    let ds = b.pop.receive(&g, &t, None, 100, INV, &f, T0).unwrap();
    let want: Vec<u64> = (0..40).filter(|i| i % 4 == 0 || i % 4 == 2).collect();
    assert_eq!(offsets(&ds), want);
    for d in &ds {
        b.pop.ack(&d.receipt).unwrap();
    }
    assert_eq!(b.store.committed_offset("ac", "orders", 0), Some(40));

    let all = b.recv(&group("everyone"), &t, 100, T0);
    assert_eq!(all.len(), 40);

    // A small batch with a filter still finds matches far apart.
    let only_b = Filter::from(TagFilter::parse("b").unwrap());
    let ds = b
        .pop
        .receive(&group("b"), &t, None, 3, INV, &only_b, T0)
        .unwrap();
    assert_eq!(offsets(&ds), [1, 5, 9]);
}

#[test]
fn fifo_group_waits_for_the_previous_message() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = GroupConfig::new(GroupName::new("f").unwrap(), true, 16).unwrap();
    b.send("orders", 0, 3, no_tag);
    let ds = b.recv(&g, &t, 1, T0);
    assert_eq!(offsets(&ds), [0]);
    assert!(b.recv(&g, &t, 1, T0 + 1).is_empty(), "held until 0 is done");
    let again = b.recv(&g, &t, 5, T0 + INV);
    assert_eq!((offsets(&again), again[0].attempt), (vec![0], 2));
    b.pop.ack(&again[0].receipt).unwrap();
    // Messages without a message group are one group: one at a time.
    let one = b.recv(&g, &t, 5, T0 + INV);
    assert_eq!(offsets(&one), [1]);
    b.pop.ack(&one[0].receipt).unwrap();
    assert_eq!(offsets(&b.recv(&g, &t, 5, T0 + INV)), [2]);
}

#[test]
fn bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 2);
    let g = group("g");
    let all = Filter::ALL;
    assert!(matches!(
        b.pop.receive(&g, &t, Some(2), 1, INV, &all, T0),
        Err(BrokerError::Invalid(_))
    ));
    assert!(matches!(
        b.pop.receive(&g, &t, None, 0, INV, &all, T0),
        Err(BrokerError::Invalid(_))
    ));
    assert!(matches!(
        b.pop.receive(&g, &t, None, 1, 0, &all, T0),
        Err(BrokerError::Invalid(_))
    ));
    let write_only = TopicConfig::new(
        TopicName::new("w").unwrap(),
        1,
        MessageType::Normal,
        Permission::Write,
    )
    .unwrap();
    assert!(matches!(
        b.pop.receive(&g, &write_only, None, 1, INV, &all, T0),
        Err(BrokerError::Forbidden(_))
    ));
    assert!(
        b.recv(&g, &t, 5, T0).is_empty(),
        "an empty topic yields nothing"
    );
}

/// `(queue, offset)` of each delivery.
fn where_(ds: &[tern_broker::Delivery]) -> Vec<(u32, u64)> {
    ds.iter()
        .map(|d| (d.message.message.queue_id, d.message.queue_offset))
        .collect()
}
