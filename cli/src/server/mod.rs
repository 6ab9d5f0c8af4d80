//! `tern nameserver` and `tern broker`: the separate processes of a
//! cluster. Each reads its settings from flags, `TERN_*` variables and an
//! optional TOML file (`config`), serves until SIGTERM or Ctrl-C, and
//! shuts down gracefully. `tern standalone` takes the broker's settings
//! but the cluster ones ([`node`]) and serves with the broker's loop.

mod addr;
pub(crate) mod auth;
pub(crate) mod broker;
mod config;
pub(crate) mod nameserver;
pub(crate) mod node;
pub(crate) mod tls;

use anyhow::Context as _;
use clap::Subcommand;
use tokio::signal::unix::{SignalKind, signal};

use broker::BrokerArgs;
use nameserver::NameserverArgs;

/// The server subcommands.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run a Tern name server in the foreground
    #[command(long_about = nameserver::LONG_ABOUT)]
    Nameserver(NameserverArgs),

    /// Run one Tern broker of a cluster in the foreground
    #[command(long_about = broker::LONG_ABOUT)]
    Broker(Box<BrokerArgs>),
}

pub(crate) fn run(command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::Nameserver(args) => nameserver::run(args),
        ServerCommand::Broker(args) => broker::run(*args),
    }
}

/// Runs `fut` on a new multi-threaded tokio runtime.
///
/// The runtime's LIFO slot is off (when tokio's unstable options are
/// compiled in, as `.cargo/config.toml` does). With it, a task woken by
/// another runs next on the same worker: each gRPC answer woke its HTTP/2
/// connection task, which then wrote and flushed that one answer at once,
/// one `writev` per answer. Without it the connection task queues behind
/// the other requests' tasks and writes their answers together: under 64
/// sends in flight, about a tenth of the `writev` calls and a quarter less
/// broker CPU per message (docs/benchmarks.md).
pub(crate) fn block_on<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder
        .build()
        .context("building the tokio runtime")?
        .block_on(fut)
}

/// The signals that stop a server process.
#[derive(Debug)]
pub(crate) struct Shutdown {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Starts listening for SIGTERM and SIGINT (Ctrl-C). From here on these
    /// signals no longer end the process by themselves.
    pub(crate) fn listen() -> anyhow::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// Waits for the first signal and returns its name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
