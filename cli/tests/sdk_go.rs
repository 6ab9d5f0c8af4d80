//! The official Apache RocketMQ Go SDK (Go module
//! `github.com/apache/rocketmq-clients/golang/v5`) against a real
//! `tern standalone` process: its producer sends, its simple consumer
//! receives and acks, each message exactly once.
//!
//! `scripts/test` builds `tests/sdk/go/` (SDK version pinned by its go.mod
//! and go.sum) into a cached binary and sets `TERN_GO_SDK_BIN` to it;
//! without it this test says so and does not run.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::Standalone;

#[test]
fn go_producer_and_simple_consumer() {
    let Ok(bin) = std::env::var("TERN_GO_SDK_BIN") else {
        eprintln!("TERN_GO_SDK_BIN is not set (scripts/test sets it): Go SDK test not run");
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
