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
mod receive;
mod send;
mod service;
mod status;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use tern_store::Store;
use tokio::sync::watch;

pub use admin::Admin;
pub use status::{CLIENT_ID_HEADER, LANGUAGE_HEADER};

use crate::error::{BrokerError, Result};
use crate::meta::Registry;
use crate::pop::Pop;

/// Longest long-polling wait of one receive.
pub const MAX_LONG_POLLING: Duration = Duration::from_secs(20);
/// Invisibility of messages received with `auto_renew` and no duration.
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
}

impl Messaging {
    pub fn new(
        store: Arc<Store>,
        registry: Arc<Registry>,
        pop: Arc<Pop>,
        cfg: ServiceConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                registry,
                pop,
                cfg,
                closing: watch::Sender::new(false),
            }),
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
