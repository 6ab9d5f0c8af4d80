//! The official Apache RocketMQ Java SDK (Maven
//! `org.apache.rocketmq:rocketmq-client-java`) against a real
//! `tern standalone` process: its producer sends, its simple consumer
//! receives and acks, and its push consumer consumes, each message exactly
//! once; FIFO messages are acknowledged in send order per message group
//! through redeliveries; delayed messages arrive on time; SQL92
//! subscriptions get exactly the matching messages. (Its transactions are
//! tested in `sdk_txn.rs`.)
//!
//! `scripts/test` builds `tests/sdk/java/` (SDK version pinned by its
//! pom.xml) into a cached jar with its dependencies and sets
//! `TERN_JAVA_SDK_JAR` to it; without it these tests say so and do not
//! run. Under `TERN_REQUIRE_SDKS=1` (set by `scripts/test`) a missing SDK
//! fails the test instead. The jar's main class sends and receives; each
//! other scenario is a class of its own (`tern.sdktest.Fifo`, `Delay`,
//! `Sql`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::{MessageType, Standalone};

/// The Java SDK program's jar, or `None` to skip (see [`sdk_support::sdk`]).
#[track_caller]
fn java_jar() -> Option<String> {
    sdk_support::sdk("TERN_JAVA_SDK_JAR", "Java SDK test")
}

/// `java -cp <jar> tern.sdktest.<class> ARGS`: one scenario of the program.
fn scenario(jar: &str, class: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(["-cp", jar, &format!("tern.sdktest.{class}")])
        .args(args);
    cmd
}

#[test]
fn java_producer_and_simple_consumer() {
    let Some(jar) = java_jar() else { return };
    let tern = Standalone::start();
    tern.create_topic("sdk-java", 4);
    tern.run_client(
        "java SDK (simple consumer)",
        Command::new("java").args([
            "-jar",
            &jar,
            "simple",
            &tern.listen,
            "sdk-java",
            "java-group",
            "50",
        ]),
        "received 50 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn java_producer_and_push_consumer() {
    let Some(jar) = java_jar() else { return };
    let tern = Standalone::start();
    tern.create_topic("sdk-java-push", 4);
    tern.run_client(
        "java SDK (push consumer)",
        Command::new("java").args([
            "-jar",
            &jar,
            "push",
            &tern.listen,
            "sdk-java-push",
            "java-push-group",
            "50",
        ]),
        "received 50 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn java_fifo_order_per_message_group_with_retries() {
    let Some(jar) = java_jar() else { return };
    let tern = Standalone::start();
    tern.create_typed("sdk-java-fifo", 4, MessageType::Fifo);
    tern.cli(&["group", "create", "java-fifo", "--fifo"]);
    // 20 message groups of 25, consumed by two SimpleConsumers at once: 25
    // of the 500 (one or two in every group) are left unacknowledged once
    // and come back after 3 s.
    tern.run_client(
        "java SDK (FIFO)",
        &mut scenario(
            &jar,
            "Fifo",
            &[&tern.listen, "sdk-java-fifo", "java-fifo", "20", "25"],
        ),
        "fifo ok true",
    );
    tern.stop();
}

#[test]
fn java_delayed_messages_arrive_on_time() {
    let Some(jar) = java_jar() else { return };
    let tern = Standalone::start();
    tern.create_typed("sdk-java-delay", 2, MessageType::Delay);
    // 30 messages due 3-5 s after they are sent; the timer's precision is
    // 1 s (its default).
    tern.run_client(
        "java SDK (delay)",
        &mut scenario(
            &jar,
            "Delay",
            &[&tern.listen, "sdk-java-delay", "java-delay", "30", "1000"],
        ),
        "received 30 duplicates 0 missing 0 wrong 0",
    );
    tern.stop();
}

#[test]
fn java_simple_consumer_with_sql_filters() {
    let Some(jar) = java_jar() else { return };
    let tern = Standalone::start();
    tern.create_topic("sdk-java-sql", 2);
    tern.run_client(
        "java SDK (SQL filters)",
        &mut scenario(&jar, "Sql", &[&tern.listen, "sdk-java-sql", "40"]),
        "sql filters ok true refused true",
    );
    tern.stop();
}
