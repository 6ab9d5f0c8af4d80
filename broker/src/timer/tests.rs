use tern_model::MessageKind;

use super::*;
use crate::meta::{MessageType, Permission, TopicConfig};
use crate::testutil::{open_store, wait_done};

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<Store>,
    registry: Arc<Registry>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let store = open_store(&root);
    let registry = Arc::new(Registry::open(&root.join("meta")).unwrap());
    registry
        .create_topic(
            TopicConfig::new(
                TopicName::new("later").unwrap(),
                2,
                MessageType::Delay,
                Permission::ReadWrite,
            )
            .unwrap(),
        )
        .unwrap();
    Fixture {
        _dir: dir,
        root,
        store,
        registry,
    }
}

fn cfg() -> DelayConfig {
    DelayConfig {
        precision: Duration::from_millis(100),
        ..DelayConfig::default()
    }
}

fn open(f: &Fixture) -> Arc<Timer> {
    Timer::open(
        Arc::clone(&f.store),
        Arc::clone(&f.registry),
        &f.root.join("park"),
        cfg(),
    )
    .unwrap()
}

fn delayed(id: &str, at: i64) -> Message {
    let mut m = Message {
        topic: TopicName::new("later").unwrap(),
        queue_id: 0,
        message_id: id.to_owned(),
        tag: None,
        keys: Vec::new(),
        properties: [(tern_model::system::DELIVER_AT.to_owned(), at.to_string())].into(),
        body: b"x".to_vec(),
        born_timestamp_ms: 1,
        flags: 0,
    };
    m.set_kind(MessageKind::Delay);
    m
}

fn schedule(t: &Arc<Timer>, msgs: Vec<Message>) -> Vec<u64> {
    wait_done(|done| t.schedule(msgs, done))
}

/// (message id, store time) of every message delivered to "later".
fn delivered(store: &Store) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for q in 0..2 {
        let r = store.read_queue("later", q, 0, 10_000, usize::MAX).unwrap();
        out.extend(
            r.messages
                .into_iter()
                .map(|m| (m.message.message_id, m.store_timestamp_ms)),
        );
    }
    out.sort();
    out
}

fn wait_for(store: &Store, n: usize) -> Vec<(String, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = delivered(store);
        if d.len() >= n || std::time::Instant::now() > deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn delivers_on_time_never_early() {
    let f = fixture();
    let t = open(&f);
    let now = now_ms();
    let times = [now + 300, now + 450, now + 700];
    schedule(
        &t,
        times
            .iter()
            .enumerate()
            .map(|(i, &at)| delayed(&format!("m{i}"), at))
            .collect(),
    );
    let got = wait_for(&f.store, 3);
    assert_eq!(got.len(), 3);
    for ((id, stored), at) in got.iter().zip(times) {
        assert!(*stored >= at, "{id} delivered {} ms early", at - stored);
        // One precision (100 ms), plus scheduling slack on a busy machine.
        assert!(
            *stored < at + 100 + 400,
            "{id} delivered {} ms late",
            stored - at
        );
    }
    assert_eq!(t.pending(), 0);
    t.close();
}

#[test]
fn recall_cancels_and_restart_keeps_pending() {
    let f = fixture();
    let t = open(&f);
    let at = now_ms() + 1500;
    let offs = schedule(&t, vec![delayed("keep", at), delayed("drop", at)]);
    let later = TopicName::new("later").unwrap();
    let handle = recall_handle(offs[1], "drop");
    assert!(matches!(
        t.recall(&TopicName::new("other").unwrap(), &handle),
        Err(BrokerError::Invalid(_))
    ));
    assert_eq!(t.recall(&later, &handle).unwrap(), "drop");
    assert!(matches!(
        t.recall(&later, &handle),
        Err(BrokerError::MessageNotFound(_))
    ));
    assert!(t.recall(&later, "garbage").is_err());
    t.close();
    drop(t);

    // A restart before the time: still pending, delivered on time.
    let t = open(&f);
    assert_eq!(t.pending(), 1);
    let got = wait_for(&f.store, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "keep");
    assert!(got[0].1 >= at);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(delivered(&f.store).len(), 1, "recalled message never comes");
    t.close();
}

/// Waits until the timer has read ahead `n` messages.
fn wait_staged(t: &Timer, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let staged: usize = t.staged.lock().iter().map(|b| b.staged.len()).sum();
        if staged >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {staged} of {n} messages staged"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn staged_ahead_then_released_on_time_and_recall_still_works() {
    let f = fixture();
    let t = open(&f);
    // Due within the read-ahead window: staged before their time.
    let at = now_ms() + 1200;
    let msgs: Vec<Message> = (0..50).map(|i| delayed(&format!("s{i:02}"), at)).collect();
    let offs = schedule(&t, msgs);
    wait_staged(&t, 50);
    assert!(t.staged_bytes.load(Ordering::Relaxed) > 0);
    assert!(delivered(&f.store).is_empty(), "staging writes nothing");
    // A staged message can still be recalled; its batch then goes the
    // ordinary way and skips it.
    let later = TopicName::new("later").unwrap();
    assert_eq!(
        t.recall(&later, &recall_handle(offs[7], "s07")).unwrap(),
        "s07"
    );
    // Scheduled into the same slot after it was staged: released too.
    schedule(&t, vec![delayed("late-comer", at)]);
    let got = wait_for(&f.store, 50);
    std::thread::sleep(Duration::from_millis(300));
    let got_after = delivered(&f.store);
    assert_eq!(got, got_after, "each delivered once");
    let mut want: Vec<String> = (0..50)
        .filter(|&i| i != 7)
        .map(|i| format!("s{i:02}"))
        .collect();
    want.push("late-comer".to_owned());
    want.sort();
    let ids: Vec<String> = got.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, want);
    for (id, stored) in &got {
        assert!(*stored >= at, "{id} delivered {} ms early", at - stored);
    }
    assert_eq!(t.pending(), 0);
    assert_eq!(t.staged_bytes.load(Ordering::Relaxed), 0);
    t.close();
}

#[test]
fn staged_messages_of_a_deleted_topic_are_dropped() {
    let f = fixture();
    let t = open(&f);
    let at = now_ms() + 1000;
    schedule(&t, (0..5).map(|i| delayed(&format!("d{i}"), at)).collect());
    wait_staged(&t, 5);
    f.registry.delete_topic("later").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while t.pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "never dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        delivered(&f.store).is_empty(),
        "nothing written to a deleted topic"
    );
    t.close();
}

#[test]
fn slots_round_up() {
    let f = fixture();
    let t = open(&f);
    assert_eq!(t.slot(1000), 1000);
    assert_eq!(t.slot(1001), 1100);
    assert_eq!(t.slot(1099), 1100);
    t.close();
    assert_eq!(
        parse_handle(&recall_handle(255, "a:b")).unwrap(),
        (255, "a:b")
    );
    assert!(
        DelayConfig {
            precision: Duration::from_millis(50),
            ..DelayConfig::default()
        }
        .validate()
        .is_err()
    );
}
