//! The official Apache RocketMQ Python SDK (PyPI `rocketmq-python-client`)
//! against a real `tern standalone` process: its producer sends, its simple
//! consumer receives and acks, each message exactly once.
//!
//! `scripts/test` installs the SDK into a cached virtualenv and sets
//! `TERN_PYTHON` to its interpreter; without it this test says so and does
//! not run.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use tern_harness::TernProcess;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, MessageType, Permission, Topic};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn create_topic(port: u16, name: &str, queues: i32) {
    let mut admin = TernAdminClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    admin
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: name.to_owned(),
                queue_count: queues,
                message_type: MessageType::Normal as i32,
                permission: Permission::ReadWrite as i32,
            }),
        })
        .await
        .unwrap();
}

#[test]
fn python_producer_and_simple_consumer() {
    let Ok(python) = std::env::var("TERN_PYTHON") else {
        eprintln!("TERN_PYTHON is not set (scripts/test sets it): Python SDK test not run");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut tern =
        TernProcess::standalone_with(TERN, tmp.path().join("data"), &["--listen", &listen])
            .unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(port, "sdk-python", 4));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_simple.py");
    let out = Command::new(&python)
        .args([script, &listen, "sdk-python", "py-group", "50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python SDK run failed ({}):\n{stdout}\n{stderr}\nbroker log:\n{}",
        out.status,
        tern.log().unwrap_or_default()
    );
    assert!(
        stdout.contains("received 50 duplicates 0 missing 0"),
        "{stdout}"
    );
    tern.terminate().unwrap();
}
