//! Tests of the whole command line: `tern` parsed as a user types it, then
//! resolved into the configs the servers run with (flags, `TERN_*`
//! variables, `--config` files and defaults). They sit above `args` and
//! `server` so that neither has to know the other's internals.

use std::time::Duration;

use clap::{CommandFactory as _, Parser as _};
use tern_broker::BrokerConfig;
use tern_nameserver::NameserverConfig;
use tern_store::StoreConfig;

use crate::args::{Cli, Command};
use crate::server::broker::BrokerArgs;
use crate::server::node::{self, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use crate::server::{ServerCommand, nameserver};

fn help(sub: &str) -> String {
    let mut cmd = Cli::command();
    cmd.find_subcommand_mut(sub)
        .unwrap()
        .render_long_help()
        .to_string()
}

/// The defaults shown in `--help` are the ones the code applies.
#[test]
fn help_shows_the_defaults_in_force() {
    let b = BrokerConfig::new(StoreConfig::new(DEFAULT_DATA_DIR));
    let text = help("broker");
    for shown in [
        format!("[default: {DEFAULT_DATA_DIR}]"),
        format!("[default: {DEFAULT_LISTEN}]"),
        format!("[default: {}]", b.name),
        format!("[default: {}]", b.cluster),
        format!("[default: {}]", b.heartbeat_interval.as_secs()),
        format!("[default: {}]", b.store.segment_size),
        format!("[default: {}]", b.store.retention.as_secs() / 3600),
        format!("[default: {}]", b.store.disk_high_water),
        format!("[default: {}]", b.store.disk_hard_limit),
        format!("[default: {}]", b.store.max_body_bytes),
        format!("[default: {}]", b.max_unflushed_bytes),
        format!("[default: {}]", b.max_pending_sends),
        format!("[default: {}]", b.auto_renew_invisible.as_secs()),
        format!("[default: {}]", b.dedup.window.as_secs()),
        format!("[default: {}]", b.dedup.max_entries),
        format!("[default: {}]", b.limits.max_topics),
        format!("[default: {}]", b.limits.max_groups),
        format!("[default: {}]", b.delay.precision.as_millis()),
        format!("[default: {}]", b.delay.max_delay.as_secs()),
        format!("[default: {}]", b.delay.stage_max_bytes),
    ] {
        assert!(text.contains(&shown), "{shown} missing from:\n{text}");
    }
    assert!(b.nameservers.is_empty() && b.metrics_listen.is_none());
    // `tern standalone` shows the same node settings, and no cluster ones.
    let standalone = help("standalone");
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("--")) {
        let cluster = [
            "--cluster",
            "--nameservers",
            "--heartbeat-interval-secs",
            "--replica-id",
            "--replicas",
            "--replication-listen",
            "--replication-tls",
            "--replication-ca-file",
            "--replication-insecure-skip-verify",
        ]
        .iter()
        .any(|f| line.starts_with(f));
        assert_eq!(
            standalone.contains(line),
            !cluster,
            "{line} in standalone help:\n{standalone}"
        );
    }
    let text = help("nameserver");
    let n = NameserverConfig::default();
    for shown in [
        format!("[default: {}]", nameserver::DEFAULT_NAMESERVER_LISTEN),
        format!("[default: {}]", n.broker_expiry.as_secs()),
    ] {
        assert!(text.contains(&shown), "{shown} missing from:\n{text}");
    }
}

fn broker_args(args: &[&str]) -> BrokerArgs {
    let cli = Cli::try_parse_from(["tern", "broker"].iter().chain(args)).unwrap();
    match cli.command {
        Command::Server(ServerCommand::Broker(a)) => *a,
        other => panic!("broker expected, got {other:?}"),
    }
}

#[test]
fn flags_beat_the_file_which_beats_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1111\"\nname = \"from-file\"\n\
         nameservers = [\"ns-a:9876\"]\nheartbeat_interval_secs = 7\n\
         [store]\nretention_hours = 5\nmax_body_bytes = 1000\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (cfg, listen) = broker_args(&["--config", path, "--name", "from-flag"])
        .resolve()
        .unwrap();
    assert_eq!(listen, "127.0.0.1:1111");
    assert_eq!(cfg.name, "from-flag");
    assert_eq!(cfg.nameservers, ["ns-a:9876"]);
    assert_eq!(cfg.heartbeat_interval, Duration::from_secs(7));
    assert_eq!(cfg.store.retention, Duration::from_secs(5 * 3600));
    assert_eq!(cfg.store.max_body_bytes, 1000);
    assert_eq!(cfg.cluster, "tern");

    let (cfg, listen) = broker_args(&[
        "--config",
        path,
        "--listen",
        "127.0.0.1:2222",
        "--nameservers",
        "a:1,b:2",
        "--store-max-body-bytes",
        "5",
    ])
    .resolve()
    .unwrap();
    assert_eq!(listen, "127.0.0.1:2222");
    assert_eq!(cfg.nameservers, ["a:1", "b:2"]);
    assert_eq!(cfg.store.max_body_bytes, 5);
    assert_eq!(cfg.name, "from-file");
}

fn standalone_args(args: &[&str]) -> node::NodeArgs {
    let cli = Cli::try_parse_from(["tern", "standalone"].iter().chain(args)).unwrap();
    match cli.command {
        Command::Standalone(a) => a.node,
        other => panic!("standalone expected, got {other:?}"),
    }
}

#[test]
fn standalone_reads_the_broker_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("standalone.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1111\"\nname = \"from-file\"\nflush = \"sync\"\n\
         advertised_address = \"tern.example:8081\"\n\
         [store]\nmax_body_bytes = 1000\nretention_hours = 5\n\
         [limits]\nmax_pending_sends = 7\ndedup_window_secs = 60\n\
         [delay]\nprecision_ms = 500\nstage_max_bytes = 1048576\n\
         [transaction]\nmax_checks = 4\ndefault_resolution = \"commit\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (cfg, listen) = standalone_args(&["--config", path])
        .resolve_standalone()
        .unwrap();
    assert_eq!(listen, "127.0.0.1:1111");
    assert_eq!(cfg.name, "from-file");
    assert_eq!(cfg.store.flush, tern_store::FlushPolicy::Sync);
    assert_eq!(cfg.advertised_address.as_deref(), Some("tern.example:8081"));
    assert_eq!(cfg.store.max_body_bytes, 1000);
    assert_eq!(cfg.store.retention, Duration::from_secs(5 * 3600));
    assert_eq!(cfg.max_pending_sends, 7);
    assert_eq!(cfg.dedup.window, Duration::from_secs(60));
    assert_eq!(cfg.delay.precision, Duration::from_millis(500));
    assert_eq!(cfg.delay.stage_max_bytes, 1 << 20);
    assert_eq!(cfg.transaction.max_checks, 4);
    assert_eq!(
        cfg.transaction.default_resolution,
        tern_broker::txn::Resolution::Commit
    );
    assert!(cfg.nameservers.is_empty());

    let (cfg, listen) = standalone_args(&[
        "--config",
        path,
        "--listen",
        "127.0.0.1:2222",
        "--name",
        "from-flag",
        "--store-max-body-bytes",
        "5",
        "--transaction-max-checks",
        "9",
    ])
    .resolve_standalone()
    .unwrap();
    assert_eq!(listen, "127.0.0.1:2222");
    assert_eq!(cfg.name, "from-flag");
    assert_eq!(cfg.store.max_body_bytes, 5);
    assert_eq!(cfg.transaction.max_checks, 9);
    assert_eq!(cfg.dedup.window, Duration::from_secs(60));
}

#[test]
fn standalone_refuses_cluster_keys_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("standalone.toml");
    for (text, key) in [
        ("nameservers = [\"ns-a:9876\"]\n", "nameservers"),
        ("cluster = \"prod\"\n", "cluster"),
        ("heartbeat_interval_secs = 5\n", "heartbeat_interval_secs"),
    ] {
        std::fs::write(&file, text).unwrap();
        let err = standalone_args(&["--config", file.to_str().unwrap()])
            .resolve_standalone()
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(key) && msg.contains("tern broker"),
            "{text}: {msg}"
        );
        // The same file is a valid broker file.
        broker_args(&["--config", file.to_str().unwrap()])
            .resolve()
            .unwrap();
    }
}

#[test]
fn dedup_limits_come_from_the_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    std::fs::write(
        &file,
        "[limits]\ndedup_window_secs = 60\ndedup_max_entries = 10\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (cfg, _) = broker_args(&["--config", path]).resolve().unwrap();
    assert_eq!(cfg.dedup.window, Duration::from_secs(60));
    assert_eq!(cfg.dedup.max_entries, 10);
    let (cfg, _) = broker_args(&["--config", path, "--limits-dedup-window-secs", "0"])
        .resolve()
        .unwrap();
    assert!(!cfg.dedup.enabled());
    assert_eq!(cfg.dedup.max_entries, 10);
}

#[test]
fn registry_limits_come_from_the_file_and_flags() {
    let (cfg, _) = broker_args(&[]).resolve().unwrap();
    assert_eq!(cfg.limits, tern_broker::RegistryLimits::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, "[limits]\nmax_topics = 50\nmax_groups = 7\n").unwrap();
    let path = file.to_str().unwrap();
    let (cfg, _) = broker_args(&["--config", path]).resolve().unwrap();
    assert_eq!((cfg.limits.max_topics, cfg.limits.max_groups), (50, 7));
    let (cfg, _) = broker_args(&["--config", path, "--limits-max-groups", "9"])
        .resolve()
        .unwrap();
    assert_eq!((cfg.limits.max_topics, cfg.limits.max_groups), (50, 9));
    let cfg = standalone_args(&["--limits-max-topics", "3"])
        .resolve_standalone()
        .unwrap()
        .0;
    assert_eq!(cfg.limits.max_topics, 3);
    for flag in ["--limits-max-topics", "--limits-max-groups"] {
        let err = broker_args(&[flag, "0"]).resolve().unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{flag}: {err}");
    }
}

#[test]
fn bad_values_in_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    for (text, needle) in [
        ("nameservers = [\"no-port\"]\n", "nameservers"),
        ("heartbeat_interval_secs = 0\n", "heartbeat_interval_secs"),
        ("lsiten = \"h:1\"\n", "lsiten"),
    ] {
        std::fs::write(&file, text).unwrap();
        let err = broker_args(&["--config", file.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(needle), "{text}: {msg}");
    }
}
