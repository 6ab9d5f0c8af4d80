//! The official Apache RocketMQ Rust SDK (crates.io `rocketmq` 5.0.0)
//! against a real `tern standalone` process: its producer sends, its simple
//! consumer receives and acks, each message exactly once; two groups each
//! get every message; two members of one group share the messages.
//!
//! The SDK has no push consumer and no ChangeInvisibleDuration; it takes
//! `host:port,host:port` access points and knows only the older status
//! codes (the broker answers it with those, by its `x-mq-language: RUST`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rocketmq::conf::{ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageBuilder;
use rocketmq::{Producer, SimpleConsumer};
use tern_protocol::admin::MessageType;

mod support;

use support::{Tern, client_option};

/// Sends `prefix-0` .. `prefix-(n-1)`, tag `TagA`, key `key-<i>`.
async fn send(access: &str, topic: &str, prefix: &str, n: usize) -> BTreeSet<String> {
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic]);
    let mut producer = Producer::new(option, client_option(access)).unwrap();
    producer.start().await.unwrap();
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let body = format!("{prefix}-{i}");
        let message = MessageBuilder::builder()
            .set_topic(topic)
            .set_tag("TagA")
            .set_keys(vec![format!("key-{i}")])
            .set_body(body.clone().into_bytes())
            .build()
            .unwrap();
        let receipt = producer.send(message).await.unwrap();
        assert!(!receipt.message_id().is_empty(), "send {i}: no message id");
        sent.insert(body);
    }
    producer.shutdown().await.unwrap();
    sent
}

/// Receives and acks until `stop(distinct bodies seen)` says so, or
/// nothing new came for `idle`; returns how often each body came.
async fn consume(
    access: &str,
    topic: &str,
    group: &str,
    idle: Duration,
    batch: i32,
    stop: impl Fn(usize) -> bool,
) -> BTreeMap<String, usize> {
    let mut option = SimpleConsumerOption::default();
    option.set_topics(vec![topic]);
    option.set_consumer_group(group);
    let mut consumer = SimpleConsumer::new(option, client_option(access)).unwrap();
    consumer.start().await.unwrap();
    let filter = FilterExpression::new(FilterType::Tag, "TagA");
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_new = Instant::now();
    while !stop(got.len()) && last_new.elapsed() < idle {
        // MESSAGE_NOT_FOUND (a queue with nothing left) is an error here.
        let views = match consumer
            .receive_with(topic, &filter, batch, Duration::from_secs(15))
            .await
        {
            Ok(views) => views,
            Err(e) => {
                eprintln!("{group}: receive: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for view in views {
            let body = String::from_utf8(view.body().to_vec()).unwrap();
            let index = body.rsplit_once('-').unwrap().1;
            assert_eq!(view.tag(), Some("TagA"), "{body}");
            assert_eq!(view.keys(), [format!("key-{index}")], "{body}");
            assert!(view.delivery_attempt() >= 1, "{body}");
            let seen = got.entry(body).or_default();
            *seen += 1;
            if *seen == 1 {
                last_new = Instant::now();
            }
            consumer.ack(&view).await.unwrap();
        }
    }
    consumer.shutdown().await.unwrap();
    got
}

/// The bodies that came more than once.
fn duplicates(got: &BTreeMap<String, usize>) -> Vec<&String> {
    got.iter()
        .filter(|(_, n)| **n > 1)
        .map(|(b, _)| b)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_producer_and_simple_consumer() {
    let tern = Tern::start().await;
    tern.create_topic("sdk-rust", 4, MessageType::Normal).await;
    let access = tern.access();
    let sent = send(&access, "sdk-rust", "rust", 50).await;
    let got = consume(
        &access,
        "sdk-rust",
        "rust-group",
        Duration::from_secs(30),
        32,
        |n| n >= 50,
    )
    .await;
    let got_set: BTreeSet<String> = got.keys().cloned().collect();
    assert_eq!(got_set, sent, "broker log:\n{}", tern.log());
    assert_eq!(duplicates(&got), Vec::<&String>::new());
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_two_groups_each_get_every_message() {
    let tern = Tern::start().await;
    tern.create_topic("sdk-rust-fanout", 4, MessageType::Normal)
        .await;
    let access = tern.access();
    let sent = send(&access, "sdk-rust-fanout", "signup", 40).await;
    let idle = Duration::from_secs(30);
    let (email, sms) = tokio::join!(
        consume(&access, "sdk-rust-fanout", "email", idle, 32, |n| n >= 40),
        consume(&access, "sdk-rust-fanout", "sms", idle, 32, |n| n >= 40),
    );
    for (group, got) in [("email", &email), ("sms", &sms)] {
        let got_set: BTreeSet<String> = got.keys().cloned().collect();
        assert_eq!(got_set, sent, "group {group}");
        assert_eq!(duplicates(got), Vec::<&String>::new(), "group {group}");
    }
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_members_of_one_group_share_the_messages() {
    let tern = Tern::start().await;
    tern.create_topic("sdk-rust-jobs", 4, MessageType::Normal)
        .await;
    let access = tern.access();
    let sent = send(&access, "sdk-rust-jobs", "job", 60).await;
    // Small batches; each member stops when nothing new came for a while.
    let idle = Duration::from_secs(12);
    let (a, b) = tokio::join!(
        consume(&access, "sdk-rust-jobs", "workers", idle, 4, |_| false),
        consume(&access, "sdk-rust-jobs", "workers", idle, 4, |_| false),
    );
    assert!(
        !a.is_empty() && !b.is_empty(),
        "a {} b {}",
        a.len(),
        b.len()
    );
    let both: Vec<&String> = a.keys().filter(|k| b.contains_key(*k)).collect();
    assert!(both.is_empty(), "delivered to both members: {both:?}");
    let all: BTreeSet<String> = a.keys().chain(b.keys()).cloned().collect();
    assert_eq!(all, sent);
    assert_eq!(duplicates(&a), Vec::<&String>::new());
    assert_eq!(duplicates(&b), Vec::<&String>::new());
    tern.stop().await;
}
