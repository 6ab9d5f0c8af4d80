use super::*;
use crate::testutil::{message, open_store, queue0_ids, wait_done};

/// A message of `topic` queue 3.
fn msg(topic: &str, id: &str) -> Message {
    Message {
        queue_id: 3,
        ..message(topic, id)
    }
}

fn park_all(p: &Arc<Park>, msgs: Vec<Message>) -> Vec<u64> {
    wait_done(|done| p.park(msgs, done))
}

fn ready(p: &Park, o: u64) -> Message {
    let mut m = p.get(o).unwrap().unwrap().message;
    m.queue_id = 0;
    m
}

#[test]
fn park_release_discard_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let p = Park::open(Arc::clone(&store), &dir.path().join("park"), "t").unwrap();
    let offs = park_all(
        &p,
        (0..5).map(|i| msg("orders", &format!("m{i}"))).collect(),
    );
    assert_eq!(offs, [0, 1, 2, 3, 4]);
    let got = p.get(1).unwrap().unwrap();
    assert_eq!(got.message.topic.as_str(), "orders");
    assert_eq!(got.message.message_id, "m1");
    assert!(!got.message.properties.contains_key(system::REAL_TOPIC));
    // Parked messages are not in their topic.
    assert!(queue0_ids(&store, "orders").is_empty());

    let m1 = ready(&p, 1);
    assert_eq!(p.release(vec![(1, m1.clone())]).unwrap(), [1]);
    assert_eq!(
        p.release(vec![(1, m1)]).unwrap(),
        Vec::<u64>::new(),
        "released once only"
    );
    assert_eq!(p.discard(&[3, 3, 9]).unwrap(), [3]);
    p.note(4, 2).unwrap();
    assert!(p.get(1).unwrap().is_none());
    assert_eq!(queue0_ids(&store, "orders"), ["m1"]);
    assert_eq!(p.len(), 3);
    drop(p);

    let p = Park::open(Arc::clone(&store), &dir.path().join("park"), "t").unwrap();
    let mut pending = Vec::new();
    p.pending(|x| pending.push((x.offset, x.message.message_id, x.note)))
        .unwrap();
    assert_eq!(
        pending,
        [
            (0, "m0".into(), 0),
            (2, "m2".into(), 0),
            (4, "m4".into(), 2)
        ]
    );
    assert_eq!(
        p.get_many(&[0, 1, 2, 3, 4])
            .unwrap()
            .iter()
            .map(|x| x.offset)
            .collect::<Vec<_>>(),
        [0, 2, 4]
    );
}

#[test]
fn staged_copies_are_released_once_and_never_after_a_discard() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let p = Park::open(Arc::clone(&store), &dir.path().join("park"), "t").unwrap();
    park_all(
        &p,
        (0..4).map(|i| msg("orders", &format!("m{i}"))).collect(),
    );
    let orders = TopicName::new("orders").unwrap();
    let items = |offs: &[u64]| -> Vec<(u64, &TopicName, u32)> {
        offs.iter().map(|&o| (o, &orders, 0)).collect()
    };
    let a = p.stage_copies(&items(&[0, 1])).unwrap();
    let b = p.stage_copies(&items(&[2, 3])).unwrap();
    assert_eq!((a.len(), b.len()), (2, 2));
    assert!(a.bytes() > 0);
    assert!(
        queue0_ids(&store, "orders").is_empty(),
        "staging writes nothing"
    );
    // Discarded after it was staged: its batch is not written at all.
    assert_eq!(p.discard(&[3]).unwrap(), [3]);
    let out = p.release_staged(vec![a, b]);
    assert!(matches!(out[..], [Ok(true), Ok(false)]), "{out:?}");
    assert_eq!(queue0_ids(&store, "orders"), ["m0", "m1"]);
    // The rest of the stale batch goes the ordinary way.
    assert_eq!(p.release_copies(&items(&[2, 3])).unwrap(), [2]);
    // Staged again after release: nothing left to stage or write.
    let again = p.stage_copies(&items(&[0, 1, 2])).unwrap();
    assert_eq!(again.len(), 0);
    assert!(matches!(p.release_staged(vec![again])[..], [Ok(true)]));
    assert_eq!(queue0_ids(&store, "orders"), ["m0", "m1", "m2"]);
    assert_eq!(p.len(), 0);
}

#[test]
fn an_interrupted_release_is_finished_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let pdir = dir.path().join("park");
    let p = Park::open(Arc::clone(&store), &pdir, "t").unwrap();
    park_all(&p, vec![msg("orders", "a"), msg("orders", "b")]);
    // A stop between the intents and their `Done`: the copy of `a` was
    // written, the copy of `b` was not.
    p.journal.append(&Record::Intent { from: 0, to: 2 });
    p.journal.flush().unwrap();
    store.append(&[ready(&p, 0)]).unwrap();
    drop(p);

    let p = Park::open(Arc::clone(&store), &pdir, "t").unwrap();
    let mut pending = Vec::new();
    p.pending(|x| pending.push(x.message.message_id)).unwrap();
    assert_eq!(pending, ["b"], "a's copy exists, so a is finished");
    assert_eq!(queue0_ids(&store, "orders"), ["a"]);
}

#[test]
fn journal_snapshot_covers_gaps() {
    let mut st = State {
        end: 10,
        ..State::default()
    };
    for o in [2, 3, 7] {
        st.unfinished.insert(
            o,
            Entry {
                position: o * 100,
                note: u32::from(o == 7),
                busy: false,
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    drop(Journal::<Record>::create(&path, &st.snapshot()).unwrap());
    let recs = crate::journal::read::<Record>(&path).unwrap().records;
    assert_eq!(
        recs,
        [
            Record::Low { offset: 2 },
            Record::Done { from: 4, to: 7 },
            Record::Note {
                offset: 7,
                value: 1
            },
            Record::Done { from: 8, to: 10 },
        ]
    );
}

#[test]
fn runs_of_offsets() {
    assert_eq!(runs(&[]).count(), 0);
    assert_eq!(
        runs(&[1, 2, 3, 7, 9, 10]).collect::<Vec<_>>(),
        [(1, 4), (7, 8), (9, 11)]
    );
}

#[test]
fn ranges_merge() {
    let mut r = Ranges::default();
    r.add(5, 8);
    r.add(1, 3);
    r.add(3, 5);
    r.add(20, 21);
    r.add(7, 9);
    assert_eq!(r.0.into_iter().collect::<Vec<_>>(), [(1, 9), (20, 21)]);
    let mut r = Ranges::default();
    r.add(1, 3);
    r.add(10, 12);
    assert!(r.contains(1) && r.contains(2) && r.contains(11));
    assert!(!r.contains(3) && !r.contains(0) && !r.contains(12) && !r.contains(5));
}
