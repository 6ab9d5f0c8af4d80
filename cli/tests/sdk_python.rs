//! The official Apache RocketMQ Python SDK (PyPI `rocketmq-python-client`)
//! against a real `tern standalone` process: its producer sends, its simple
//! consumer receives and acks, each message exactly once.
//!
//! `scripts/test` installs the SDK into a cached virtualenv and sets
//! `TERN_PYTHON` to its interpreter; without it this test says so and does
//! not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::Standalone;

#[test]
fn python_producer_and_simple_consumer() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python SDK test") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_topic("sdk-python", 4);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_simple.py");
    tern.run_client(
        "python SDK",
        Command::new(&python).args([script, &tern.listen, "sdk-python", "py-group", "50"]),
        "received 50 duplicates 0 missing 0",
    );
    tern.stop();
}
