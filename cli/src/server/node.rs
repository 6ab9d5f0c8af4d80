//! The settings of one broker node, shared by `tern broker` and
//! `tern standalone`: every flag, `TERN_*` variable and configuration-file
//! key except the cluster ones (name servers, cluster name, heartbeats),
//! which only `tern broker` takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tern_broker::BrokerConfig;
use tern_store::StoreConfig;

use super::addr::parse_listen;
use super::config::{BrokerFile, check_address, load};

/// Default data directory of `tern standalone` and `tern broker`.
pub const DEFAULT_DATA_DIR: &str = "./tern-data";

/// Default gRPC listen address of `tern standalone` and `tern broker`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// The flush policy, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Flush {
    /// Flush in the background; a crash may lose the last unflushed writes.
    Async,
    /// Flush before a write is acknowledged.
    Sync,
}

impl From<Flush> for tern_store::FlushPolicy {
    fn from(flush: Flush) -> Self {
        match flush {
            Flush::Async => Self::Async,
            Flush::Sync => Self::Sync,
        }
    }
}

/// Arguments of a broker node. Every one is optional: unset, it comes from
/// the environment variable named, then the `--config` file, then the
/// default.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// TOML file with any of the settings below, keys named like the flags
    /// with `_` (`data_dir`), the --store-* ones in a `[store]` table
    /// (`segment_bytes`), the --limits-* ones in `[limits]`, the --delay-*
    /// ones in `[delay]`, the --transaction-* ones in `[transaction]`, the
    /// --tls-* ones in `[tls]`, the --auth-* ones in `[auth]`; unknown
    /// keys are refused
    #[arg(long, value_name = "FILE", env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,

    /// Directory of the commit log, queues, registry and consumption state;
    /// created if missing [default: ./tern-data]
    #[arg(long, value_name = "DIR", env = "TERN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address the gRPC services listen on; port 0 picks a free one (the
    /// `listening` log line gives it) [default: 127.0.0.1:8081]
    #[arg(long, value_name = "HOST:PORT", env = "TERN_LISTEN", value_parser = parse_listen)]
    pub listen: Option<String>,

    /// Address clients are told to use for this broker (in routes and name
    /// server registrations) [default: the bound listen address]
    #[arg(long, value_name = "HOST:PORT", env = "TERN_ADVERTISED_ADDRESS", value_parser = parse_listen)]
    pub advertised_address: Option<String>,

    /// The broker's name in routes, unique in the cluster [default: tern-0]
    #[arg(long, value_name = "NAME", env = "TERN_NAME")]
    pub name: Option<String>,

    /// When appended messages are forced to disk: `async` in the
    /// background, `sync` before a send is acknowledged [default: async]
    #[arg(long, value_enum, env = "TERN_FLUSH")]
    pub flush: Option<Flush>,

    /// HTTP address serving /metrics, /healthz and /readyz [default: off]
    #[arg(long, value_name = "HOST:PORT", env = "TERN_METRICS_LISTEN", value_parser = parse_listen)]
    pub metrics_listen: Option<String>,

    /// Capacity of one commit-log segment file [default: 1073741824]
    #[arg(long, value_name = "BYTES", env = "TERN_STORE_SEGMENT_BYTES")]
    pub store_segment_bytes: Option<u64>,

    /// Segments older than this are deleted [default: 72]
    #[arg(long, value_name = "HOURS", env = "TERN_STORE_RETENTION_HOURS")]
    pub store_retention_hours: Option<u64>,

    /// Share of the disk in use above which the oldest segments are deleted
    /// early [default: 0.85]
    #[arg(long, value_name = "RATIO", env = "TERN_STORE_DISK_HIGH_WATER")]
    pub store_disk_high_water: Option<f64>,

    /// Share of the disk in use at which sends are refused [default: 0.95]
    #[arg(long, value_name = "RATIO", env = "TERN_STORE_DISK_HARD_LIMIT")]
    pub store_disk_hard_limit: Option<f64>,

    /// Largest message body accepted [default: 4194304]
    #[arg(long, value_name = "BYTES", env = "TERN_STORE_MAX_BODY_BYTES")]
    pub store_max_body_bytes: Option<usize>,

    /// Sends are refused with TOO_MANY_REQUESTS while this many commit-log
    /// bytes wait for an fsync [default: 268435456]
    #[arg(long, value_name = "BYTES", env = "TERN_LIMITS_MAX_UNFLUSHED_BYTES")]
    pub limits_max_unflushed_bytes: Option<u64>,

    /// Sends are refused with TOO_MANY_REQUESTS while this many sends wait
    /// for the store [default: 10000]
    #[arg(long, value_name = "N", env = "TERN_LIMITS_MAX_PENDING_SENDS")]
    pub limits_max_pending_sends: Option<usize>,

    /// Connections the gRPC port takes at once; past it a new connection
    /// is closed as soon as it is accepted [default: 10000]
    #[arg(long, value_name = "N", env = "TERN_LIMITS_MAX_CONNECTIONS")]
    pub limits_max_connections: Option<usize>,

    /// Invisibility of messages received by push consumers (auto_renew),
    /// renewed while the consumer is connected [default: 60]
    #[arg(long, value_name = "SECS", env = "TERN_LIMITS_AUTO_RENEW_SECS")]
    pub limits_auto_renew_secs: Option<u64>,

    /// A repeated send of a message id (same topic) within this many
    /// seconds is answered with the original result, not stored again; 0
    /// turns de-duplication off [default: 300]
    #[arg(long, value_name = "SECS", env = "TERN_LIMITS_DEDUP_WINDOW_SECS")]
    pub limits_dedup_window_secs: Option<u64>,

    /// Most message ids send de-duplication remembers (about 220 bytes
    /// each); past it the oldest are forgotten first; 0 turns it off
    /// [default: 1000000]
    #[arg(long, value_name = "N", env = "TERN_LIMITS_DEDUP_MAX_ENTRIES")]
    pub limits_dedup_max_entries: Option<usize>,

    /// Most topics the broker holds; creating one more is refused (the
    /// dead-letter topics it makes itself are not) [default: 100000]
    #[arg(long, value_name = "N", env = "TERN_LIMITS_MAX_TOPICS")]
    pub limits_max_topics: Option<usize>,

    /// Most consumer groups the broker holds; a consumer naming a new
    /// group past it is refused with FORBIDDEN, existing groups are served
    /// [default: 10000]
    #[arg(long, value_name = "N", env = "TERN_LIMITS_MAX_GROUPS")]
    pub limits_max_groups: Option<usize>,

    /// Granularity of delayed delivery, in milliseconds (100 to 60000): a
    /// delayed message is delivered at the first multiple of it at or
    /// after its delivery time [default: 1000]
    #[arg(long, value_name = "MS", env = "TERN_DELAY_PRECISION_MS")]
    pub delay_precision_ms: Option<u64>,

    /// Longest delay a producer may ask for, in seconds; parked messages
    /// keep their commit-log segments on disk until delivered
    /// [default: 604800]
    #[arg(long, value_name = "SECS", env = "TERN_DELAY_MAX_SECS")]
    pub delay_max_secs: Option<u64>,

    /// Most bytes of delayed messages read into memory ahead of their
    /// time (those due within 2 s); the rest is read when due
    /// [default: 536870912]
    #[arg(long, value_name = "BYTES", env = "TERN_DELAY_STAGE_MAX_BYTES")]
    pub delay_stage_max_bytes: Option<u64>,

    /// Seconds from a half message's store time to its first check (the
    /// broker asks a live producer of its topic to commit or roll it
    /// back) [default: 6]
    #[arg(long, value_name = "SECS", env = "TERN_TRANSACTION_FIRST_CHECK_SECS")]
    pub transaction_first_check_secs: Option<u64>,

    /// Seconds between checks of an unresolved half message [default: 30]
    #[arg(
        long,
        value_name = "SECS",
        env = "TERN_TRANSACTION_CHECK_INTERVAL_SECS"
    )]
    pub transaction_check_interval_secs: Option<u64>,

    /// Checks of a half message before the default resolution ends it
    /// [default: 15]
    #[arg(long, value_name = "N", env = "TERN_TRANSACTION_MAX_CHECKS")]
    pub transaction_max_checks: Option<u32>,

    /// How a half message ends after its last unanswered check: `commit`
    /// or `rollback` [default: rollback]
    #[arg(
        long,
        value_name = "RESOLUTION",
        env = "TERN_TRANSACTION_DEFAULT_RESOLUTION"
    )]
    pub transaction_default_resolution: Option<tern_broker::txn::Resolution>,

    #[command(flatten)]
    pub tls: super::tls::TlsArgs,

    #[command(flatten)]
    pub auth: super::auth::AuthArgs,
}

impl NodeArgs {
    /// Reads the `--config` file, or the empty configuration without one.
    pub(crate) fn load_file(&self) -> anyhow::Result<BrokerFile> {
        load(self.config.as_deref())
    }

    /// The settings of a standalone broker and its listen address: flags
    /// and environment over the `--config` file over the defaults. A file
    /// with cluster keys is refused: a standalone broker joins no cluster,
    /// and ignoring them would hide a mistake.
    pub(crate) fn resolve_standalone(self) -> anyhow::Result<(BrokerConfig, String)> {
        let file = self.load_file()?;
        if let Some(path) = &self.config {
            let cluster_keys = file.cluster_keys();
            anyhow::ensure!(
                cluster_keys.is_empty(),
                "in the configuration file {}: {} only apply to `tern broker`; \
                 `tern standalone` registers with no name server",
                path.display(),
                cluster_keys.join(", ")
            );
        }
        self.resolve(&file)
    }

    /// The node's settings and its listen address: flags and environment
    /// over `file` over the defaults. The cluster keys of `file` are left
    /// to the caller: the configuration returned has the cluster defaults.
    pub(crate) fn resolve(self, file: &BrokerFile) -> anyhow::Result<(BrokerConfig, String)> {
        let data_dir = self
            .data_dir
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let listen = self
            .listen
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        check_address("listen", &listen)?;

        let mut store = StoreConfig::new(data_dir);
        if let Some(flush) = self.flush.map(Into::into).or(file.flush) {
            store.flush = flush;
        }
        let s = &file.store;
        if let Some(v) = self.store_segment_bytes.or(s.segment_bytes) {
            store.segment_size = v;
        }
        if let Some(h) = self.store_retention_hours.or(s.retention_hours) {
            store.retention = Duration::from_secs(h.saturating_mul(3600));
        }
        if let Some(v) = self.store_disk_high_water.or(s.disk_high_water) {
            store.disk_high_water = v;
        }
        if let Some(v) = self.store_disk_hard_limit.or(s.disk_hard_limit) {
            store.disk_hard_limit = v;
        }
        if let Some(v) = self.store_max_body_bytes.or(s.max_body_bytes) {
            store.max_body_bytes = v;
        }

        let mut cfg = BrokerConfig::new(store);
        if let Some(name) = self.name.or_else(|| file.name.clone()) {
            anyhow::ensure!(
                !name.trim().is_empty(),
                "name: a broker name cannot be empty"
            );
            cfg.name = name;
        }
        cfg.advertised_address = self
            .advertised_address
            .or_else(|| file.advertised_address.clone());
        if let Some(a) = &cfg.advertised_address {
            check_address("advertised_address", a)?;
        }
        cfg.metrics_listen = self.metrics_listen.or_else(|| file.metrics_listen.clone());
        if let Some(m) = &cfg.metrics_listen {
            check_address("metrics_listen", m)?;
        }
        let limits = &file.limits;
        if let Some(v) = self
            .limits_max_unflushed_bytes
            .or(limits.max_unflushed_bytes)
        {
            cfg.max_unflushed_bytes = v;
        }
        if let Some(v) = self.limits_max_pending_sends.or(limits.max_pending_sends) {
            anyhow::ensure!(v > 0, "max_pending_sends must be at least 1");
            cfg.max_pending_sends = v;
        }
        if let Some(n) = self.limits_max_connections.or(limits.max_connections) {
            anyhow::ensure!(n > 0, "max_connections must be at least 1");
            cfg.max_connections = n;
        }
        if let Some(secs) = self.limits_auto_renew_secs.or(limits.auto_renew_secs) {
            anyhow::ensure!(secs > 0, "auto_renew_secs must be at least 1");
            cfg.auto_renew_invisible = Duration::from_secs(secs);
        }
        if let Some(secs) = self.limits_dedup_window_secs.or(limits.dedup_window_secs) {
            cfg.dedup.window = Duration::from_secs(secs);
        }
        if let Some(n) = self.limits_dedup_max_entries.or(limits.dedup_max_entries) {
            cfg.dedup.max_entries = n;
        }
        if let Some(n) = self.limits_max_topics.or(limits.max_topics) {
            anyhow::ensure!(n > 0, "max_topics must be at least 1");
            cfg.limits.max_topics = n;
        }
        if let Some(n) = self.limits_max_groups.or(limits.max_groups) {
            anyhow::ensure!(n > 0, "max_groups must be at least 1");
            cfg.limits.max_groups = n;
        }
        let delay = &file.delay;
        if let Some(ms) = self.delay_precision_ms.or(delay.precision_ms) {
            cfg.delay.precision = Duration::from_millis(ms);
        }
        if let Some(secs) = self.delay_max_secs.or(delay.max_secs) {
            cfg.delay.max_delay = Duration::from_secs(secs);
        }
        if let Some(bytes) = self.delay_stage_max_bytes.or(delay.stage_max_bytes) {
            cfg.delay.stage_max_bytes = bytes;
        }
        cfg.delay.validate()?;
        let txn = &file.transaction;
        if let Some(secs) = self.transaction_first_check_secs.or(txn.first_check_secs) {
            cfg.transaction.first_check = Duration::from_secs(secs);
        }
        if let Some(secs) = self
            .transaction_check_interval_secs
            .or(txn.check_interval_secs)
        {
            anyhow::ensure!(secs > 0, "check_interval_secs must be at least 1");
            cfg.transaction.check_interval = Duration::from_secs(secs);
        }
        if let Some(n) = self.transaction_max_checks.or(txn.max_checks) {
            cfg.transaction.max_checks = n;
        }
        if let Some(r) = self
            .transaction_default_resolution
            .or(txn.default_resolution)
        {
            cfg.transaction.default_resolution = r;
        }
        cfg.tls = self.tls.resolve(&file.tls)?;
        cfg.auth = self.auth.resolve(&file.auth)?;
        Ok((cfg, listen))
    }
}
