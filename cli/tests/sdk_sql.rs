//! SQL92 filters with the official Apache RocketMQ Python SDK (PyPI
//! `rocketmq-python-client`) against a real `tern standalone` process:
//! SimpleConsumers subscribed with `FilterExpression(expr, FilterType.SQL)`
//! receive exactly the messages whose properties match, and a malformed
//! expression is refused with a status naming the problem.
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
fn python_simple_consumer_with_sql_filters() {
    let Some(python) = sdk_support::sdk("TERN_PYTHON", "Python SQL filter test") else {
        return;
    };
    let tern = Standalone::start();
    tern.create_topic("sdk-sql", 2);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_sql.py");
    tern.run_client(
        "python SDK (SQL filters)",
        Command::new(&python).args([script, &tern.listen, "sdk-sql", "40"]),
        "sql filters ok True refused True",
    );
    tern.stop();
}
