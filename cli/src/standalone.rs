//! `tern standalone`: a single-node Tern in the foreground.
//!
//! Until the broker crate serves gRPC, this opens the storage engine (which
//! runs crash recovery), reports what it found, waits for SIGTERM or Ctrl-C
//! and closes the store cleanly.
//!
//! Integration tests and operators rely on two log messages: `store open`
//! once the store has opened, and `store closed` once it has been flushed and
//! closed.

use std::time::Instant;

use anyhow::Context as _;
use tern_store::{Store, StoreConfig};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::args::StandaloneArgs;

/// Runs `tern standalone` to completion: returns once the store has been
/// closed after a shutdown signal.
pub(crate) fn run(args: &StandaloneArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &StandaloneArgs) -> anyhow::Result<()> {
    // Listen for signals before opening the store, so a SIGTERM that arrives
    // during recovery leads to a clean close rather than the default action.
    let mut shutdown = Shutdown::listen()?;

    let data_dir = args.data_dir.clone();
    let mut config = StoreConfig::new(data_dir.clone());
    config.flush = args.flush.into();
    info!(
        data_dir = %data_dir.display(),
        flush = ?args.flush,
        "opening store"
    );
    let started = Instant::now();
    let store = tokio::task::spawn_blocking(move || Store::open(config))
        .await
        .context("the store-opening task failed")?
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let open_time = started.elapsed();

    let stats = store.stats();
    info!(
        data_dir = %args.data_dir.display(),
        segments = stats.segments,
        min_offset = stats.min_offset,
        max_offset = stats.max_offset,
        flushed_offset = stats.flushed_offset,
        queues = stats.queues,
        recovery = ?stats.recovery,
        ?open_time,
        "store open"
    );
    warn!(
        listen = %args.listen,
        "the RocketMQ gRPC broker is not served yet: --listen is accepted but nothing is bound to it"
    );
    info!("waiting for SIGTERM or Ctrl-C");

    let signal = shutdown.recv().await;
    info!(
        signal,
        "shutdown signal received; flushing and closing the store"
    );

    let started = Instant::now();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("the store-closing task failed")?
        .context("closing the store")?;
    info!(close_time = ?started.elapsed(), "store closed");
    Ok(())
}

/// The signals that stop `tern standalone`.
#[derive(Debug)]
struct Shutdown {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Starts listening for SIGTERM and SIGINT (Ctrl-C). From here on these
    /// signals no longer end the process by themselves.
    fn listen() -> anyhow::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// Waits for the first signal and returns its name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
