use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use tern_harness::small_store_config;
use tern_store::FlushPolicy;

use super::*;

fn open_store(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(small_store_config(dir.join("store"), FlushPolicy::Sync)).unwrap())
}

fn msg(topic: &str, id: &str) -> Message {
    Message {
        topic: TopicName::new(topic).unwrap(),
        queue_id: 3,
        message_id: id.to_owned(),
        tag: None,
        keys: Vec::new(),
        properties: [("k".to_owned(), id.to_owned())].into(),
        body: id.as_bytes().to_vec(),
        born_timestamp_ms: 1,
        flags: 0,
    }
}

fn park_all(p: &Arc<Park>, msgs: Vec<Message>) -> Vec<u64> {
    let (tx, rx) = mpsc::channel();
    p.park(msgs, move |r| tx.send(r).unwrap());
    rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap()
}

/// Messages of `topic` queue 0 in the store, by id.
fn in_topic(store: &Store, topic: &str) -> Vec<String> {
    assert!(store.wait_dispatched(store.max_offset(), Duration::from_secs(10)));
    store
        .read_queue(topic, 0, 0, 1000, usize::MAX)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.message.message_id)
        .collect()
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
    assert!(in_topic(&store, "orders").is_empty());

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
    assert_eq!(in_topic(&store, "orders"), ["m1"]);
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
    assert_eq!(in_topic(&store, "orders"), ["a"]);
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
