//! [`Broker`]: the store, the registry and the consumption state of one
//! data directory, served over gRPC.
//!
//! Layout of the data directory: the store at its root (`commitlog/`,
//! consume queues, index, checkpoint), the registry in `meta/`, the
//! consumption journal and receipt key in `pop/`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_protocol::admin::tern_admin_server::TernAdminServer;
use tern_protocol::shutdown;
use tern_protocol::v2::messaging_service_server::MessagingServiceServer;
use tern_store::{FlushPolicy, Store, StoreConfig};
use tern_tls::{ClientTlsConfig, ServerTls, ServerTlsConfig};
use tokio::net::TcpListener;

use crate::closing::Closing;
use crate::consume::{Consume, DEFAULT_INVISIBLE};
use crate::error::{BrokerError, Result};
use crate::grpc::{Admin, Messaging, ServiceConfig};
use crate::meta::Registry;
use crate::metrics::{Health, HttpState, Metrics, serve_http};
use crate::pop::{Pop, PopConfig};
use crate::produce::{AdmissionLimits, Produce, ProduceConfig};
use crate::replica::{Mark, Replicated, ReplicationConfig};
use crate::routes::Routes;
use crate::timer::{DelayConfig, Timer};
use crate::txn::{TransactionConfig, Transactions};
use crate::wake::{Listeners, Wakers};

/// Largest gRPC request the messaging service decodes: a batch of
/// messages may carry several bodies of the largest size, so the limit is
/// well above the body limit (64 MiB, or the body limit plus 1 MiB if
/// larger). Bodies over the body limit still get MESSAGE_BODY_TOO_LARGE
/// from validation, not a transport error.
fn max_request_bytes(max_body_bytes: usize) -> usize {
    (64 << 20).max(max_body_bytes.saturating_add(1 << 20))
}

/// How long closing waits for the last users of the core to let go.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The storage engine; its `dir` is the broker's data directory.
    pub store: StoreConfig,
    /// The broker's name in routes. Default `tern-0`.
    pub name: String,
    /// `host:port` clients are told to use when they did not say which
    /// address they dialled. Default: the address the listener is bound
    /// to.
    pub advertised_address: Option<String>,
    /// HTTP `host:port` serving `/metrics`, `/healthz` and `/readyz`.
    /// Default unset: no HTTP port.
    pub metrics_listen: Option<String>,
    /// Back-pressure: sends are refused with TOO_MANY_REQUESTS while this
    /// many commit-log bytes wait for an fsync. Default 256 MiB.
    pub max_unflushed_bytes: u64,
    /// Back-pressure: sends are refused with TOO_MANY_REQUESTS while this
    /// many sends wait for their append (under `sync`, their group
    /// commit). Default 10 000.
    pub max_pending_sends: usize,
    /// The most topics and consumer groups the registry creates
    /// (`[limits] max_topics`, `max_groups`). Default 100 000 topics,
    /// 10 000 groups.
    pub limits: crate::RegistryLimits,
    /// Invisibility of messages received with `auto_renew` (push
    /// consumers), renewed while the client is alive. Default 60 s.
    pub auto_renew_invisible: Duration,
    /// The cluster the broker registers in. Default `tern`.
    pub cluster: String,
    /// `host:port` of the name servers to register with. Default empty:
    /// no registration, and routes name this broker only.
    pub nameservers: Vec<String>,
    /// Time between heartbeats to each name server. Default 30 s.
    pub heartbeat_interval: Duration,
    /// Send de-duplication window and memory bound. Default 5 minutes,
    /// 1 000 000 message ids.
    pub dedup: crate::DedupConfig,
    /// Delayed messages: precision (default 1 s) and longest delay
    /// (default 7 days).
    pub delay: DelayConfig,
    /// Transaction checks: first check 6 s after a half message is
    /// stored, then every 30 s, at most 15, then rollback.
    pub transaction: TransactionConfig,
    /// TLS of the gRPC port: permissive by default (TLS and plaintext on
    /// the same port), with a certificate generated at start unless files
    /// are given; a generated one is signed by a CA kept in `tls/` in the
    /// data directory unless another directory is set.
    pub tls: ServerTlsConfig,
    /// How the name servers are dialled: TLS checked as this says, or
    /// plaintext when `None` (the default).
    pub nameserver_tls: Option<ClientTlsConfig>,
    /// Request checks (credentials and policies): off by default.
    pub auth: crate::AuthConfig,
    /// Connections the gRPC port takes at once; more are closed as soon
    /// as they are accepted. Default 10 000.
    pub max_connections: usize,
    /// Set: this broker is a replica of a replicated group. Default unset.
    pub replication: Option<ReplicationConfig>,
}

impl BrokerConfig {
    /// The defaults, with the data in `store.dir`.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            store,
            name: "tern-0".to_owned(),
            advertised_address: None,
            metrics_listen: None,
            max_unflushed_bytes: AdmissionLimits::DEFAULT_MAX_UNFLUSHED_BYTES,
            max_pending_sends: AdmissionLimits::DEFAULT_MAX_PENDING_SENDS,
            limits: crate::RegistryLimits::default(),
            auto_renew_invisible: DEFAULT_INVISIBLE,
            cluster: "tern".to_owned(),
            nameservers: Vec::new(),
            heartbeat_interval: Duration::from_secs(30),
            dedup: crate::DedupConfig::default(),
            delay: DelayConfig::default(),
            transaction: TransactionConfig::default(),
            tls: ServerTlsConfig::default(),
            nameserver_tls: None,
            auth: crate::AuthConfig::default(),
            max_connections: tern_tls::DEFAULT_MAX_CONNECTIONS,
            replication: None,
        }
    }
}

/// An open broker: not yet serving until [`Broker::serve`].
#[derive(Debug)]
pub struct Broker {
    cfg: BrokerConfig,
    store: Arc<Store>,
    registry: Arc<Registry>,
    pop: Arc<Pop>,
    timer: Arc<Timer>,
    txn: Arc<Transactions>,
    /// The gRPC port's TLS, set up at open so a bad certificate stops the
    /// broker before it listens.
    tls: Arc<ServerTls>,
    /// A replica's applied mark, read when its store opened.
    mark: Option<Mark>,
}

impl Broker {
    /// Opens (creating if needed and recovering) the store, the registry
    /// and the consumption state in `cfg.store.dir`. Blocking.
    pub fn open(cfg: BrokerConfig) -> Result<Self> {
        let tls = Arc::new(server_tls(&cfg)?);
        let dir = cfg.store.dir.clone();
        // Retention waits for the parks to say what they keep.
        let mut store_cfg = cfg.store.clone();
        store_cfg
            .retention_holders
            .extend([crate::timer::PARK_NAME, crate::txn::PARK_NAME].map(crate::park::topic_of));
        let (store, mark) = match &cfg.replication {
            Some(replication) => {
                replication.validate()?;
                if !cfg.nameservers.is_empty() {
                    return Err(BrokerError::Invalid(
                        "a replica of a replicated group cannot register with name servers yet: \
                         give either nameservers or replicas"
                            .into(),
                    ));
                }
                if cfg.auth.enabled {
                    return Err(BrokerError::Invalid(
                        "request checks (auth) on a replica of a replicated group are not supported yet"
                            .into(),
                    ));
                }
                store_cfg.replica_only = true;
                // The Raft log is what makes a send durable (fsynced on a
                // majority under `sync`); the store is flushed in the
                // background and cut back to its applied mark at open.
                store_cfg.flush = FlushPolicy::Async;
                crate::replica::open_store(store_cfg, &dir)?
            }
            None => (Store::open(store_cfg)?, None),
        };
        let store = Arc::new(store);
        let registry = Arc::new(Registry::open(&dir.join("meta"))?.with_limits(cfg.limits));
        let pop = Pop::open(
            PopConfig::new(dir.join("pop")),
            Arc::clone(&store),
            Arc::clone(&registry),
        )?;
        let timer = Timer::open(
            Arc::clone(&store),
            Arc::clone(&registry),
            &dir.join("park"),
            cfg.delay,
        )?;
        let txn = Arc::new(Transactions::open(
            Arc::clone(&store),
            &dir.join("park"),
            cfg.transaction,
        )?);
        Ok(Self {
            cfg,
            store,
            registry,
            pop: Arc::new(pop),
            timer,
            txn,
            tls,
            mark,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves the messaging and admin services on `listener` until
    /// `shutdown` resolves; then stops accepting, ends the open telemetry
    /// streams and long polls, lets in-flight calls finish (closing the
    /// connections still open after 5 s), and closes the consumption
    /// state and the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let local = listener
            .local_addr()
            .map_err(|e| BrokerError::Failed(format!("listener has no address: {e}")))?;
        let advertised = self
            .cfg
            .advertised_address
            .clone()
            .unwrap_or_else(|| local.to_string());
        let metrics = Arc::new(Metrics::new());
        let observer: Arc<dyn tern_tls::ConnectionObserver> = metrics.clone();
        let access = Arc::new(crate::auth::Access::new(
            self.cfg.auth.clone(),
            Arc::clone(&self.registry),
            Some(Arc::clone(&metrics)),
        )?);
        let health = Arc::new(Health::default());
        // The store's listener wakes long polls and times flushes.
        let wakers = Arc::new(Wakers::default());
        let listener_installed = self.store.set_listener(Arc::new(Listeners {
            metrics: Arc::clone(&metrics),
            wakers: Arc::clone(&wakers),
        }));
        if !listener_installed {
            tracing::warn!("the store already has a listener; long polls fall back to timers");
        }
        let closing = Closing::default();
        let replicated = match &self.cfg.replication {
            Some(rc) => Some(Arc::new(
                Replicated::start(
                    rc,
                    Arc::clone(&self.tls),
                    Arc::clone(&self.store),
                    Arc::clone(&self.registry),
                    &self.cfg.store.dir,
                    self.mark,
                    self.cfg.store.flush == FlushPolicy::Sync,
                )
                .await?,
            )),
            None => None,
        };
        let produce = Produce::new(
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&self.timer),
            Some(Arc::clone(&self.txn)),
            Arc::clone(&metrics),
            ProduceConfig {
                admission: AdmissionLimits {
                    max_unflushed_bytes: self.cfg.max_unflushed_bytes,
                    max_pending_sends: self.cfg.max_pending_sends,
                },
                dedup: self.cfg.dedup,
            },
        );
        let produce = Arc::new(match &replicated {
            Some(r) => produce.replicated(Arc::clone(r)),
            None => produce,
        });
        let consume = Arc::new(Consume::new(
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&self.pop),
            Arc::clone(&metrics),
            wakers,
            self.cfg.auto_renew_invisible,
            closing.clone(),
        ));
        let routes = Routes::new(
            Arc::clone(&self.registry),
            self.cfg.name.clone(),
            crate::cluster::routes(&self.cfg)?,
        );
        let service_cfg = ServiceConfig::new(
            self.cfg.name.clone(),
            advertised.clone(),
            self.cfg.store.max_body_bytes,
        );
        let messaging = Messaging::new(
            Arc::clone(&access),
            Arc::clone(&self.registry),
            Arc::clone(&produce),
            Arc::clone(&consume),
            routes,
            service_cfg,
            closing.clone(),
        );
        let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let http = match &self.cfg.metrics_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr.as_str()).await.map_err(|e| {
                    BrokerError::Failed(format!("cannot listen for HTTP on {addr}: {e}"))
                })?;
                let bound = l
                    .local_addr()
                    .map_or_else(|_| addr.clone(), |a| a.to_string());
                tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
                let state = HttpState {
                    metrics,
                    store: Arc::clone(&self.store),
                    registry: Arc::clone(&self.registry),
                    pop: Arc::clone(&self.pop),
                    timer: Arc::clone(&self.timer),
                    txn: Arc::clone(&self.txn),
                    health: Arc::clone(&health),
                    replica: replicated.clone(),
                };
                Some(tokio::spawn(serve_http(l, state, async {
                    let _ = http_stopped.await;
                })))
            }
            None => None,
        };
        let admin = Admin::new(
            access,
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&consume),
            self.cfg.name.clone(),
            vec![advertised.clone()],
        );
        let admin = match &replicated {
            Some(r) => admin.with_replica(Arc::clone(r)),
            None => admin,
        };
        let closer = closing.clone();
        let unready = Arc::clone(&health);
        let shutdown = async move {
            shutdown.await;
            unready.set_ready(false);
            tracing::info!("shutting down: no new connections; finishing calls in flight");
            closer.close();
        };
        let membership =
            crate::cluster::Membership::start(&self.cfg, &advertised, Arc::clone(&self.registry))?;
        // Spawned last: nothing below returns early and leaves it running.
        let renewals = tokio::spawn(Arc::clone(&consume).run_renewals());
        let checks = tokio::spawn(Arc::clone(&produce).run_transaction_checks(closing));
        // The services hold the rest of the domain; the loops their own.
        drop((produce, consume));
        health.set_ready(true);
        let (shutdown, fired) = shutdown::signal_with_grace(shutdown);
        let server = tern_protocol::server::builder()
            .add_service(
                MessagingServiceServer::new(messaging)
                    .max_decoding_message_size(max_request_bytes(self.cfg.store.max_body_bytes)),
            )
            .add_service(TernAdminServer::new(admin))
            .serve_with_incoming_shutdown(
                Arc::clone(&self.tls).incoming_observed(
                    listener,
                    Some(observer),
                    self.cfg.max_connections,
                ),
                shutdown,
            );
        let served = shutdown::bounded(server, fired, shutdown::GRACE)
            .await
            .unwrap_or_else(|| {
                // Connections that outlived the grace end now, and with
                // them the services they hold.
                self.tls.close_connections();
                Ok(())
            })
            .map_err(|e| BrokerError::Failed(format!("gRPC server failed: {e}")));
        health.set_ready(false);
        messaging_done(renewals, http_stop, http).await;
        let _ = checks.await;
        if let Some(m) = membership {
            m.stop().await;
        }
        if let Some(r) = replicated {
            r.stop().await;
        }
        let closed = tokio::task::spawn_blocking(move || self.close())
            .await
            .unwrap_or_else(|e| Err(BrokerError::Failed(format!("closing task failed: {e}"))));
        served.and(closed)
    }

    /// Closes the consumption state, then the store, once nothing else
    /// holds them (waiting at most 10 s). Blocking.
    pub fn close(self) -> Result<()> {
        let Self {
            store,
            registry,
            pop,
            timer,
            txn,
            ..
        } = self;
        // The half-message park holds the store.
        drop(txn);
        // The timer thread holds the store: stop it first.
        timer.close();
        drop(timer);
        drop(registry);
        let pop_closed = match release(pop, "consumption state") {
            Some(pop) => pop.close(),
            None => Ok(()),
        };
        let store_closed = match release(store, "store") {
            Some(store) => store.close().map_err(BrokerError::from),
            None => Ok(()),
        };
        pop_closed.and(store_closed)
    }
}

/// The gRPC port's TLS: a generated certificate also names the advertised
/// host, and its CA lives in `tls/` in the data directory unless set
/// otherwise.
fn server_tls(cfg: &BrokerConfig) -> Result<ServerTls> {
    let mut tls = cfg.tls.clone();
    if tls.generated_ca_dir.is_none() {
        tls.generated_ca_dir = Some(cfg.store.dir.join("tls"));
    }
    if let Some((host, _)) = cfg
        .advertised_address
        .as_deref()
        .and_then(|a| a.rsplit_once(':'))
    {
        tls.names.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    Ok(ServerTls::new(&tls)?)
}

/// Stops the renewal task and the HTTP server (which hold the core) after
/// the gRPC server has finished.
async fn messaging_done(
    renewals: tokio::task::JoinHandle<()>,
    http_stop: tokio::sync::oneshot::Sender<()>,
    http: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) {
    let _ = renewals.await;
    let _ = http_stop.send(());
    if let Some(h) = http {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server failed"),
            Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
        }
    }
}

/// The value behind `arc` once it is the last reference; `None` (after
/// dropping it, which still flushes) if others hold on past the timeout.
fn release<T>(mut arc: Arc<T>, what: &str) -> Option<T> {
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    loop {
        match Arc::try_unwrap(arc) {
            Ok(t) => return Some(t),
            Err(a) if Instant::now() < deadline => {
                arc = a;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                tracing::warn!(what, "still in use at close; dropping it instead");
                return None;
            }
        }
    }
}
