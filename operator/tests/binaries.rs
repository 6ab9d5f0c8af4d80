//! The two binaries, run as processes: `tern-operator --help` and `crdgen`.

use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

#[test]
fn the_operator_explains_itself() {
    let out = Command::new(env!("CARGO_BIN_EXE_tern-operator"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    for needle in [
        "BrokerCluster",
        "Topic",
        "ConsumerGroup",
        "--leader-election",
        "--admin-endpoint",
        "--http-listen",
    ] {
        assert!(
            text.contains(needle),
            "--help does not mention {needle}:\n{text}"
        );
    }
}

#[test]
fn crdgen_prints_every_crd_and_writes_one_file_each() {
    let out = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .collect();
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "brokerclusters.tern.dev",
            "topics.tern.dev",
            "consumergroups.tern.dev",
            "ternusers.tern.dev"
        ]
    );
    for (doc, (_, crd)) in docs.iter().zip(tern_operator::crd::all()) {
        assert_eq!(doc, &serde_json::to_value(crd).expect("serializes"));
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let target = dir.path().join("a");
    let status = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .arg(&target)
        .status()
        .expect("runs");
    assert!(status.success());
    let mut files: Vec<String> = std::fs::read_dir(&target)
        .expect("the folder was created")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "brokerclusters.tern.dev.yaml",
            "consumergroups.tern.dev.yaml",
            "ternusers.tern.dev.yaml",
            "topics.tern.dev.yaml"
        ]
    );
}
