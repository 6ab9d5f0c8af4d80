//! The gRPC edge: the `apache.rocketmq.v2.MessagingService` that the
//! RocketMQ 5 SDKs speak ([`Messaging`]) and Tern's own `TernAdmin`
//! service ([`Admin`]). It converts protobuf to validated domain values,
//! calls the domain ([`crate::produce`], [`crate::consume`]), and turns
//! the answers and [`crate::BrokerError`]s back into protobuf; it makes
//! no decision of its own beyond that.
//!
//! - `status`: the one mapping from [`crate::BrokerError`] and refused
//!   input to RocketMQ status codes, including the older codes given to
//!   clients whose `x-mq-language` is RUST;
//! - `convert`: protobuf to validated `tern_model` values, and delivered
//!   messages back to protobuf;
//! - `service`: the RPCs, with routes and assignments; `telemetry`,
//!   `send`, `receive`, `offsets` and `transaction` hold the larger ones.
//!
//! Most RocketMQ RPCs answer with gRPC status OK and the outcome in the
//! response body.

mod access;
mod admin;
mod admin_access;
mod convert;
mod offsets;
mod receive;
mod send;
mod service;
mod status;
mod telemetry;
mod transaction;
mod users;

use std::sync::Arc;

pub use admin::Admin;
pub use status::{CLIENT_ID_HEADER, LANGUAGE_HEADER, PROTOCOL_VERSION_HEADER};

use crate::auth::Access;
use crate::closing::Closing;
use crate::consume::Consume;
use crate::meta::Registry;
use crate::produce::Produce;
use crate::routes::Routes;

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

impl ServiceConfig {
    /// A broker named `broker_name` at `advertised_address` accepting
    /// bodies of up to `max_body_bytes`.
    pub fn new(broker_name: String, advertised_address: String, max_body_bytes: usize) -> Self {
        Self {
            broker_name,
            advertised_address,
            max_body_bytes,
        }
    }
}

/// The RocketMQ 5 messaging service over the broker's domain. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Messaging {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    access: Arc<Access>,
    registry: Arc<Registry>,
    produce: Arc<Produce>,
    consume: Arc<Consume>,
    routes: Routes,
    cfg: ServiceConfig,
    /// Ends telemetry streams (long polls end through `consume`).
    closing: Closing,
}

impl Messaging {
    /// The service over `produce`, `consume` and `routes`; its telemetry
    /// streams end when `closing` closes.
    pub fn new(
        access: Arc<Access>,
        registry: Arc<Registry>,
        produce: Arc<Produce>,
        consume: Arc<Consume>,
        routes: Routes,
        cfg: ServiceConfig,
        closing: Closing,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                access,
                registry,
                produce,
                consume,
                routes,
                cfg,
                closing,
            }),
        }
    }
}
