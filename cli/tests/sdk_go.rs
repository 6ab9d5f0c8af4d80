//! The official Apache RocketMQ Go SDK (Go module
//! `github.com/apache/rocketmq-clients/golang/v5`) against a real
//! `tern standalone` process: its producer sends, its simple consumer
//! receives and acks, each message exactly once; FIFO messages are
//! acknowledged in send order per message group through redeliveries;
//! delayed messages arrive on time; SQL92 subscriptions get exactly the
//! matching messages. (Its transactions are tested in `sdk_txn.rs`.)
//!
//! `scripts/test` builds `tests/sdk/go/` (SDK version pinned by its go.mod
//! and go.sum) into a cached binary and sets `TERN_GO_SDK_BIN` to it;
//! without it these tests say so and do not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead. The
//! program's scenario is chosen by `TERN_GO_SCENARIO` (none: send and
//! receive).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::{MessageType, Standalone};

/// The Go SDK program, or `None` to skip (see [`sdk_support::sdk`]).
#[track_caller]
fn go_sdk(what: &str) -> Option<String> {
    sdk_support::sdk("TERN_GO_SDK_BIN", &format!("Go {what} test"))
}

/// The Go SDK program running `scenario` with `args`.
fn scenario(bin: &str, scenario: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args).env("TERN_GO_SCENARIO", scenario);
    cmd
}

#[test]
fn go_producer_and_simple_consumer() {
    let Some(bin) = go_sdk("SDK") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_topic("sdk-go", 4);

    tern.run_client(
        "go SDK",
        Command::new(&bin).args([&tern.listen, "sdk-go", "go-group", "50"]),
        "received 50 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn go_fifo_order_per_message_group_with_retries() {
    let Some(bin) = go_sdk("FIFO") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_typed("sdk-go-fifo", 4, MessageType::Fifo);
    tern.cli(&["group", "create", "go-fifo", "--fifo"]);
    // 20 message groups of 25: 25 of the 500 (one or two in every group) are
    // left unacknowledged once and come back after 3 s.
    tern.run_client(
        "go SDK (FIFO)",
        &mut scenario(
            &bin,
            "fifo",
            &[&tern.listen, "sdk-go-fifo", "go-fifo", "20", "25"],
        ),
        "fifo ok true",
    );
    tern.stop();
}

#[test]
fn go_delayed_messages_arrive_on_time() {
    let Some(bin) = go_sdk("delay") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_typed("sdk-go-delay", 2, MessageType::Delay);
    // 30 messages due 3-5 s after they are sent; the timer's precision is
    // 1 s (its default).
    tern.run_client(
        "go SDK (delay)",
        &mut scenario(
            &bin,
            "delay",
            &[&tern.listen, "sdk-go-delay", "go-delay", "30", "1000"],
        ),
        "received 30 duplicates 0 missing 0 wrong 0",
    );
    tern.stop();
}

#[test]
fn go_simple_consumer_with_sql_filters() {
    let Some(bin) = go_sdk("SQL filter") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_topic("sdk-go-sql", 2);
    tern.run_client(
        "go SDK (SQL filters)",
        &mut scenario(&bin, "sql", &[&tern.listen, "sdk-go-sql", "40"]),
        "sql filters ok true refused true",
    );
    tern.stop();
}
