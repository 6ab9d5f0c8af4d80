//! The message types of the official Apache RocketMQ Rust SDK (crates.io
//! `rocketmq` 5.0.0) against a real `tern standalone` process:
//! - FIFO: its producer sends messages with a message group to a FIFO
//!   topic; a SimpleConsumer of a FIFO consumer group gets each group's
//!   messages in send order, a later one never while an earlier one is
//!   unacknowledged (one message is left unacknowledged once, so its group
//!   waits for its retry).
//! - Delay: a message with a delivery timestamp is not received before it.
//! - Transaction: a committed half message is received, a rolled-back one
//!   never.
//!
//! Topics and groups are made through the admin API. The SDK's receive
//! fails with MESSAGE_NOT_FOUND when nothing came; the loops retry then.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq::conf::{ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::{MessageBuilder, MessageView};
use rocketmq::model::transaction::{Transaction, TransactionResolution};
use rocketmq::{Producer, SimpleConsumer};
use tern_protocol::admin::MessageType;

mod support;

use support::{Tern, client_option};

fn producer_option(topic: &str) -> ProducerOption {
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic]);
    option
}

async fn consumer(access: &str, topic: &str, group: &str) -> SimpleConsumer {
    let mut option = SimpleConsumerOption::default();
    option.set_topics(vec![topic]);
    option.set_consumer_group(group);
    let mut consumer = SimpleConsumer::new(option, client_option(access)).unwrap();
    consumer.start().await.unwrap();
    consumer
}

/// One receive; nothing (after a short pause) when the broker had nothing.
async fn receive(c: &SimpleConsumer, topic: &str, invisible: Duration) -> Vec<MessageView> {
    let all = FilterExpression::new(FilterType::Tag, "*");
    match c.receive_with(topic, &all, 16, invisible).await {
        Ok(views) => views,
        Err(e) => {
            eprintln!("receive from {topic}: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            Vec::new()
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn body(view: &MessageView) -> String {
    String::from_utf8(view.body().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_fifo_producer_keeps_each_message_group_in_order() {
    const GROUPS: usize = 5;
    const PER_GROUP: usize = 20;
    let tern = Tern::start().await;
    tern.create_topic("rust-fifo", 2, MessageType::Fifo).await;
    tern.create_fifo_group("rust-fifo-readers").await;
    let access = tern.access();

    let mut producer = Producer::new(producer_option("rust-fifo"), client_option(&access)).unwrap();
    producer.start().await.unwrap();
    for seq in 0..PER_GROUP {
        for g in 0..GROUPS {
            let message = MessageBuilder::fifo_message_builder(
                "rust-fifo",
                format!("{g}:{seq}").into_bytes(),
                format!("order-{g}"),
            )
            .build()
            .unwrap();
            let receipt = producer.send(message).await.unwrap();
            assert!(!receipt.message_id().is_empty());
        }
    }
    producer.shutdown().await.unwrap();

    let c = consumer(&access, "rust-fifo", "rust-fifo-readers").await;
    // Per group: the next sequence number to acknowledge.
    let mut next = [0usize; GROUPS];
    let mut received: Vec<(usize, usize, i32)> = Vec::new();
    let mut violations = Vec::new();
    let started = Instant::now();
    while next.iter().any(|&n| n < PER_GROUP) && started.elapsed() < Duration::from_secs(60) {
        for view in receive(&c, "rust-fifo", Duration::from_secs(2)).await {
            let text = body(&view);
            let (g, seq) = text.split_once(':').unwrap();
            let (g, seq): (usize, usize) = (g.parse().unwrap(), seq.parse().unwrap());
            assert_eq!(view.message_group(), Some(format!("order-{g}").as_str()));
            received.push((g, seq, view.delivery_attempt()));
            if seq != next[g] {
                violations.push(format!("group {g}: got {seq} before {} was acked", next[g]));
                continue;
            }
            // Group 3's seventh message is left unacked once: group 3
            // must wait for its retry.
            if g == 3 && seq == 7 && view.delivery_attempt() == 1 {
                continue;
            }
            c.ack(&view).await.unwrap();
            next[g] += 1;
        }
    }
    c.shutdown().await.unwrap();
    assert!(violations.is_empty(), "{violations:?}\n{}", tern.log());
    assert_eq!(next, [PER_GROUP; GROUPS], "not all acked:\n{}", tern.log());
    let retried: Vec<i32> = received
        .iter()
        .filter(|(g, s, _)| (*g, *s) == (3, 7))
        .map(|&(_, _, a)| a)
        .collect();
    assert_eq!(retried, [1, 2]);
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_delay_producer_is_not_received_early() {
    let tern = Tern::start().await;
    tern.create_topic("rust-delay", 1, MessageType::Delay).await;
    let access = tern.access();
    let mut producer =
        Producer::new(producer_option("rust-delay"), client_option(&access)).unwrap();
    producer.start().await.unwrap();
    // The SDK takes (and reports) the delivery time in whole seconds.
    let due_s = now_ms() / 1000 + 4;
    let due = due_s * 1000;
    let message = MessageBuilder::delay_message_builder("rust-delay", b"later".to_vec(), due_s)
        .build()
        .unwrap();
    producer.send(message).await.unwrap();
    producer.shutdown().await.unwrap();

    let c = consumer(&access, "rust-delay", "rust-delay-readers").await;
    let mut got = Vec::new();
    let started = Instant::now();
    while got.is_empty() && started.elapsed() < Duration::from_secs(30) {
        for view in receive(&c, "rust-delay", Duration::from_secs(15)).await {
            got.push((body(&view), now_ms(), view.delivery_timestamp()));
            c.ack(&view).await.unwrap();
        }
    }
    c.shutdown().await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}\n{}", tern.log());
    let (text, at, reported) = &got[0];
    assert_eq!(text, "later");
    assert!(*at >= due, "received {} ms early", due - at);
    assert!(*at < due + 5_000, "received {} ms late", at - due);
    assert_eq!(*reported, Some(due_s));
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_transaction_producer_commit_is_received_rollback_never() {
    let tern = Tern::start().await;
    tern.create_topic("rust-txn", 1, MessageType::Transaction)
        .await;
    let access = tern.access();
    let mut producer = Producer::new_transaction_producer(
        producer_option("rust-txn"),
        client_option(&access),
        // Both are settled explicitly; a check (there should be none)
        // rolls back, so it could not make the test pass.
        Box::new(|_, _| TransactionResolution::ROLLBACK),
    )
    .unwrap();
    producer.start().await.unwrap();
    for (text, commit) in [("kept", true), ("dropped", false)] {
        let message =
            MessageBuilder::transaction_message_builder("rust-txn", text.as_bytes().to_vec())
                .build()
                .unwrap();
        let txn = producer.send_transaction_message(message).await.unwrap();
        assert!(!txn.transaction_id().is_empty());
        if commit {
            txn.commit().await.unwrap();
        } else {
            txn.rollback().await.unwrap();
        }
    }

    let c = consumer(&access, "rust-txn", "rust-txn-readers").await;
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    // Long enough for a wrongly kept half message to be checked (6 s).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        for view in receive(&c, "rust-txn", Duration::from_secs(15)).await {
            *got.entry(body(&view)).or_default() += 1;
            c.ack(&view).await.unwrap();
        }
    }
    c.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
    let want: BTreeMap<String, usize> = [("kept".to_owned(), 1)].into_iter().collect();
    assert_eq!(got, want, "{}", tern.log());
    tern.stop().await;
}
