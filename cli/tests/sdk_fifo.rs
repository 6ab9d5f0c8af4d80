//! FIFO delivery per message group with the official Apache RocketMQ
//! Python SDK (PyPI `rocketmq-python-client`) against a real
//! `tern standalone` process: a FIFO topic and FIFO consumer groups made
//! with the `tern` CLI; 10,000 messages in 100 message groups sent by the
//! SDK's FIFO producer; two SimpleConsumers that leave about 5% of the
//! messages unacknowledged the first time (so they come back after their
//! invisibility) and check that each group's messages arrive and are
//! acknowledged exactly in send order, none lost, none early; and a group
//! whose head runs out of attempts, which goes to the dead-letter topic
//! while the rest of its group follows.
//!
//! `scripts/test` installs the SDK into a cached virtualenv and sets
//! `TERN_PYTHON` to its interpreter; without it this test says so and does
//! not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// Shared with the other `sdk_*` tests; this one uses only part of it.
#[allow(dead_code)]
mod sdk_support;

use std::process::Command;

use sdk_support::Standalone;

#[test]
fn python_fifo_order_per_message_group_with_retries() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python FIFO test") else {
        return;
    };
    let tern = Standalone::start();
    for (topic, queues) in [("sdk-fifo", "4"), ("sdk-fifo-dlq", "1")] {
        tern.cli(&[
            "topic",
            "create",
            topic,
            "--queues",
            queues,
            "--message-type",
            "fifo",
        ]);
    }
    tern.cli(&["group", "create", "py-fifo", "--fifo"]);
    tern.cli(&[
        "group",
        "create",
        "py-fifo-dlq",
        "--fifo",
        "--max-retries",
        "1",
    ]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_fifo.py");
    tern.run_client(
        "python SDK (FIFO)",
        Command::new(&python).args([
            script,
            &tern.listen,
            "sdk-fifo",
            "py-fifo",
            "100",
            "100",
            "sdk-fifo-dlq",
            "py-fifo-dlq",
        ]),
        "fifo ok True dlq ok True",
    );
    tern.stop();
}
