//! `tern nameserver`: a name server in the foreground.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tern_nameserver::{Nameserver, NameserverConfig};
use tracing::info;

use super::Shutdown;
use super::addr::parse_listen;
use super::config::{NameserverFile, check_address, load};

/// Default gRPC listen address of `tern nameserver` (RocketMQ's name
/// server port).
pub const DEFAULT_NAMESERVER_LISTEN: &str = "127.0.0.1:9876";

/// Arguments of `tern nameserver`. Every one is optional: unset, it comes
/// from the environment variable named, then the `--config` file, then the
/// default.
#[derive(Debug, Args)]
pub struct NameserverArgs {
    /// TOML file with any of the settings below, keys named like the flags
    /// with `_` (`broker_expiry_secs`), the --tls-* ones in a `[tls]` table
    /// (`mode`); unknown keys are refused
    #[arg(long, value_name = "FILE", env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address the gRPC services listen on; port 0 picks a free one (the
    /// `listening` log line gives it) [default: 127.0.0.1:9876]
    #[arg(long, value_name = "HOST:PORT", env = "TERN_LISTEN", value_parser = parse_listen)]
    pub listen: Option<String>,

    /// Seconds without a heartbeat after which a broker and its routes are
    /// dropped [default: 120]
    #[arg(long, value_name = "SECS", env = "TERN_BROKER_EXPIRY_SECS")]
    pub broker_expiry_secs: Option<u64>,

    /// HTTP address serving /metrics, /healthz and /readyz [default: off]
    #[arg(long, value_name = "HOST:PORT", env = "TERN_METRICS_LISTEN", value_parser = parse_listen)]
    pub metrics_listen: Option<String>,

    #[command(flatten)]
    pub tls: super::tls::TlsArgs,
}

/// Long help of `tern nameserver`.
pub(crate) const LONG_ABOUT: &str = "Run a Tern name server in the foreground.\n\n\
    Brokers started with --nameservers register their topics and groups here and heartbeat; \
    a broker silent for --broker-expiry-secs is dropped with its routes. RocketMQ 5 clients \
    may use the name server's address as their access point: it answers routes merged across \
    all live brokers, the settings handshake and assignments, and sends messages to the \
    brokers. Name servers share nothing: run several and give brokers all of them. The \
    registry is in memory; after a restart brokers register again at their next heartbeat.\n\n\
    Logs `listening` with the address once serving; on SIGTERM or Ctrl-C it stops accepting, \
    lets calls finish and exits 0.\n\n\
    Settings come from the flags, then their TERN_* variables, then the --config file, then \
    the defaults shown (all listed in docs/configuration.md).";

/// The settings of a name server, resolved.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub cfg: NameserverConfig,
    pub listen: String,
    pub metrics_listen: Option<String>,
}

impl NameserverArgs {
    /// Flags and environment over the file over the defaults.
    pub(crate) fn resolve(self) -> anyhow::Result<Resolved> {
        let file: NameserverFile = load(self.config.as_deref())?;
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_NAMESERVER_LISTEN.to_owned());
        check_address("listen", &listen)?;
        let mut cfg = NameserverConfig::default();
        if let Some(secs) = self.broker_expiry_secs.or(file.broker_expiry_secs) {
            anyhow::ensure!(secs > 0, "broker_expiry_secs must be at least 1");
            cfg.broker_expiry = Duration::from_secs(secs);
        }
        cfg.tls = self.tls.resolve(&file.tls)?;
        let metrics_listen = self.metrics_listen.or(file.metrics_listen);
        if let Some(m) = &metrics_listen {
            check_address("metrics_listen", m)?;
        }
        Ok(Resolved {
            cfg,
            listen,
            metrics_listen,
        })
    }
}

/// Runs `tern nameserver` to completion.
pub(crate) fn run(args: NameserverArgs) -> anyhow::Result<()> {
    let resolved = args.resolve()?;
    super::block_on(serve(resolved))
}

async fn serve(r: Resolved) -> anyhow::Result<()> {
    let mut shutdown = Shutdown::listen()?;
    let nameserver = Nameserver::new(r.cfg.clone()).context("setting up TLS")?;
    let listener = tern_tls::bind(&r.listen)
        .await
        .with_context(|| format!("binding {}", r.listen))?;
    let metrics = match &r.metrics_listen {
        Some(m) => Some(
            tokio::net::TcpListener::bind(m)
                .await
                .with_context(|| format!("binding {m} for HTTP"))?,
        ),
        None => None,
    };
    let address = listener.local_addr().context("reading the bound address")?;
    info!(%address, broker_expiry = ?r.cfg.broker_expiry, "listening");
    info!("waiting for SIGTERM or Ctrl-C");
    let signal_received = async move {
        let signal = shutdown.recv().await;
        info!(signal, "shutdown signal received; finishing calls");
    };
    nameserver
        .serve_with_http(listener, metrics, signal_received)
        .await
        .context("serving the name server")?;
    info!("name server stopped");
    Ok(())
}
