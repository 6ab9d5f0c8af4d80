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
use tern_protocol::v2::messaging_service_server::MessagingServiceServer;
use tern_store::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::error::{BrokerError, Result};
use crate::grpc::{Admin, Messaging, ServiceConfig};
use crate::meta::Registry;
use crate::pop::{Pop, PopConfig};

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
}

impl BrokerConfig {
    /// The defaults, with the data in `store.dir`.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            store,
            name: "tern-0".to_owned(),
            advertised_address: None,
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
}

impl Broker {
    /// Opens (creating if needed and recovering) the store, the registry
    /// and the consumption state in `cfg.store.dir`. Blocking.
    pub fn open(cfg: BrokerConfig) -> Result<Self> {
        let dir = cfg.store.dir.clone();
        let store = Arc::new(Store::open(cfg.store.clone())?);
        let registry = Arc::new(Registry::open(&dir.join("meta"))?);
        let pop = Pop::open(
            PopConfig::new(dir.join("pop")),
            Arc::clone(&store),
            Arc::clone(&registry),
        )?;
        Ok(Self {
            cfg,
            store,
            registry,
            pop: Arc::new(pop),
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
    /// streams and long polls, lets in-flight calls finish, and closes the
    /// consumption state and the store.
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
        let messaging = Messaging::new(
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&self.pop),
            ServiceConfig {
                broker_name: self.cfg.name.clone(),
                advertised_address: advertised.clone(),
                max_body_bytes: self.cfg.store.max_body_bytes,
            },
        );
        let admin = Admin::new(
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&self.pop),
            self.cfg.name.clone(),
            vec![advertised],
            self.cfg.store.dir.clone(),
        );
        let closer = messaging.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; finishing calls in flight");
            closer.close_streams();
        };
        let served = tonic::transport::Server::builder()
            .add_service(MessagingServiceServer::new(messaging))
            .add_service(TernAdminServer::new(admin))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await
            .map_err(|e| BrokerError::Failed(format!("gRPC server failed: {e}")));
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
            ..
        } = self;
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
