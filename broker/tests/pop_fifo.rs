//! FIFO consumer groups over a real store: per-message-group order,
//! parallel groups, retries, dead letters, restarts and the bound on held
//! messages.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{Broker, INV, T0, msg, no_tag, offsets, pop_config};
use tern_broker::pop::MAX_HELD;
use tern_broker::{GroupConfig, QueueStats};
use tern_model::{GroupName, Message, now_ms, system};

/// A FIFO group allowing `max_retries` redeliveries.
fn fifo(name: &str, max_retries: u32) -> GroupConfig {
    GroupConfig::new(GroupName::new(name).unwrap(), true, max_retries).unwrap()
}

/// Appends one message per entry of `groups` to queue 0 of `topic`, in
/// order; `None` sends it without a message group.
fn send(b: &Broker, topic: &str, groups: &[Option<&str>]) {
    let start = b.store.queue_range(topic, 0).1;
    let msgs: Vec<Message> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut m = msg(topic, 0, &format!("{topic}-{}", start + i as u64), None);
            if let Some(g) = g {
                m.properties
                    .insert(system::MESSAGE_GROUP.to_owned(), (*g).to_owned());
            }
            m
        })
        .collect();
    for chunk in msgs.chunks(200) {
        b.store.append(chunk).unwrap();
    }
    b.settle();
}

fn stats(b: &Broker, group: &str, topic: &str) -> QueueStats {
    b.pop.stats(group, topic).remove(0)
}

fn ack_all(b: &Broker, ds: &[tern_broker::Delivery]) {
    for d in ds {
        b.pop.ack(&d.receipt).unwrap();
    }
}

/// How many messages the dead-letter topic of `group` holds.
fn dead_letters(b: &Broker, group: &str) -> u64 {
    b.settle();
    b.store.queue_range(&format!("%DLQ%{group}"), 0).1
}

#[test]
fn message_groups_proceed_in_parallel_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = fifo("f", 16);
    let (a, bb) = (Some("a"), Some("b"));
    send(&b, "orders", &[a, bb, a, bb, a]);
    // Two without a message group: they form one group of their own.
    b.send("orders", 0, 2, no_tag);

    let first = b.recv(&g, &t, 10, T0);
    assert_eq!(offsets(&first), [0, 1, 5], "one head per message group");
    let s = stats(&b, "f", "orders");
    assert_eq!((s.in_flight, s.held, s.committed_offset), (3, 4, 0));
    assert!(b.recv(&g, &t, 10, T0 + 1).is_empty(), "the rest is held");
    assert_eq!(b.pop.next_expiry("f", "orders"), Some(T0 + INV));

    b.pop.ack(&first[0].receipt).unwrap();
    let next = b.recv(&g, &t, 10, T0 + 2);
    assert_eq!(offsets(&next), [2]);
    assert_eq!(next[0].attempt, 1);
    b.pop.ack(&first[2].receipt).unwrap();
    b.pop.ack(&first[1].receipt).unwrap();
    let next2 = b.recv(&g, &t, 10, T0 + 3);
    assert_eq!(offsets(&next2), [3, 6]);
    ack_all(&b, &next);
    ack_all(&b, &next2);
    let last = b.recv(&g, &t, 10, T0 + 4);
    assert_eq!(offsets(&last), [4]);
    ack_all(&b, &last);
    assert_eq!(b.store.committed_offset("f", "orders", 0), Some(7));

    // A group that is not FIFO gets everything at once.
    let all = b.recv(&common::group("n"), &t, 10, T0);
    assert_eq!(offsets(&all), (0..7).collect::<Vec<_>>());
    b.close();
}

#[test]
fn a_retry_holds_its_message_group_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = fifo("f", 16);
    send(&b, "orders", &[Some("a"), Some("a"), Some("b"), Some("b")]);

    let ds = b.recv(&g, &t, 10, T0);
    assert_eq!(offsets(&ds), [0, 2]);
    b.pop.ack(&ds[1].receipt).unwrap();
    let b3 = b.recv(&g, &t, 10, T0 + 1);
    assert_eq!(offsets(&b3), [3], "b goes on");
    ack_all(&b, &b3);
    // 0 is not acked: 1 waits for its retry, however long.
    assert!(b.recv(&g, &t, 10, T0 + INV - 1).is_empty());
    let again = b.recv(&g, &t, 10, T0 + INV);
    assert_eq!((offsets(&again), again[0].attempt), (vec![0], 2));
    // Changing the head's invisibility keeps 1 held too.
    let h = b
        .pop
        .change_invisible(&again[0].receipt, 10, T0 + INV)
        .unwrap();
    assert!(b.recv(&g, &t, 10, T0 + INV + 9).is_empty());
    let third = b.recv(&g, &t, 10, T0 + INV + 10);
    assert_eq!((offsets(&third), third[0].attempt), (vec![0], 3));
    assert!(b.pop.ack(&h).is_err(), "redelivery made it stale");
    b.pop.ack(&third[0].receipt).unwrap();
    let next = b.recv(&g, &t, 10, T0 + INV + 11);
    assert_eq!((offsets(&next), next[0].attempt), (vec![1], 1));
    b.close();
}

#[test]
fn past_its_limit_a_head_is_dead_lettered_and_its_group_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = fifo("f", 1); // two deliveries
    send(&b, "orders", &[Some("a"), Some("a"), Some("a")]);

    assert_eq!(offsets(&b.recv(&g, &t, 10, T0)), [0]);
    assert_eq!(offsets(&b.recv(&g, &t, 10, T0 + INV)), [0]);
    // The third time it goes to the dead-letter queue instead.
    let now = T0 + 2 * INV;
    // The same receive goes on with the next message of the group.
    let next = b.recv(&g, &t, 10, now);
    assert_eq!(dead_letters(&b, "f"), 1);
    assert_eq!((offsets(&next), next[0].attempt), (vec![1], 1));

    // The client-driven path: forwarding the head frees the group too.
    b.pop.forward_to_dlq(&next[0].receipt, now + 2).unwrap();
    assert_eq!(dead_letters(&b, "f"), 2);
    assert_eq!(offsets(&b.recv(&g, &t, 10, now + 3)), [2]);
    b.close();
}

#[test]
fn the_sweep_dead_letters_a_head_and_frees_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = pop_config(dir.path());
    cfg.sweep_interval = Duration::from_millis(20);
    let b = Broker::open_with(dir.path(), cfg);
    let t = b.topic("orders", 1);
    let g = fifo("f", 0); // one delivery
    b.registry.ensure_group(g.clone()).unwrap();
    send(&b, "orders", &[Some("a"), Some("a")]);

    // Delivered in the past, so it is already expired by the wall clock.
    let ds = b.recv(&g, &t, 10, now_ms() - 10 * INV);
    assert_eq!(offsets(&ds), [0]);
    let started = Instant::now();
    while dead_letters(&b, "f") == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never swept");
        std::thread::sleep(Duration::from_millis(10));
    }
    let next = b.recv(&g, &t, 10, now_ms());
    assert_eq!((offsets(&next), next[0].attempt), (vec![1], 1));
    b.close();
}

#[test]
fn held_messages_stay_held_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = fifo("f", 16);
    send(&b, "orders", &[Some("a"), Some("a"), Some("b"), Some("a")]);
    let ds = b.recv(&g, &t, 10, T0);
    assert_eq!(offsets(&ds), [0, 2]);
    b.close();

    let b = Broker::open(dir.path());
    let s = stats(&b, "f", "orders");
    assert_eq!((s.in_flight, s.held, s.next_offset), (2, 2, 4));
    send(&b, "orders", &[Some("b"), Some("c")]);
    // 1 and 3 stay held behind 0, 4 behind 2; c is new.
    let c = b.recv(&g, &t, 10, T0 + 1);
    assert_eq!(offsets(&c), [5]);
    ack_all(&b, &c);
    b.pop.ack(&ds[0].receipt).unwrap();
    let next = b.recv(&g, &t, 10, T0 + 2);
    assert_eq!((offsets(&next), next[0].attempt), (vec![1], 1));
    b.close();

    // Restarted again: the retry of 2 still comes before 4.
    let b = Broker::open(dir.path());
    assert!(b.recv(&g, &t, 10, T0 + 3).is_empty());
    let again = b.recv(&g, &t, 10, T0 + INV);
    assert_eq!(offsets(&again), [2]);
    ack_all(&b, &again);
    assert_eq!(offsets(&b.recv(&g, &t, 10, T0 + INV + 1)), [4]);
    b.close();
}

#[test]
fn a_group_made_fifo_learns_the_message_groups_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    send(&b, "orders", &[Some("a"), Some("a"), Some("b"), Some("a")]);
    let plain = GroupConfig::new(GroupName::new("f").unwrap(), false, 16).unwrap();
    assert_eq!(offsets(&b.recv(&plain, &t, 3, T0)), [0, 1, 2]);

    // Now FIFO: of the expired deliveries only the heads come back, and
    // 3 waits behind 0 and 1.
    let g = fifo("f", 16);
    let again = b.recv(&g, &t, 10, T0 + INV);
    assert_eq!(offsets(&again), [0, 2]);
    ack_all(&b, &again);
    assert_eq!(offsets(&b.recv(&g, &t, 10, T0 + INV + 1)), [1]);

    // And back: held messages are delivered at once.
    let b2 = b.recv(&plain, &t, 10, T0 + INV + 2);
    assert_eq!(offsets(&b2), [3]);
    assert_eq!(b2[0].attempt, 1);
    b.close();
}

#[test]
fn held_messages_per_queue_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path());
    let t = b.topic("orders", 1);
    let g = fifo("f", 16);
    let n = MAX_HELD + 200;
    let mut groups = vec![Some("a"); n];
    groups.push(Some("z"));
    send(&b, "orders", &groups);

    let mut delivered = Vec::new();
    for i in 0..20 {
        delivered.extend(offsets(&b.recv(&g, &t, 32, T0 + i)));
    }
    assert_eq!(delivered, [0]);
    let s = stats(&b, "f", "orders");
    assert_eq!((s.in_flight, s.held), (1, MAX_HELD));
    assert_eq!(s.next_offset, MAX_HELD as u64 + 1);
    assert_eq!(b.pop.next_expiry("f", "orders"), Some(T0 + INV));

    // Each ack delivers the next of a and lets one more be read.
    let mut head = b.recv(&g, &t, 32, T0 + INV).remove(0);
    for want in 1..=3u64 {
        b.pop.ack(&head.receipt).unwrap();
        let ds = b.recv(&g, &t, 32, T0 + INV + 1);
        assert_eq!(offsets(&ds), [want]);
        assert_eq!(stats(&b, "f", "orders").held, MAX_HELD);
        head = ds.into_iter().next().unwrap();
    }
    b.close();
}
