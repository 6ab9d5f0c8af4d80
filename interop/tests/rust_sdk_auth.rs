//! Credentials with the official Rust SDK (crates.io `rocketmq`) against
//! a real `tern standalone` that checks requests: signed with the right
//! access key and secret key (it dates its signatures in RFC 3339, unlike
//! the other SDKs), it sends and receives; with a wrong secret key, an
//! unknown access key or none, its sends fail and the broker's audit log
//! says why.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageBuilder;
use rocketmq::{Producer, SimpleConsumer};
use tern_protocol::admin::MessageType;

mod support;

use support::{Tern, client_option};

const ROOT: &str = "root";
const SECRET: &str = "root-secret-key";

fn signed_option(access: &str, key: &str, secret: &str) -> ClientOption {
    let mut option = client_option(access);
    if !key.is_empty() {
        option.set_access_key(key);
        option.set_secret_key(secret);
    }
    option
}

/// Sends one message as `key`; the error text when it fails.
async fn send_one(access: &str, key: &str, secret: &str, body: &str) -> Result<(), String> {
    let mut option = ProducerOption::default();
    option.set_topics(vec!["auth-rust"]);
    let mut producer =
        Producer::new(option, signed_option(access, key, secret)).map_err(|e| e.to_string())?;
    producer.start().await.map_err(|e| e.to_string())?;
    let message = MessageBuilder::builder()
        .set_topic("auth-rust")
        .set_tag("TagA")
        .set_body(body.as_bytes().to_vec())
        .build()
        .unwrap();
    let sent = producer
        .send(message)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    let _ = producer.shutdown().await;
    sent
}

fn audit_lines(tern: &Tern, reason: &str) -> usize {
    tern.log()
        .lines()
        .filter(|l| l.contains("tern::audit") && l.contains(reason))
        .count()
}

// Two workers: restart_with blocks one while the SDK's connections close
// on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_credentials() {
    let mut tern = Tern::start().await;
    tern.create_topic("auth-rust", 2, MessageType::Normal).await;
    tern.restart_with(&[
        "--auth-enabled",
        "--auth-bootstrap-access-key",
        ROOT,
        "--auth-bootstrap-secret-key",
        SECRET,
    ]);
    let access = tern.access();
    send_one(&access, ROOT, SECRET, "signed")
        .await
        .unwrap_or_else(|e| panic!("signed send failed: {e}\n{}", tern.log()));
    // Received back with the same credentials.
    let mut option = SimpleConsumerOption::default();
    option.set_topics(vec!["auth-rust"]);
    option.set_consumer_group("auth-rust-group");
    let mut consumer = SimpleConsumer::new(option, signed_option(&access, ROOT, SECRET)).unwrap();
    consumer.start().await.unwrap();
    let expression = FilterExpression::new(FilterType::Tag, "*");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.is_empty() && std::time::Instant::now() < deadline {
        for m in consumer
            .receive("auth-rust".to_owned(), &expression)
            .await
            .unwrap_or_default()
        {
            got.push(String::from_utf8_lossy(m.body()).into_owned());
            consumer.ack(&m).await.unwrap();
        }
    }
    assert_eq!(got, ["signed"]);
    let _ = consumer.shutdown().await;

    for (case, key, secret, reason) in [
        (
            "a wrong secret key",
            ROOT,
            "not-the-secret",
            "does not match",
        ),
        (
            "an unknown access key",
            "nobody",
            SECRET,
            "unknown access key",
        ),
        ("no credentials", "", "", "no credentials"),
    ] {
        let before = audit_lines(&tern, reason);
        let sent = tokio::time::timeout(
            Duration::from_secs(30),
            send_one(&access, key, secret, case),
        )
        .await;
        assert!(!matches!(sent, Ok(Ok(()))), "a send with {case} succeeded");
        assert!(
            audit_lines(&tern, reason) > before,
            "{case}: no audit line saying `{reason}`:\n{}",
            tern.log()
        );
    }
    tern.stop().await;
}
