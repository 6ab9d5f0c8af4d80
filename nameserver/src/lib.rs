//! The Tern name server: where brokers announce themselves and clients
//! learn which broker serves which topic.
//!
//! - [`registry`]: the route registry, pure and synchronous: each live
//!   broker's table (endpoints, topics with queue count, message type and
//!   permission, groups with FIFO flag and retry limit), a topic ->
//!   brokers index, heartbeats and expiry;
//! - `service`: Tern's `tern.nameserver.v1.TernNameserver` over it:
//!   brokers register their whole table as a stream of chunks (so 100,000
//!   topics never meet a message-size limit), heartbeat with their table
//!   version and are told when to register again (after a name server
//!   restart, an expiry, or a table change the name server missed);
//! - `messaging`: the part of `apache.rocketmq.v2.MessagingService` a
//!   RocketMQ client needs to use the name server as its access point
//!   (QueryRoute merged across brokers, Telemetry settings, QueryAssignment,
//!   Heartbeat, NotifyClientTermination); every other RPC says to use a
//!   broker;
//! - [`Nameserver`]: serves both with tonic and expires silent brokers;
//!   optionally [`http`]: `/metrics`, `/healthz` and `/readyz`.
//!
//! Name servers share nothing: each broker registers with each of them.
//! The registry lives in memory only; a restarted name server learns its
//! brokers back from their next heartbeats.
//!
//! Dependencies: `tern-model` and `tern-protocol` only, never the broker.
#![forbid(unsafe_code)]

mod convert;
pub mod error;
pub mod http;
mod messaging;
mod metrics;
pub mod registry;
mod server;
mod service;

pub use error::{NameserverError, Result};
pub use messaging::Messaging;
pub use registry::{BrokerRoute, BrokerTable, GroupEntry, Registry, TopicEntry};
pub use server::{Nameserver, NameserverConfig};
pub use service::Service;
