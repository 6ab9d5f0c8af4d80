//! `tern standalone`: a single-node Tern broker in the foreground.
//!
//! Opens the broker's data directory (the storage engine runs crash
//! recovery), binds `--listen`, serves the RocketMQ 5 gRPC messaging
//! service and Tern's admin service until SIGTERM or Ctrl-C, then shuts
//! down gracefully: no new connections, calls in flight finish, and the
//! consumption state and the store are flushed and closed.
//!
//! Integration tests and operators rely on three log messages: `store open`
//! once the data directory has been opened, `listening` (with the bound
//! address) once clients can connect, and `store closed` once everything
//! has been flushed and closed.

use std::time::Instant;

use anyhow::Context as _;
use tern_broker::{Broker, BrokerConfig};
use tern_store::StoreConfig;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::args::StandaloneArgs;

/// Runs `tern standalone` to completion: returns once the broker has been
/// closed after a shutdown signal.
pub(crate) fn run(args: &StandaloneArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
    let mut store = StoreConfig::new(data_dir.clone());
    store.flush = args.flush.into();
    info!(
        data_dir = %data_dir.display(),
        flush = ?args.flush,
        "opening store"
    );
    let started = Instant::now();
    let broker = tokio::task::spawn_blocking(move || Broker::open(BrokerConfig::new(store)))
        .await
        .context("the store-opening task failed")?
        .with_context(|| format!("opening the broker in {}", args.data_dir.display()))?;
    let open_time = started.elapsed();

    let stats = broker.store().stats();
    info!(
        data_dir = %args.data_dir.display(),
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

    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            // Close what was opened before giving up.
            let closed = tokio::task::spawn_blocking(move || broker.close()).await;
            if let Ok(Ok(())) = closed {
                info!("store closed");
            }
            return Err(e).with_context(|| format!("binding {}", args.listen));
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
