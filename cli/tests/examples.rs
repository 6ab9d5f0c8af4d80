//! The runnable examples in `examples/` (Python, official RocketMQ 5 SDK)
//! against a real `tern standalone`: each must exit 0 and say `OK:`.
//!
//! `scripts/test` sets `TERN_PYTHON` to a virtualenv holding the SDK;
//! without it this test says so and does not run. Under `TERN_REQUIRE_SDKS=1`
//! (set by `scripts/test`) a missing SDK fails the test instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod sdk_support;

use std::process::Command;

use sdk_support::Standalone;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

fn example(name: &str) {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", &format!("example {name}")) else {
        return;
    };
    let tern = Standalone::start();
    for topic in ["orders", "thumbnails", "signups"] {
        tern.create_topic(topic, 1);
    }
    tern.run_client(
        name,
        Command::new(&python)
            .current_dir(EXAMPLES)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args([name, "--endpoint", &tern.listen]),
        "OK: ",
    );
    tern.stop();
}

#[test]
fn order_service_catches_up_after_the_consumer_returns() {
    example("order_service.py");
}

#[test]
fn burst_is_drained_at_the_consumers_pace() {
    example("burst.py");
}

#[test]
fn signup_is_fanned_out_to_email_and_sms() {
    example("signup_fanout.py");
}
