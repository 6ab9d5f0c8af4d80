//! The gRPC edge: the `apache.rocketmq.v2.MessagingService` that the
//! RocketMQ 5 SDKs speak ([`Messaging`]) and Tern's own `TernAdmin`
//! service ([`Admin`]).
//!
//! - `status`: the one mapping from [`crate::BrokerError`] and refused
//!   input to RocketMQ status codes, including the older codes given to
//!   clients whose `x-mq-language` is RUST;
//! - `convert`: protobuf to validated `tern_model` values, and delivered
//!   messages back to protobuf;
//! - `service`: the RPCs; `telemetry`, `receive` and `send` hold the
//!   larger ones.
//!
//! Most RocketMQ RPCs answer with gRPC status OK and the outcome in the
//! response body. The core API is blocking; calls that may touch the disk
//! run on tokio's blocking pool.

mod admin;
mod convert;
mod delay;
mod offsets;
mod producers;
mod query;
mod receive;
mod renew;
mod send;
mod service;
mod status;
mod telemetry;
mod transaction;
mod wake;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tern_store::Store;
use tokio::sync::watch;

pub use admin::Admin;
pub(crate) use admin::disk_usage;
pub use producers::Producers;
pub use renew::Renewals;
pub use status::{CLIENT_ID_HEADER, LANGUAGE_HEADER, PROTOCOL_VERSION_HEADER};
pub use wake::Wakers;

use crate::dedup::{Dedup, DedupConfig};
use crate::error::{BrokerError, Result};
use crate::meta::Registry;
use crate::metrics::{Listeners, Metrics};
use crate::pop::Pop;
use crate::timer::Timer;

/// Longest long-polling wait of one receive or pull.
pub const MAX_LONG_POLLING: Duration = Duration::from_secs(20);
/// Shortest long-polling wait of one receive; a client whose deadline
/// leaves less gets ILLEGAL_POLLING_TIME.
pub const MIN_LONG_POLLING: Duration = Duration::from_secs(5);
/// Invisibility of messages received with no duration and no `auto_renew`.
pub const DEFAULT_INVISIBLE: Duration = Duration::from_secs(60);

/// What the messaging service tells clients about this broker.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The broker's name in routes.
    pub broker_name: String,
    /// `host:port` put in routes when the client did not say which
    /// address it dialled.
    pub advertised_address: String,
    /// Largest message body accepted (sent to clients in the settings).
    pub max_body_bytes: usize,
    /// Back-pressure: SendMessage answers TOO_MANY_REQUESTS while this
    /// many commit-log bytes are appended but not yet fsynced (the disk is
    /// behind). Default 256 MiB.
    pub max_unflushed_bytes: u64,
    /// Back-pressure: SendMessage answers TOO_MANY_REQUESTS while this
    /// many sends wait for their append to complete (under `sync`, for
    /// their group commit). Default 10 000.
    pub max_pending_sends: usize,
    /// Invisibility of messages received with `auto_renew` and no
    /// duration; the broker renews it while the client is alive. Default
    /// 60 s.
    pub auto_renew_invisible: Duration,
    /// Routes across all brokers from the name servers, when the broker
    /// has any; `None` (the default) answers routes from this broker
    /// alone.
    pub cluster: Option<Arc<crate::cluster::ClusterRoutes>>,
    /// Send de-duplication: how long and how many message ids are
    /// remembered (see [`crate::dedup`]). Default 5 minutes, 1 000 000.
    pub dedup: DedupConfig,
    /// Half messages and their checks (see [`crate::txn`]); `None` (the
    /// default) refuses transaction messages with UNSUPPORTED.
    pub transactions: Option<Arc<crate::txn::Transactions>>,
}

impl ServiceConfig {
    /// Default [`ServiceConfig::max_unflushed_bytes`].
    pub const DEFAULT_MAX_UNFLUSHED_BYTES: u64 = 256 << 20;
    /// Default [`ServiceConfig::max_pending_sends`].
    pub const DEFAULT_MAX_PENDING_SENDS: usize = 10_000;

    /// The defaults, for a broker named `broker_name` at
    /// `advertised_address` accepting bodies of up to `max_body_bytes`.
    pub fn new(broker_name: String, advertised_address: String, max_body_bytes: usize) -> Self {
        Self {
            broker_name,
            advertised_address,
            max_body_bytes,
            max_unflushed_bytes: Self::DEFAULT_MAX_UNFLUSHED_BYTES,
            max_pending_sends: Self::DEFAULT_MAX_PENDING_SENDS,
            auto_renew_invisible: DEFAULT_INVISIBLE,
            cluster: None,
            dedup: DedupConfig::default(),
            transactions: None,
        }
    }
}

/// The RocketMQ 5 messaging service over the broker core. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Messaging {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<Store>,
    registry: Arc<Registry>,
    pop: Arc<Pop>,
    cfg: ServiceConfig,
    closing: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    wakers: Arc<Wakers>,
    renewals: Arc<Renewals>,
    /// Sends waiting for their append to complete.
    pending_sends: Arc<AtomicUsize>,
    /// Round-robin counter choosing the queue of each send request.
    next_queue: AtomicUsize,
    /// Message ids recently stored, answering repeated sends.
    dedup: Arc<Dedup>,
    /// Delayed messages waiting for their time.
    timer: Arc<Timer>,
    /// Live producers and their Telemetry streams, for transaction checks.
    producers: Arc<Producers>,
}

impl Messaging {
    /// The service over the broker core. Installs the store's listener
    /// (long-poll wake-ups and flush timings into `metrics`) unless one is
    /// installed already.
    pub fn new(
        store: Arc<Store>,
        registry: Arc<Registry>,
        pop: Arc<Pop>,
        cfg: ServiceConfig,
        metrics: Arc<Metrics>,
        timer: Arc<Timer>,
    ) -> Self {
        let wakers = Arc::new(Wakers::default());
        let listener = Listeners {
            metrics: Arc::clone(&metrics),
            wakers: Arc::clone(&wakers),
        };
        if !store.set_listener(Arc::new(listener)) {
            tracing::warn!("the store already has a listener; long polls fall back to timers");
        }
        let swept = Arc::clone(&wakers);
        pop.on_swept(move |topic| swept.wake(topic));
        let renewals = Arc::new(Renewals::new(cfg.auto_renew_invisible));
        let dedup = Arc::new(Dedup::new(cfg.dedup, &store));
        Self {
            shared: Arc::new(Shared {
                store,
                registry,
                pop,
                cfg,
                closing: watch::Sender::new(false),
                metrics,
                wakers,
                renewals,
                pending_sends: Arc::new(AtomicUsize::new(0)),
                next_queue: AtomicUsize::new(0),
                dedup,
                timer,
                producers: Arc::default(),
            }),
        }
    }

    /// Renews the deliveries of live `auto_renew` clients until
    /// [`Messaging::close_streams`]; spawn it next to the server.
    pub async fn run_renewals(self) {
        let every = self.shared.renewals.interval();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.closed() => return,
            }
            let sh = Arc::clone(&self.shared);
            let _ = blocking(move || {
                sh.renewals.renew_once(&sh.pop, convert::now_ms());
                Ok(())
            })
            .await;
        }
    }

    /// Ends the open telemetry streams and long polls, for a graceful
    /// shutdown: the server can then finish its connections.
    pub fn close_streams(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Resolves once [`Messaging::close_streams`] has been called.
    async fn closed(&self) {
        let mut rx = self.shared.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// Runs blocking core work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(BrokerError::Failed(format!("blocking task failed: {e}"))))
}
