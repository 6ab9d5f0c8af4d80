#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tern_model::MessageKind;

use super::*;
use crate::testutil::{message, open_store, queue0_ids, wait_done};

fn cfg() -> TransactionConfig {
    TransactionConfig {
        first_check: Duration::from_secs(6),
        check_interval: Duration::from_secs(30),
        max_checks: 3,
        default_resolution: Resolution::Rollback,
    }
}

/// A transactional (half) message of `topic` queue 0, tagged `tx`.
fn half(topic: &str, id: &str) -> Message {
    let mut m = Message {
        tag: Some("tx".to_owned()),
        ..message(topic, id)
    };
    m.set_kind(MessageKind::Transaction);
    m
}

fn park_all(t: &Arc<Transactions>, msgs: Vec<Message>) -> Vec<u64> {
    wait_done(|done| t.park(msgs, done))
}

#[test]
fn transaction_ids_name_the_park_offset() {
    assert_eq!(parse_transaction_id(&transaction_id(0)), Some(0));
    assert_eq!(
        parse_transaction_id(&transaction_id(u64::MAX)),
        Some(u64::MAX)
    );
    for bad in [
        "",
        "tern-half-",
        "tern-half-x1",
        "tern-half--1",
        "7",
        "other-7",
    ] {
        assert_eq!(parse_transaction_id(bad), None, "{bad:?}");
    }
}

#[test]
fn parked_half_messages_are_scheduled_committed_and_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let t =
        Arc::new(Transactions::open(Arc::clone(&store), &dir.path().join("txn"), cfg()).unwrap());
    let before = tern_model::now_ms();
    let offs = park_all(&t, vec![half("orders", "a"), half("orders", "b")]);
    assert_eq!(offs.len(), 2);
    let p = t.pending(offs[0]).unwrap();
    assert_eq!(
        (p.topic.as_str(), p.message_id.as_str(), p.checks),
        ("orders", "a", 0)
    );
    assert!(p.stored_ms >= before);
    assert_eq!(t.pending_count(), 2);
    // Nothing is in the topic until a commit.
    assert!(queue0_ids(&store, "orders").is_empty());

    let p = t.take(offs[0]).unwrap();
    let mut m = t.get(offs[0]).unwrap().unwrap().message;
    assert_eq!(m.kind(), MessageKind::Transaction);
    m.queue_id = 0;
    assert!(t.end(offs[0], Some(m.clone())).unwrap());
    assert!(!t.end(offs[0], Some(m)).unwrap(), "ended twice");
    assert!(t.take(offs[0]).is_none());
    assert_eq!(p.message_id, "a");

    t.take(offs[1]).unwrap();
    assert!(t.end(offs[1], None).unwrap());
    assert_eq!(queue0_ids(&store, "orders"), ["a"]);
    assert!(t.get(offs[1]).unwrap().is_none());
    assert_eq!(t.pending_count(), 0);
}

#[test]
fn pending_half_messages_and_their_checks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let txn_dir = dir.path().join("txn");
    let t = Arc::new(Transactions::open(Arc::clone(&store), &txn_dir, cfg()).unwrap());
    let offs = park_all(
        &t,
        vec![half("orders", "a"), half("orders", "b"), half("pay", "c")],
    );
    let stored = t.pending(offs[0]).unwrap().stored_ms;
    // Two checks of "a", then "b" is rolled back.
    let far = stored + 10 * 60_000;
    let due = t.due(far, 10);
    assert_eq!(due.len(), 3);
    t.note_check(offs[0], 1).unwrap();
    t.note_check(offs[0], 2).unwrap();
    t.take(offs[1]).unwrap();
    t.end(offs[1], None).unwrap();
    drop(t);

    let t = Transactions::open(Arc::clone(&store), &txn_dir, cfg()).unwrap();
    assert_eq!(t.pending_count(), 2);
    let a = t.pending(offs[0]).unwrap();
    assert_eq!((a.message_id.as_str(), a.checks), ("a", 2));
    // Store time from the park: within a second of the first open's.
    assert!(
        (a.stored_ms - stored).abs() < 1_000,
        "{} vs {stored}",
        a.stored_ms
    );
    assert!(t.pending(offs[1]).is_none());
    assert_eq!(t.pending(offs[2]).unwrap().topic, "pay");
    // "a" has one check left: the third, then the default.
    let now = a.stored_ms + 6_000 + 2 * 30_000;
    let kinds: Vec<bool> = t
        .due(now, 10)
        .iter()
        .filter(|d| matches!(d, Due::Check { offset, .. } | Due::Resolve { offset, .. } if *offset == offs[0]))
        .map(|d| matches!(d, Due::Resolve { .. }))
        .collect();
    assert_eq!(kinds, [false]);
    let later = now + 30_000;
    assert!(t.due(later, 10).iter().any(|d| matches!(
        d,
        Due::Resolve { offset, resolution: Resolution::Rollback, .. } if *offset == offs[0]
    )));
}
