//! The command line: the `tern` command, its global flags and its
//! subcommands. The flags of each subcommand, their defaults and their
//! environment variables are declared with it (`server`, `admin`).
//!
//! This module only describes and parses arguments; the commands themselves
//! live in their own modules.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Long help of `tern standalone`.
const STANDALONE_LONG_ABOUT: &str = "Run a single-node Tern broker in the foreground.\n\n\
    Opens the data directory (store, topic and group registry, consumption state), creating it \
    if needed and running crash recovery over whatever a previous run left there, then logs \
    what it found (a line with the message `store open`). It binds --listen (a line \
    `listening` gives the address) and serves the RocketMQ 5 gRPC messaging service and \
    Tern's admin service there, in plaintext HTTP/2, until SIGTERM or Ctrl-C. It then stops \
    accepting connections, lets calls in flight finish, flushes and closes everything \
    (`store closed`) and exits with status 0.\n\n\
    It takes the settings of `tern broker`, the same way: the flags, then their TERN_* \
    variables, then the --config file (the broker's format), then the defaults shown (all \
    listed in docs/configuration.md). The cluster settings are not taken: a standalone broker \
    registers with no name server, so routes name it only. --nameservers, --cluster and \
    --heartbeat-interval-secs are unknown here, their variables are not read, and a \
    configuration file setting `nameservers`, `cluster` or `heartbeat_interval_secs` is \
    refused; use `tern broker` to join a cluster.";

/// The `tern` command line.
#[derive(Debug, Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: a message broker for Apache RocketMQ 5 gRPC clients",
    long_about = "Tern is a message broker that speaks the gRPC protocol of the Apache \
                  RocketMQ 5 SDKs, with a Kubernetes operator to run it.\n\n\
                  `tern standalone` runs a single-node broker: it opens (and recovers) a data \
                  directory and serves the RocketMQ 5 gRPC messaging service and Tern's admin \
                  service on one address.\n\n\
                  Logs go to standard error. Their level is set with RUST_LOG (default: info), \
                  for example RUST_LOG=debug or RUST_LOG=tern_store=debug,info."
)]
pub struct Cli {
    /// Format of the log lines written to standard error.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "TERN_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `tern`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a single-node Tern broker in the foreground
    #[command(long_about = STANDALONE_LONG_ABOUT)]
    Standalone(Box<StandaloneArgs>),

    /// `tern nameserver` and `tern broker`: the processes of a cluster.
    #[command(flatten)]
    Server(crate::server::ServerCommand),

    /// Administration and everyday use against a running Tern.
    #[command(flatten)]
    Admin(crate::admin::AdminCommand),

    /// Generate load (produce, consume or end to end) and report
    /// throughput, latency and CPU per message
    #[command(long_about = crate::bench::LONG_ABOUT)]
    Bench(Box<crate::bench::BenchArgs>),

    /// Print the version of this build
    #[command(long_about = "Print the version of this build (the same as `tern --version`).")]
    Version,
}

/// Arguments of `tern standalone`: the settings of `tern broker` (flags,
/// `TERN_*` variables, `--config` file) but the cluster ones.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    #[command(flatten)]
    pub node: crate::server::node::NodeArgs,
}

/// Format of the log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn standalone_flags_parse() {
        let cli = Cli::try_parse_from([
            "tern",
            "standalone",
            "--data-dir",
            "/tmp/d",
            "--listen",
            "[::1]:9000",
            "--flush",
            "sync",
            "--log-format",
            "json",
            "--store-max-body-bytes",
            "77",
            "--transaction-default-resolution",
            "commit",
        ])
        .unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        let Command::Standalone(args) = cli.command else {
            panic!("expected standalone, got {:?}", cli.command);
        };
        assert_eq!(args.node.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(args.node.listen.as_deref(), Some("[::1]:9000"));
        assert_eq!(args.node.flush, Some(crate::server::node::Flush::Sync));
        assert_eq!(args.node.store_max_body_bytes, Some(77));
        assert_eq!(
            args.node.transaction_default_resolution,
            Some(tern_broker::txn::Resolution::Commit)
        );
    }

    /// The cluster flags are `tern broker`'s only.
    #[test]
    fn standalone_has_no_cluster_flags() {
        for flag in [
            ["--nameservers", "ns:9876"],
            ["--cluster", "c"],
            ["--heartbeat-interval-secs", "5"],
        ] {
            let err =
                Cli::try_parse_from(["tern", "standalone"].into_iter().chain(flag)).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::UnknownArgument,
                "{flag:?}"
            );
            assert!(Cli::try_parse_from(["tern", "broker"].into_iter().chain(flag)).is_ok());
        }
    }
}
