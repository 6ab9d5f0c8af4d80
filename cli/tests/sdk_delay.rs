//! Delayed messages with the official Apache RocketMQ Python SDK (PyPI
//! `rocketmq-python-client`) against a real `tern standalone` process that
//! is killed with SIGKILL between send and delivery: every message arrives
//! exactly once, not before its delivery time and within the precision
//! after it; a recalled one never arrives; a delay beyond the maximum is
//! refused.
//!
//! `scripts/test` installs the SDK and sets `TERN_PYTHON`; without it this
//! test says so and does not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::{MessageType, Standalone};

#[test]
fn python_delayed_messages_survive_kill_9() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python delay test") else {
        return;
    };
    let mut tern = Standalone::start();
    tern.create_typed("sdk-delay", 2, MessageType::Delay);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_delay.py");
    tern.run_client(
        "python SDK (delayed send)",
        Command::new(&python).args([script, "send", &tern.listen, "sdk-delay", "40"]),
        "sent 40 recalled True refused True",
    );
    // Before anything is due (the earliest is 8 s after the send began).
    tern.kill9_restart();
    tern.run_client(
        "python SDK (delayed receive)",
        Command::new(&python).args([script, "receive", &tern.listen, "sdk-delay", "40", "1000"]),
        "delay ok True",
    );
    tern.stop();
}
