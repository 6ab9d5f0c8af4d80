//! The official Apache RocketMQ Node.js SDK (npm `rocketmq-client-nodejs`)
//! against a real `tern standalone` process: its producer sends, its simple
//! consumer receives and acks, each message exactly once; delayed messages
//! arrive on time.
//!
//! `scripts/test` installs the SDK (pinned by `tests/sdk/node/package.json`)
//! into a cached directory and sets `TERN_NODE_SDK_DIR` to it; without it
//! this test says so and does not run.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::path::Path;
use std::process::Command;

use sdk_support::{MessageType, Standalone};

#[test]
fn node_producer_and_simple_consumer() {
    let Ok(sdk_dir) = std::env::var("TERN_NODE_SDK_DIR") else {
        eprintln!("TERN_NODE_SDK_DIR is not set (scripts/test sets it): Node.js SDK test not run");
        return;
    };
    let node = std::env::var("TERN_NODE").unwrap_or_else(|_| "node".to_owned());
    let tern = Standalone::start();
    tern.create_topic("sdk-node", 4);

    // The script stays in the source tree; `require` finds the SDK through
    // NODE_PATH, which Node consults after the script's own directories.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/node/simple.js");
    tern.run_client(
        "node SDK",
        Command::new(&node)
            .env("NODE_PATH", Path::new(&sdk_dir).join("node_modules"))
            .args([script, &tern.listen, "sdk-node", "node-group", "50"]),
        "received 50 duplicates 0 missing 0",
    );
    tern.stop();
}

#[test]
fn node_delayed_messages_arrive_on_time() {
    let Ok(sdk_dir) = std::env::var("TERN_NODE_SDK_DIR") else {
        eprintln!("TERN_NODE_SDK_DIR is not set (scripts/test sets it): Node.js SDK test not run");
        return;
    };
    let node = std::env::var("TERN_NODE").unwrap_or_else(|_| "node".to_owned());
    let tern = Standalone::start();
    tern.create_typed("sdk-node-delay", 2, MessageType::Delay);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/node/delay.js");
    tern.run_client(
        "node SDK (delay)",
        Command::new(&node)
            .env("NODE_PATH", Path::new(&sdk_dir).join("node_modules"))
            .args([
                script,
                &tern.listen,
                "sdk-node-delay",
                "node-delay",
                "30",
                "1000",
            ]),
        "received 30 duplicates 0 missing 0 wrong 0",
    );
    tern.stop();
}
