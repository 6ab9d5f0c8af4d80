//! Back-pressure: when the store is behind, sends are refused at once with
//! TOO_MANY_REQUESTS instead of waiting, whatever their kind, and nothing of
//! them is written.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_while_too_much_is_unflushed() {
    let server = Server::start_with(|cfg| {
        // The flusher only runs once a minute: the first send stays
        // unflushed and is over the tiny limit.
        cfg.store.flush_interval = Duration::from_secs(60);
        cfg.store.flush_dirty_bytes = u64::MAX;
        cfg.max_unflushed_bytes = 1;
    })
    .await;
    server.create_topic("bp", 1).await;
    let mut c = server.client().await;
    assert_eq!(send(&mut c, "bp", &[(0, "a")]).await, vec![20000]);
    let started = Instant::now();
    let r = c
        .send_message(req_as(
            SendMessageRequest {
                messages: vec![msg("bp", 0, "second", b"more")],
            },
            "p",
            "RUST",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refusal was not prompt"
    );
    assert_eq!(code(r.status.as_ref()), Code::TooManyRequests as i32);
    assert_eq!(
        code(r.entries[0].status.as_ref()),
        Code::TooManyRequests as i32
    );
    // Nothing of the refused send was stored.
    let (status, got) = receive(&mut c, "bp", 30_000, 5_000).await;
    assert_eq!((status, got.len()), (Code::Ok as i32, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_while_too_many_sends_wait() {
    let server = Server::start_with(|cfg| cfg.max_pending_sends = 0).await;
    server.create_topic("bp2", 1).await;
    let mut c = server.client().await;
    assert_eq!(
        send(&mut c, "bp2", &[(0, "a"), (0, "b")]).await,
        vec![42900; 2]
    );
    server.stop().await;
}

/// One message of each kind, each to a topic of its type: normal, FIFO
/// (with a message group), delayed (due in a minute, so parked) and
/// transactional (a half message, parked until its transaction ends).
fn one_of_each(tag: &str) -> Vec<Message> {
    let mut normal = msg("bp-normal", 0, &format!("n-{tag}"), b"normal");
    normal.system_properties.as_mut().unwrap().message_type = MessageType::Normal as i32;
    let mut fifo = msg("bp-fifo", 0, &format!("f-{tag}"), b"fifo");
    let sp = fifo.system_properties.as_mut().unwrap();
    sp.message_type = MessageType::Fifo as i32;
    sp.message_group = Some("order-1".into());
    let mut delayed = msg("bp-delay", 0, &format!("d-{tag}"), b"delayed");
    let sp = delayed.system_properties.as_mut().unwrap();
    sp.message_type = MessageType::Delay as i32;
    let due = std::time::SystemTime::now() + Duration::from_secs(60);
    sp.delivery_timestamp = Some(prost_types::Timestamp::from(due));
    let mut half = msg("bp-txn", 0, &format!("h-{tag}"), b"half");
    half.system_properties.as_mut().unwrap().message_type = MessageType::Transaction as i32;
    vec![normal, fifo, delayed, half]
}

/// Creates the four topics of [`one_of_each`].
async fn topics_of_each_kind(server: &Server) {
    use tern_protocol::admin::{CreateTopicRequest, MessageType as Kind, Topic};
    let mut admin = server.admin().await;
    for (name, kind) in [
        ("bp-normal", Kind::Normal),
        ("bp-fifo", Kind::Fifo),
        ("bp-delay", Kind::Delay),
        ("bp-txn", Kind::Transaction),
    ] {
        admin
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: name.into(),
                    queue_count: 2,
                    message_type: kind as i32,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
}

/// The commit log's end: every write of any kind (to a topic, or a
/// delayed or half message to its park) moves it.
async fn log_end(server: &Server) -> u64 {
    let s = server
        .admin()
        .await
        .cluster_status(tern_protocol::admin::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    s.brokers[0].store.as_ref().unwrap().max_offset
}

/// Sends `messages` one request each, then all of them in one request:
/// the status of each entry.
async fn send_each_and_all(c: &mut Client, messages: Vec<Message>) -> Vec<i32> {
    let mut codes = Vec::new();
    let mut requests: Vec<Vec<Message>> = messages.iter().map(|m| vec![m.clone()]).collect();
    requests.push(messages);
    for messages in requests {
        let r = c
            .send_message(req(SendMessageRequest { messages }))
            .await
            .unwrap()
            .into_inner();
        codes.extend(r.entries.iter().map(|e| code(e.status.as_ref())));
    }
    codes
}

/// Under back-pressure every kind of message is refused, alone or in a
/// batch of all four, and nothing of any is written: not to its topic,
/// not to the delay timer's park, not to the transactions' park.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_is_refused_and_nothing_is_stored() {
    // Too many sends waiting: every write is refused.
    let server = Server::start_with(|cfg| cfg.max_pending_sends = 0).await;
    topics_of_each_kind(&server).await;
    let mut c = server.client().await;
    let before = log_end(&server).await;
    let codes = send_each_and_all(&mut c, one_of_each("pending")).await;
    assert_eq!(codes, vec![Code::TooManyRequests as i32; 8]);
    assert_eq!(log_end(&server).await, before, "a refused send was written");
    server.stop().await;

    // The disk behind: the first send is admitted and stays unflushed
    // over the tiny limit, then every kind is refused.
    let server = Server::start_with(|cfg| {
        cfg.store.flush_interval = Duration::from_secs(60);
        cfg.store.flush_dirty_bytes = u64::MAX;
        cfg.max_unflushed_bytes = 1;
    })
    .await;
    topics_of_each_kind(&server).await;
    let mut c = server.client().await;
    assert_eq!(send(&mut c, "bp-normal", &[(0, "a")]).await, vec![20000]);
    let before = log_end(&server).await;
    assert!(before > 0);
    let codes = send_each_and_all(&mut c, one_of_each("unflushed")).await;
    assert_eq!(codes, vec![Code::TooManyRequests as i32; 8]);
    assert_eq!(log_end(&server).await, before, "a refused send was written");
    // Nothing reached a consumer either: the normal topic holds the one
    // admitted message, the others none.
    let (status, got) = receive(&mut c, "bp-normal", 30_000, 5_000).await;
    assert_eq!((status, got.len()), (Code::Ok as i32, 1));
    for topic in ["bp-fifo", "bp-delay", "bp-txn"] {
        assert_eq!(server.wait_readable(topic, 0).await, vec![0, 0], "{topic}");
    }
    server.stop().await;
}
