//! Message query over real gRPC: `TernAdmin.GetMessage` and
//! `TernAdmin.QueryMessages` against messages sent with the RocketMQ
//! `SendMessage` RPC, on an in-process broker with a real store.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod grpc_support;

use std::collections::BTreeMap;
use std::time::Duration;

use grpc_support::*;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{GetMessageRequest, QueryMessagesRequest, StoredMessage};
use tern_protocol::v2::messaging_service_client::MessagingServiceClient;
use tern_protocol::v2::*;
use tonic::transport::Channel;

/// Sends `(id, key)` messages, one request each (the broker puts each
/// request in the next queue); all must be stored. Returns the queue
/// offset of each.
async fn send(
    c: &mut MessagingServiceClient<Channel>,
    topic: &str,
    items: &[(&str, &str)],
) -> Vec<i64> {
    let mut offsets = Vec::new();
    for (id, key) in items {
        let mut m = msg(topic, 0, id, format!("body of {id}").as_bytes());
        let sys = m.system_properties.as_mut().unwrap();
        sys.keys = vec![(*key).to_owned(), format!("all-{topic}")];
        m.user_properties = BTreeMap::from([("origin".to_owned(), (*id).to_owned())])
            .into_iter()
            .collect();
        let r = c
            .send_message(req(SendMessageRequest { messages: vec![m] }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{r:?}");
        assert_eq!(code(r.entries[0].status.as_ref()), Code::Ok as i32, "{r:?}");
        offsets.push(r.entries[0].offset);
    }
    offsets
}

async fn get(
    admin: &mut TernAdminClient<Channel>,
    id: &str,
) -> Result<Vec<StoredMessage>, tonic::Status> {
    admin
        .get_message(GetMessageRequest {
            message_id: id.into(),
        })
        .await
        .map(|r| r.into_inner().messages)
}

/// Runs a query; returns the message ids in answer order and the
/// truncated flag.
async fn query(
    admin: &mut TernAdminClient<Channel>,
    r: QueryMessagesRequest,
) -> Result<(Vec<String>, bool), tonic::Status> {
    let resp = admin.query_messages(r).await?.into_inner();
    let times: Vec<i64> = resp.messages.iter().map(|m| m.store_timestamp_ms).collect();
    assert!(times.is_sorted(), "answer not oldest first: {times:?}");
    let ids = resp.messages.into_iter().map(|m| m.message_id).collect();
    Ok((ids, resp.truncated))
}

fn by_key(topic: &str, key: &str, max: u32) -> QueryMessagesRequest {
    QueryMessagesRequest {
        topic: topic.into(),
        key: Some(key.into()),
        max_messages: max,
        ..Default::default()
    }
}

fn by_time(topic: &str, since: Option<i64>, until: Option<i64>, max: u32) -> QueryMessagesRequest {
    QueryMessagesRequest {
        topic: topic.into(),
        since_ms: since,
        until_ms: until,
        max_messages: max,
        ..Default::default()
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("ID{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_by_id_query_by_key_and_by_time() {
    let server = Server::start().await;
    server.create_topic("orders", 4).await;
    server.create_topic("other", 1).await;
    let mut c = server.client().await;
    let mut admin = server.admin().await;

    // Batch A: ID0..ID5, batch B: ID6..ID11, keys order-(i % 3), spread
    // over the four queues; B is stored at least a few ms after A.
    let names: Vec<String> = ids(0..12);
    let keys: Vec<String> = (0..12).map(|i| format!("order-{}", i % 3)).collect();
    let items: Vec<(&str, &str)> = (0..12)
        .map(|i| (names[i].as_str(), keys[i].as_str()))
        .collect();
    let mut offsets = send(&mut c, "orders", &items[..6]).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    offsets.extend(send(&mut c, "orders", &items[6..]).await);
    send(&mut c, "other", &[("X0", "order-1")]).await;

    // By id: every field as sent.
    let found = get(&mut admin, "ID5").await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let m = &found[0];
    assert_eq!((m.message_id.as_str(), m.topic.as_str()), ("ID5", "orders"));
    assert!((0..4).contains(&m.queue_id), "{m:?}");
    assert_eq!(i64::try_from(m.queue_offset).unwrap(), offsets[5]);
    assert_eq!(m.tag.as_deref(), Some("tagA"));
    assert_eq!(m.keys, vec!["order-2".to_owned(), "all-orders".to_owned()]);
    assert_eq!(m.properties.get("origin").map(String::as_str), Some("ID5"));
    assert_eq!(m.body, b"body of ID5");
    assert!(m.store_timestamp_ms > 0 && m.born_timestamp_ms > 0);

    let missing = get(&mut admin, "no-such-id").await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    assert!(missing.message().contains("no-such-id"), "{missing:?}");
    let empty = get(&mut admin, "").await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    // By key: only this topic's messages with the key, oldest first; with
    // a smaller max, the newest ones and the truncated flag.
    let (hits, more) = query(&mut admin, by_key("orders", "order-1", 0))
        .await
        .unwrap();
    assert_eq!(hits, ["ID1", "ID4", "ID7", "ID10"]);
    assert!(!more);
    let (hits, more) = query(&mut admin, by_key("orders", "order-1", 2))
        .await
        .unwrap();
    assert_eq!(hits, ["ID7", "ID10"]);
    assert!(more);
    let (hits, more) = query(&mut admin, by_key("orders", "nobody", 0))
        .await
        .unwrap();
    assert!(hits.is_empty() && !more);

    // By time: B starts at the store time of its first message.
    let b_start = get(&mut admin, "ID6").await.unwrap()[0].store_timestamp_ms;
    let a_end = get(&mut admin, "ID5").await.unwrap()[0].store_timestamp_ms;
    assert!(a_end < b_start, "batches stored in the same ms");
    let all = admin
        .query_messages(by_time("orders", None, None, 0))
        .await
        .unwrap()
        .into_inner();
    let queues: std::collections::HashSet<i32> = all.messages.iter().map(|m| m.queue_id).collect();
    assert_eq!(queues.len(), 4, "the messages should use every queue");
    let (hits, more) = query(&mut admin, by_time("orders", Some(b_start), None, 0))
        .await
        .unwrap();
    assert_eq!(hits, ids(6..12));
    assert!(!more);
    let (hits, more) = query(&mut admin, by_time("orders", None, Some(b_start), 0))
        .await
        .unwrap();
    assert_eq!(hits, ids(0..6));
    assert!(!more);
    // Across queues, the oldest first; the rest are counted.
    let (hits, more) = query(&mut admin, by_time("orders", None, None, 5))
        .await
        .unwrap();
    assert_eq!(hits, ids(0..5));
    assert!(more);
    let (hits, _) = query(
        &mut admin,
        by_time("orders", Some(b_start + 60_000), None, 0),
    )
    .await
    .unwrap();
    assert!(hits.is_empty());

    // Key and time together.
    let mut both = by_key("orders", "order-1", 0);
    both.since_ms = Some(b_start);
    let (hits, more) = query(&mut admin, both).await.unwrap();
    assert_eq!(hits, ["ID7", "ID10"]);
    assert!(!more);

    // Refused requests.
    let unknown = query(&mut admin, by_key("nope", "k", 0)).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    let backwards = query(&mut admin, by_time("orders", Some(10), Some(10), 0))
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), tonic::Code::InvalidArgument);
    let too_many = query(&mut admin, by_time("orders", None, None, 5_000))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumed_messages_stay_findable_under_sync_flush() {
    let server = Server::start_with(|cfg| cfg.store.flush = tern_store::FlushPolicy::Sync).await;
    server.create_topic("jobs", 1).await;
    let mut c = server.client().await;
    let mut admin = server.admin().await;

    // Found as soon as the send is answered.
    send(&mut c, "jobs", &[("J1", "job-1"), ("J2", "job-2")]).await;
    assert_eq!(get(&mut admin, "J2").await.unwrap()[0].queue_offset, 1);

    // Received and acknowledged: still stored, still found.
    let (status, got) = receive(&mut c, "jobs", 30_000, 5_000).await;
    assert_eq!(status, Code::Ok as i32);
    assert_eq!(got.len(), 2);
    let handles: Vec<String> = got.iter().map(handle).collect();
    assert_eq!(
        ack(&mut c, "jobs", &handles).await,
        vec![Code::Ok as i32; 2]
    );
    let (hits, _) = query(&mut admin, by_key("jobs", "job-1", 0)).await.unwrap();
    assert_eq!(hits, ["J1"]);
    let (hits, _) = query(&mut admin, by_time("jobs", None, None, 0))
        .await
        .unwrap();
    assert_eq!(hits, ["J1", "J2"]);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_answers_stop_at_the_byte_budget_oldest_first() {
    let server = Server::start_with(|cfg| {
        cfg.store.max_body_bytes = 2 << 20;
        cfg.store.segment_size = 16 << 20;
    })
    .await;
    server.create_topic("big", 2).await;
    let mut c = server.client().await;
    let body = vec![b'x'; 1536 << 10];
    for i in 0..12 {
        let r = c
            .send_message(req(SendMessageRequest {
                messages: vec![msg("big", 0, &format!("ID{i}"), &body)],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{r:?}");
    }
    let mut admin =
        TernAdminClient::new(server.channel().await).max_decoding_message_size(64 << 20);
    // 12 x 1.5 MiB do not fit in one 8 MiB answer: the oldest 5 do.
    let r = admin
        .query_messages(by_time("big", None, None, 0))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<&str> = r.messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(got, ids(0..5));
    assert!(r.truncated);
    assert!(r.messages.iter().all(|m| m.body == body));
    server.stop().await;
}
