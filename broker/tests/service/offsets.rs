//! PullMessage, UpdateOffset, GetOffset, QueryOffset.

use std::time::{Duration, Instant};

use tern_protocol::v2::pull_message_response::Content as Pull;

use super::*;

/// One pull: the status, the messages and the next offset.
async fn pull(
    c: &mut Client,
    language: &str,
    topic: &str,
    q: i32,
    offset: i64,
    tags: &str,
    poll_ms: u64,
) -> (i32, Vec<Message>, Option<i64>) {
    let r = PullMessageRequest {
        group: res("puller"),
        message_queue: queue(topic, q),
        offset,
        batch_size: 3,
        filter_expression: Some(FilterExpression {
            r#type: FilterType::Tag as i32,
            expression: tags.into(),
        }),
        long_polling_timeout: ms(poll_ms),
    };
    let mut stream = c
        .pull_message(req_as(r, "puller-1", language))
        .await
        .unwrap()
        .into_inner();
    let (mut status, mut messages, mut next) = (0, Vec::new(), None);
    while let Some(item) = stream.message().await.unwrap() {
        match item.content.unwrap() {
            Pull::Status(s) => status = s.code,
            Pull::Message(m) => messages.push(m),
            Pull::NextOffset(n) => next = Some(n),
        }
    }
    (status, messages, next)
}

async fn get_offset(
    c: &mut Client,
    language: &str,
    group: &str,
    topic: &str,
    q: i32,
) -> (i32, i64) {
    let r = c
        .get_offset(req_as(
            GetOffsetRequest {
                group: res(group),
                message_queue: queue(topic, q),
            },
            "puller-1",
            language,
        ))
        .await
        .unwrap()
        .into_inner();
    (code(r.status.as_ref()), r.offset)
}

async fn update_offset(c: &mut Client, group: &str, topic: &str, q: i32, offset: i64) -> i32 {
    let r = c
        .update_offset(req(UpdateOffsetRequest {
            group: res(group),
            message_queue: queue(topic, q),
            offset,
        }))
        .await
        .unwrap()
        .into_inner();
    code(r.status.as_ref())
}

async fn query_offset(
    c: &mut Client,
    topic: &str,
    policy: QueryOffsetPolicy,
    timestamp_ms: Option<i64>,
) -> (i32, i64) {
    let r = c
        .query_offset(req(QueryOffsetRequest {
            message_queue: queue(topic, 0),
            query_offset_policy: policy as i32,
            timestamp: timestamp_ms.map(|t| prost_types::Timestamp {
                seconds: t / 1000,
                nanos: 0,
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    (code(r.status.as_ref()), r.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_and_offsets() {
    let mut dir = std::path::PathBuf::new();
    let server = Server::start_with(|cfg| dir = cfg.store.dir.clone()).await;
    server.create_topic("pulls", 2).await;
    let mut c = server.client().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let tags = ["a", "b", "a", "b", "a"];
    let items: Vec<(i32, &str)> = tags.iter().map(|&t| (0, t)).collect();
    assert_eq!(send(&mut c, "pulls", &items).await, vec![20000; 5]);
    // Under `async` flush a message is readable shortly after its ack.
    server.wait_readable("pulls", 5).await;

    // QueryOffset: the ends of the queue, and by time.
    assert_eq!(
        query_offset(&mut c, "pulls", QueryOffsetPolicy::Beginning, None).await,
        (20000, 0)
    );
    assert_eq!(
        query_offset(&mut c, "pulls", QueryOffsetPolicy::End, None).await,
        (20000, 5)
    );
    let far = before + 3_600_000;
    assert_eq!(
        query_offset(&mut c, "pulls", QueryOffsetPolicy::Timestamp, Some(far)).await,
        (20000, 5)
    );
    assert_eq!(
        query_offset(
            &mut c,
            "pulls",
            QueryOffsetPolicy::Timestamp,
            Some(before - 60_000)
        )
        .await,
        (20000, 0)
    );
    assert_eq!(
        query_offset(&mut c, "pulls", QueryOffsetPolicy::Timestamp, None)
            .await
            .0,
        Code::BadRequest as i32
    );

    // Pull a batch, then the rest; the queue's end yields MESSAGE_NOT_FOUND.
    let (status, got, next) = pull(&mut c, "JAVA", "pulls", 0, 0, "*", 0).await;
    assert_eq!(status, Code::Ok as i32);
    assert_eq!(got.iter().map(offset).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(next, Some(3));
    assert!(got.iter().all(|m| {
        let sp = m.system_properties.as_ref().unwrap();
        sp.receipt_handle.is_none() && sp.body_digest.is_some()
    }));
    let (_, got, next) = pull(&mut c, "JAVA", "pulls", 0, 3, "*", 0).await;
    assert_eq!((got.len(), next), (2, Some(5)));
    assert_eq!(
        pull(&mut c, "JAVA", "pulls", 0, 5, "*", 0).await,
        (Code::MessageNotFound as i32, Vec::new(), Some(5))
    );

    // A tag filter skips the others; the next offset moves past them.
    let (status, got, next) = pull(&mut c, "JAVA", "pulls", 0, 0, "b", 0).await;
    assert_eq!(status, Code::Ok as i32);
    assert_eq!(got.iter().map(offset).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(next, Some(5));
    let (status, got, next) = pull(&mut c, "JAVA", "pulls", 0, 4, "b", 0).await;
    assert_eq!(
        (status, got.len(), next),
        (Code::MessageNotFound as i32, 0, Some(5))
    );

    // Out of range: ILLEGAL_OFFSET and where to go; older code for Rust.
    assert_eq!(
        pull(&mut c, "JAVA", "pulls", 0, 9, "*", 0).await,
        (Code::IllegalOffset as i32, Vec::new(), Some(5))
    );
    assert_eq!(
        pull(&mut c, "RUST", "pulls", 0, 9, "*", 0).await.0,
        Code::BadRequest as i32
    );
    assert_eq!(
        pull(&mut c, "JAVA", "nope", 0, 0, "*", 0).await.0,
        Code::TopicNotFound as i32
    );
    assert_eq!(
        pull(&mut c, "JAVA", "pulls", 7, 0, "*", 0).await.0,
        Code::BadRequest as i32
    );

    // Offsets: unknown group, no offset yet, then set, read and durable.
    assert_eq!(
        get_offset(&mut c, "JAVA", "ghost", "pulls", 0).await.0,
        Code::ConsumerGroupNotFound as i32
    );
    assert_eq!(
        get_offset(&mut c, "JAVA", "puller", "pulls", 0).await.0,
        Code::OffsetNotFound as i32
    );
    assert_eq!(
        get_offset(&mut c, "RUST", "puller", "pulls", 0).await.0,
        Code::NotFound as i32
    );
    assert_eq!(update_offset(&mut c, "puller", "pulls", 0, 3).await, 20000);
    assert_eq!(
        get_offset(&mut c, "JAVA", "puller", "pulls", 0).await,
        (20000, 3)
    );
    let saved = std::fs::read_to_string(dir.join("offsets.json")).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["groups"]["puller"]["pulls"]["0"], 3);
    assert_eq!(
        update_offset(&mut c, "puller", "pulls", 0, 6).await,
        Code::IllegalOffset as i32
    );
    assert_eq!(
        update_offset(&mut c, "puller", "pulls", 0, -1).await,
        Code::IllegalOffset as i32
    );
    assert_eq!(
        update_offset(&mut c, "puller", "nope", 0, 0).await,
        Code::TopicNotFound as i32
    );

    // A group that receives (POP) owns its offset: GetOffset shows it,
    // UpdateOffset may not move it.
    let (status, got) = receive(&mut c, "pulls", 30_000, 5_000).await;
    assert_eq!((status, got.len()), (Code::Ok as i32, 5));
    let handles: Vec<String> = got.iter().take(2).map(handle).collect();
    assert_eq!(ack(&mut c, "pulls", &handles).await, vec![20000; 2]);
    let (status, at) = get_offset(&mut c, "JAVA", "g1", "pulls", 0).await;
    assert_eq!((status, at), (20000, 2));
    assert_eq!(
        update_offset(&mut c, "g1", "pulls", 0, 5).await,
        Code::PreconditionFailed as i32
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_long_poll_wakes_on_send() {
    let server = Server::start().await;
    server.create_topic("waits", 1).await;
    let mut puller = server.client().await;
    let mut sender = server.client().await;
    let started = Instant::now();
    let waiting =
        tokio::spawn(async move { pull(&mut puller, "JAVA", "waits", 0, 0, "*", 15_000).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the pull did not wait");
    assert_eq!(send(&mut sender, "waits", &[(0, "a")]).await, vec![20000]);
    let (status, got, next) = waiting.await.unwrap();
    let took = started.elapsed();
    assert_eq!((status, got.len(), next), (Code::Ok as i32, 1, Some(1)));
    assert!(
        took < Duration::from_secs(5),
        "woke after {took:?}, not at the send"
    );
    server.stop().await;
}
