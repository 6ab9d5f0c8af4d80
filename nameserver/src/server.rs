//! [`Nameserver`]: the registry served over gRPC, with the expiry task.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tern_protocol::nameserver::tern_nameserver_server::TernNameserverServer;
use tern_protocol::shutdown;
use tern_protocol::v2::messaging_service_server::MessagingServiceServer;
use tern_tls::{ServerTls, ServerTlsConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{NameserverError, Result};
use crate::messaging::Messaging;
use crate::registry::Registry;
use crate::service::Service;

/// Settings of a name server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameserverConfig {
    /// A broker not heard from (registration or heartbeat) for this long
    /// is dropped with its routes. Default [`NameserverConfig::DEFAULT_BROKER_EXPIRY`].
    pub broker_expiry: Duration,
    /// TLS of the gRPC port: permissive by default, with a generated
    /// certificate unless files are given (its CA made for the process
    /// unless `generated_ca_dir` is set).
    pub tls: ServerTlsConfig,
}

impl NameserverConfig {
    /// Default of [`NameserverConfig::broker_expiry`]: 120 s, like
    /// RocketMQ's name server.
    pub const DEFAULT_BROKER_EXPIRY: Duration = Duration::from_secs(120);
}

impl Default for NameserverConfig {
    fn default() -> Self {
        Self {
            broker_expiry: Self::DEFAULT_BROKER_EXPIRY,
            tls: ServerTlsConfig::default(),
        }
    }
}

/// A name server: its registry starts empty (brokers register again when
/// their heartbeats are answered `register_again`).
#[derive(Debug)]
pub struct Nameserver {
    registry: Arc<Registry>,
    /// Set up when made, so a bad certificate stops the start early.
    tls: Arc<ServerTls>,
}

impl Nameserver {
    /// A name server with the settings of `cfg`; fails if its TLS
    /// certificate cannot be loaded.
    pub fn new(cfg: NameserverConfig) -> Result<Self> {
        Ok(Self {
            registry: Arc::new(Registry::new(cfg.broker_expiry)),
            tls: Arc::new(ServerTls::new(&cfg.tls)?),
        })
    }

    /// The registry, for in-process use and tests.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Serves `TernNameserver` and the client-facing `MessagingService`
    /// subset on `listener` until `shutdown` resolves, expiring silent
    /// brokers meanwhile; then stops accepting, ends the open Telemetry
    /// streams and lets calls in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        self.serve_with_http(listener, None, shutdown).await
    }

    /// [`Nameserver::serve`], plus `/metrics`, `/healthz` and `/readyz`
    /// over HTTP on `http` when given (see [`crate::http`]).
    pub async fn serve_with_http(
        self,
        listener: TcpListener,
        http: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        listener.local_addr().map_err(NameserverError::Listener)?;
        let ready = Arc::new(AtomicBool::new(false));
        let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let http = match http {
            Some(l) => {
                let address = l.local_addr().map_err(NameserverError::Listener)?;
                tracing::info!(%address, "serving /metrics, /healthz and /readyz");
                Some(tokio::spawn(crate::http::serve(
                    l,
                    Arc::clone(&self.registry),
                    Arc::clone(&ready),
                    async {
                        let _ = http_stopped.await;
                    },
                )))
            }
            None => None,
        };
        let (closing_tx, closing_rx) = watch::channel(false);
        let expiry = tokio::spawn(expire_loop(Arc::clone(&self.registry)));
        let unready = Arc::clone(&ready);
        let shutdown = async move {
            shutdown.await;
            unready.store(false, Ordering::Relaxed);
            tracing::info!("shutting down: no new connections; finishing calls in flight");
            closing_tx.send_replace(true);
        };
        ready.store(true, Ordering::Relaxed);
        let (shutdown, fired) = shutdown::signal_with_grace(shutdown);
        let server = tern_protocol::server::builder()
            .add_service(TernNameserverServer::new(Service::new(Arc::clone(
                &self.registry,
            ))))
            .add_service(MessagingServiceServer::new(Messaging::new(
                Arc::clone(&self.registry),
                closing_rx,
            )))
            .serve_with_incoming_shutdown(Arc::clone(&self.tls).incoming(listener), shutdown);
        let served = shutdown::bounded(server, fired, shutdown::GRACE)
            .await
            .unwrap_or_else(|| {
                // Connections that outlived the grace end now, and with
                // them the services they hold.
                self.tls.close_connections();
                Ok(())
            })
            .map_err(NameserverError::Serve);
        expiry.abort();
        let _ = http_stop.send(());
        if let Some(h) = http {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server failed"),
                Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
            }
        }
        served
    }
}

/// Drops silent brokers, checking several times per expiry window.
async fn expire_loop(registry: Arc<Registry>) {
    let every = (registry.expiry() / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for broker in registry.expire(Instant::now()) {
            tracing::warn!(
                %broker,
                expiry = ?registry.expiry(),
                "broker expired: no heartbeat within the expiry window; its routes are dropped"
            );
        }
    }
}
