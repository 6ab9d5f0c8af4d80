//! `tern broker`: one broker of a cluster, in the foreground; and the
//! serving loop `tern standalone` shares with it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use tern_broker::{Broker, BrokerConfig};
use tracing::info;

use super::Shutdown;
use super::addr::parse_listen;
use super::config::check_address;
use super::node::NodeArgs;

/// Arguments of `tern broker`: those of a node (shared with
/// `tern standalone`) and the cluster ones. Every one is optional: unset,
/// it comes from the environment variable named, then the `--config` file,
/// then the default.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// The cluster the broker registers in [default: tern]
    #[arg(long, value_name = "NAME", env = "TERN_CLUSTER", help_heading = CLUSTER)]
    pub cluster: Option<String>,

    /// Name servers to register with, comma separated; none: the broker's
    /// routes name only itself [default: none]
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        env = "TERN_NAMESERVERS",
        value_delimiter = ',',
        value_parser = parse_listen,
        help_heading = CLUSTER
    )]
    pub nameservers: Option<Vec<String>>,

    /// Seconds between heartbeats to each name server [default: 30]
    #[arg(
        long,
        value_name = "SECS",
        env = "TERN_HEARTBEAT_INTERVAL_SECS",
        help_heading = CLUSTER
    )]
    pub heartbeat_interval_secs: Option<u64>,

    /// Dial the name servers with TLS, checking their certificate against
    /// --nameservers-ca-file or the system's CA bundle (implied by the two
    /// options below) [default: plaintext]
    #[arg(long, env = "TERN_NAMESERVERS_TLS", help_heading = CLUSTER)]
    pub nameservers_tls: bool,

    /// PEM CA certificates the name servers' certificates are checked
    /// against; implies --nameservers-tls
    #[arg(
        long,
        value_name = "FILE",
        env = "TERN_NAMESERVERS_CA_FILE",
        help_heading = CLUSTER
    )]
    pub nameservers_ca_file: Option<std::path::PathBuf>,

    /// Dial the name servers with TLS without checking their certificate
    /// (for generated ones); implies --nameservers-tls
    #[arg(
        long,
        env = "TERN_NAMESERVERS_INSECURE_SKIP_VERIFY",
        help_heading = CLUSTER,
        conflicts_with = "nameservers_ca_file"
    )]
    pub nameservers_insecure_skip_verify: bool,

    /// This broker's id in its replicated group (with --replicas)
    /// [default: not replicated]
    #[arg(long, value_name = "ID", env = "TERN_REPLICA_ID", help_heading = REPLICATION)]
    pub replica_id: Option<u64>,

    /// Every replica of the group, this one included, as ID=HOST:PORT of
    /// their replication ports, comma separated (e.g.
    /// 0=b-0:9877,1=b-1:9877,2=b-2:9877). The replicas elect a leader, which
    /// takes the sends; a send is answered once a majority of the replicas
    /// hold it. Normal and FIFO messages only, no name servers yet
    /// [default: none]
    #[arg(
        long,
        value_name = "ID=HOST:PORT,...",
        env = "TERN_REPLICAS",
        value_delimiter = ',',
        help_heading = REPLICATION
    )]
    pub replicas: Option<Vec<String>>,

    /// Where this replica's replication port listens [default: its own
    /// address in --replicas]
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "TERN_REPLICATION_LISTEN",
        value_parser = parse_listen,
        help_heading = REPLICATION
    )]
    pub replication_listen: Option<String>,

    /// Dial the other replicas with TLS, checking their certificates
    /// against --replication-ca-file or the system's CA bundle (implied by
    /// the two options below); their replication ports serve TLS as their
    /// --tls-mode says [default: plaintext]
    #[arg(long, env = "TERN_REPLICATION_TLS", help_heading = REPLICATION)]
    pub replication_tls: bool,

    /// PEM CA certificates the other replicas' certificates are checked
    /// against; implies --replication-tls
    #[arg(
        long,
        value_name = "FILE",
        env = "TERN_REPLICATION_CA_FILE",
        help_heading = REPLICATION
    )]
    pub replication_ca_file: Option<std::path::PathBuf>,

    /// Dial the other replicas with TLS without checking their
    /// certificates (generated ones): encrypted, not authenticated;
    /// implies --replication-tls
    #[arg(
        long,
        env = "TERN_REPLICATION_INSECURE_SKIP_VERIFY",
        help_heading = REPLICATION,
        conflicts_with = "replication_ca_file"
    )]
    pub replication_insecure_skip_verify: bool,
}

/// The `--help` heading of the replication settings.
const REPLICATION: &str = "Replication options (not taken by `tern standalone`)";

/// The `--help` heading of the settings `tern standalone` does not take.
const CLUSTER: &str = "Cluster options (not taken by `tern standalone`)";

/// Long help of `tern broker`.
pub(crate) const LONG_ABOUT: &str = "Run one Tern broker of a cluster in the foreground.\n\n\
    Opens (and recovers) the data directory, binds --listen and serves the RocketMQ 5 gRPC \
    messaging service and Tern's admin service there (TLS and plaintext on the same port by \
    default: see the TLS options). With --nameservers \
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
        let file = self.node.load_file()?;
        let (mut cfg, listen) = self.node.resolve(&file)?;
        if let Some(cluster) = self.cluster.or(file.cluster) {
            cfg.cluster = cluster;
        }
        if let Some(ns) = self.nameservers.or(file.nameservers) {
            for n in &ns {
                check_address("nameservers", n)?;
            }
            cfg.nameservers = ns;
        }
        if let Some(secs) = self
            .heartbeat_interval_secs
            .or(file.heartbeat_interval_secs)
        {
            anyhow::ensure!(secs > 0, "heartbeat_interval_secs must be at least 1");
            cfg.heartbeat_interval = Duration::from_secs(secs);
        }
        cfg.nameserver_tls = dial_tls(
            "nameservers",
            self.nameservers_tls || file.nameservers_tls.unwrap_or(false),
            self.nameservers_ca_file
                .or_else(|| file.nameservers_ca_file.clone()),
            self.nameservers_insecure_skip_verify
                || file.nameservers_insecure_skip_verify.unwrap_or(false),
        )?;
        let tls = dial_tls(
            "replication",
            self.replication_tls || file.replication_tls.unwrap_or(false),
            self.replication_ca_file
                .or_else(|| file.replication_ca_file.clone()),
            self.replication_insecure_skip_verify
                || file.replication_insecure_skip_verify.unwrap_or(false),
        )?;
        cfg.replication = replication(
            self.replica_id.or(file.replica_id),
            self.replicas.or(file.replicas),
            self.replication_listen.or(file.replication_listen),
        )?;
        match &mut cfg.replication {
            Some(r) => r.tls = tls,
            None => anyhow::ensure!(
                tls.is_none(),
                "replication_tls, replication_ca_file and replication_insecure_skip_verify need replicas"
            ),
        }
        Ok((cfg, listen))
    }
}

/// How peers of kind `what` (`nameservers`, `replication`) are dialled:
/// TLS when asked for or implied by a CA file or skip-verify, else `None`.
fn dial_tls(
    what: &str,
    tls: bool,
    ca_file: Option<std::path::PathBuf>,
    insecure: bool,
) -> anyhow::Result<Option<tern_tls::ClientTlsConfig>> {
    anyhow::ensure!(
        !(insecure && ca_file.is_some()),
        "{what}_ca_file and {what}_insecure_skip_verify exclude each other"
    );
    Ok(
        (tls || insecure || ca_file.is_some()).then(|| tern_tls::ClientTlsConfig {
            ca_file,
            insecure_skip_verify: insecure,
            ..tern_tls::ClientTlsConfig::default()
        }),
    )
}

/// The replication settings from `replica_id`, `replicas` and
/// `replication_listen`: none, or all that a replica needs.
fn replication(
    id: Option<u64>,
    replicas: Option<Vec<String>>,
    listen: Option<String>,
) -> anyhow::Result<Option<tern_broker::replica::ReplicationConfig>> {
    let (id, replicas) = match (id, replicas) {
        (None, None) => {
            anyhow::ensure!(
                listen.is_none(),
                "replication_listen needs replicas and replica_id"
            );
            return Ok(None);
        }
        (Some(id), Some(replicas)) => (id, replicas),
        (None, Some(_)) => anyhow::bail!("replicas needs replica_id: this broker's id among them"),
        (Some(_), None) => {
            anyhow::bail!("replica_id needs replicas: every replica as ID=HOST:PORT")
        }
    };
    let mut map = std::collections::BTreeMap::new();
    for r in &replicas {
        let (rid, address) = r
            .split_once('=')
            .with_context(|| format!("replicas: {r:?} is not ID=HOST:PORT"))?;
        let rid: u64 = rid
            .trim()
            .parse()
            .with_context(|| format!("replicas: {rid:?} in {r:?} is not a replica id"))?;
        check_address("replicas", address.trim())?;
        anyhow::ensure!(
            map.insert(rid, address.trim().to_owned()).is_none(),
            "replicas: replica {rid} is named twice"
        );
    }
    anyhow::ensure!(
        map.contains_key(&id),
        "replica_id {id} is not among the replicas ({})",
        replicas.join(",")
    );
    Ok(Some(tern_broker::replica::ReplicationConfig {
        id,
        replicas: map,
        listen,
        tls: None,
    }))
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

    let listener = match tern_tls::bind(&listen).await {
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
