//! The official Apache RocketMQ Java SDK (Maven
//! `org.apache.rocketmq:rocketmq-client-java`) against a real
//! `tern standalone` process: its producer sends, its simple consumer
//! receives and acks, and its push consumer consumes, each message exactly
//! once.
//!
//! `scripts/test` builds `tests/sdk/java/` (SDK version pinned by its
//! pom.xml) into a cached jar with its dependencies and sets
//! `TERN_JAVA_SDK_JAR` to it; without it this test says so and does not run.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::Standalone;

fn java_jar() -> Option<String> {
    let jar = std::env::var("TERN_JAVA_SDK_JAR").ok();
    if jar.is_none() {
        eprintln!("TERN_JAVA_SDK_JAR is not set (scripts/test sets it): Java SDK test not run");
    }
    jar
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
