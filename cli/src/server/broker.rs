//! `tern broker`: one broker of a cluster, in the foreground; and the
//! serving loop `tern standalone` shares with it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use tern_broker::{Broker, BrokerConfig};
use tern_store::StoreConfig;
use tracing::info;

use super::Shutdown;
use super::config::{BrokerFile, check_address, load};
use crate::args::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, Flush, parse_listen};

/// Arguments of `tern broker`. Every one is optional: unset, it comes from
/// the environment variable named, then the `--config` file, then the
/// default.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// TOML file with any of the settings below, keys named like the flags
    /// with `_` (`data_dir`), the --store-* ones in a `[store]` table
    /// (`segment_bytes`), the --limits-* ones in `[limits]`, the
    /// --transaction-* ones in `[transaction]`; unknown keys are refused
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

    /// The cluster the broker registers in [default: tern]
    #[arg(long, value_name = "NAME", env = "TERN_CLUSTER")]
    pub cluster: Option<String>,

    /// Name servers to register with, comma separated; none: the broker's
    /// routes name only itself [default: none]
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        env = "TERN_NAMESERVERS",
        value_delimiter = ',',
        value_parser = parse_listen
    )]
    pub nameservers: Option<Vec<String>>,

    /// When appended messages are forced to disk: `async` in the
    /// background, `sync` before a send is acknowledged [default: async]
    #[arg(long, value_enum, env = "TERN_FLUSH")]
    pub flush: Option<Flush>,

    /// HTTP address serving /metrics, /healthz and /readyz [default: off]
    #[arg(long, value_name = "HOST:PORT", env = "TERN_METRICS_LISTEN", value_parser = parse_listen)]
    pub metrics_listen: Option<String>,

    /// Seconds between heartbeats to each name server [default: 30]
    #[arg(long, value_name = "SECS", env = "TERN_HEARTBEAT_INTERVAL_SECS")]
    pub heartbeat_interval_secs: Option<u64>,

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
}

/// Long help of `tern broker`.
pub(crate) const LONG_ABOUT: &str = "Run one Tern broker of a cluster in the foreground.\n\n\
    Opens (and recovers) the data directory, binds --listen and serves the RocketMQ 5 gRPC \
    messaging service and Tern's admin service there, in plaintext HTTP/2. With --nameservers \
    it registers its topics and groups with every name server, heartbeats, registers again when \
    they change, and answers routes across all brokers. Logs `store open`, then `listening` \
    with the address; on SIGTERM or Ctrl-C it stops accepting, lets calls finish, flushes and \
    closes (`store closed`) and exits 0.\n\n\
    Settings come from the flags, then their TERN_* variables, then the --config file, then \
    the defaults shown (all listed in docs/configuration.md).";

impl BrokerArgs {
    /// The broker's settings and its listen address: flags and environment
    /// over the file over the defaults.
    pub(crate) fn resolve(self) -> anyhow::Result<(BrokerConfig, String)> {
        let file: BrokerFile = load(self.config.as_deref())?;
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        check_address("listen", &listen)?;

        let mut store = StoreConfig::new(data_dir);
        if let Some(flush) = self.flush.map(Into::into).or(file.flush) {
            store.flush = flush;
        }
        let s = file.store;
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
        if let Some(name) = self.name.or(file.name) {
            anyhow::ensure!(
                !name.trim().is_empty(),
                "name: a broker name cannot be empty"
            );
            cfg.name = name;
        }
        if let Some(cluster) = self.cluster.or(file.cluster) {
            cfg.cluster = cluster;
        }
        cfg.advertised_address = self.advertised_address.or(file.advertised_address);
        if let Some(a) = &cfg.advertised_address {
            check_address("advertised_address", a)?;
        }
        if let Some(ns) = self.nameservers.or(file.nameservers) {
            for n in &ns {
                check_address("nameservers", n)?;
            }
            cfg.nameservers = ns;
        }
        cfg.metrics_listen = self.metrics_listen.or(file.metrics_listen);
        if let Some(m) = &cfg.metrics_listen {
            check_address("metrics_listen", m)?;
        }
        if let Some(secs) = self
            .heartbeat_interval_secs
            .or(file.heartbeat_interval_secs)
        {
            anyhow::ensure!(secs > 0, "heartbeat_interval_secs must be at least 1");
            cfg.heartbeat_interval = Duration::from_secs(secs);
        }
        let limits = file.limits;
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
        let delay = &file.delay;
        if let Some(ms) = self.delay_precision_ms.or(delay.precision_ms) {
            cfg.delay.precision = Duration::from_millis(ms);
        }
        if let Some(secs) = self.delay_max_secs.or(delay.max_secs) {
            cfg.delay.max_delay = Duration::from_secs(secs);
        }
        cfg.delay.validate()?;
        let txn = file.transaction;
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
        Ok((cfg, listen))
    }
}

/// Runs `tern broker` to completion.
pub(crate) fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let (cfg, listen) = args.resolve()?;
    super::block_on(serve(cfg, listen))
}

/// Opens the broker of `cfg`, serves it on `listen` until SIGTERM or
/// Ctrl-C, then closes it. Logs `store open`, `listening` (with the
/// address) and `store closed`, which tests and operators wait for.
pub(crate) async fn serve(cfg: BrokerConfig, listen: String) -> anyhow::Result<()> {
    // Listen for signals before opening the store, so a SIGTERM that arrives
    // during recovery leads to a clean close rather than the default action.
    let mut shutdown = Shutdown::listen()?;

    let data_dir = cfg.store.dir.clone();
    info!(
        data_dir = %data_dir.display(),
        flush = ?cfg.store.flush,
        broker = %cfg.name,
        nameservers = ?cfg.nameservers,
        "opening store"
    );
    let started = Instant::now();
    let broker = tokio::task::spawn_blocking(move || Broker::open(cfg))
        .await
        .context("the store-opening task failed")?
        .with_context(|| format!("opening the broker in {}", data_dir.display()))?;
    let open_time = started.elapsed();

    let stats = broker.store().stats();
    info!(
        data_dir = %data_dir.display(),
        segments = stats.segments,
        min_offset = stats.min_offset,
        max_offset = stats.max_offset,
        flushed_offset = stats.flushed_offset,
        queues = stats.queues,
        topics = broker.registry().topics().len(),
        groups = broker.registry().groups().len(),
        recovery = ?stats.recovery,
        ?open_time,
        "store open"
    );

    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            // Close what was opened before giving up.
            let closed = tokio::task::spawn_blocking(move || broker.close()).await;
            if let Ok(Ok(())) = closed {
                info!("store closed");
            }
            return Err(e).with_context(|| format!("binding {listen}"));
        }
    };
    let address = listener.local_addr().context("reading the bound address")?;
    info!(%address, "listening");
    info!("waiting for SIGTERM or Ctrl-C");

    let stopped_at = std::sync::Arc::new(std::sync::OnceLock::new());
    let stopping = std::sync::Arc::clone(&stopped_at);
    let signal_received = async move {
        let signal = shutdown.recv().await;
        let _ = stopping.set(Instant::now());
        info!(
            signal,
            "shutdown signal received; finishing calls, flushing and closing the store"
        );
    };
    broker
        .serve(listener, signal_received)
        .await
        .context("serving the broker")?;
    let close_time = stopped_at.get().map(Instant::elapsed);
    info!(?close_time, "store closed");
    Ok(())
}
