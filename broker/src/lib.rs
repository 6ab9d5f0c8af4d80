//! The Tern broker: the server that RocketMQ 5 gRPC SDKs talk to.
//!
//! The core state is plain blocking Rust with no network code:
//!
//! - [`meta`]: the registry of topics (queue count, message type,
//!   permission) and consumer groups (FIFO flag, retry limit), validated
//!   at construction and persisted as JSON;
//! - [`receipt`]: receipt handles, opaque strings naming one delivery,
//!   signed with HMAC-SHA256 under a per-broker secret kept in the data
//!   directory;
//! - [`filter`]: RocketMQ filter expressions: tags (`*`, `a || b`) and
//!   SQL92 over message properties (`a > 5 AND TAGS IN ('x')`);
//! - [`pop`]: POP-style consumption per (group, topic, queue): receive
//!   with invisibility, redelivery with rising attempt numbers, ack,
//!   change of invisibility, dead-lettering to `%DLQ%<group>`, committed
//!   offsets in the store, FIFO order per message group for FIFO groups,
//!   and a journal that keeps all of it across a restart;
//! - `park`: messages held back from their topic in a system topic of
//!   their own until released or discarded, exactly once across crashes
//!   (`journal` is the file format it shares with `pop`);
//! - [`timer`]: delayed messages, parked until their delivery time;
//! - [`txn`]: transactional (half) messages, parked until their
//!   transaction ends, and the checks that ask producers about them;
//! - [`error`]: [`BrokerError`], the crate's one error enum;
//! - [`dedup`]: send de-duplication: a repeated send of a message id
//!   within a window is answered with the original result, not stored
//!   again (also across a restart, from the store's message-id index).
//!
//! The domain layer, where the broker's decisions are made, over that
//! core (async, but no gRPC types):
//!
//! - [`produce`]: the one send path for every kind of message (route,
//!   de-duplicate, admit under back-pressure, write or park; the outcome
//!   as [`produce::Sent`]), ending transactions, and the transaction
//!   checker;
//! - [`consume`]: receive with long polling and `auto_renew`, ack, change
//!   of invisibility, dead-lettering, pull and offsets, message query and
//!   lag;
//! - [`routes`]: where a topic's queues are, for routes and push-consumer
//!   assignments, across brokers when name servers are configured;
//! - `wake` (long-poll wake-ups and the store listener) and [`Closing`]
//!   (the shutdown signal) serve both.
//!
//! On top of it, the network edge, which converts and maps and decides
//! nothing of its own:
//!
//! - [`grpc`]: the `apache.rocketmq.v2.MessagingService` ([`grpc::Messaging`])
//!   and Tern's `TernAdmin` service ([`grpc::Admin`]: topics, groups with
//!   lag, cluster status, message query). Protobuf requests become
//!   validated domain values at the edge, and [`BrokerError`] is mapped to
//!   RocketMQ status codes in one place;
//! - [`metrics`]: Prometheus metrics and the HTTP port serving them with
//!   `/healthz` and `/readyz`;
//! - [`cluster`]: with name servers configured, registration of the
//!   topic and group table with each of them (streamed in chunks),
//!   heartbeats, and routes and assignments across all brokers;
//! - [`Broker`]: opens the store, registry and consumption state of one
//!   data directory, wires the domain and serves both services with tonic
//!   (and the HTTP port if configured), with a graceful shutdown.
//!
//! Still to come: TLS and authentication.
#![forbid(unsafe_code)]

pub mod auth;
mod closing;
pub mod cluster;
mod codec;
pub mod consume;
pub mod dedup;
pub mod error;
pub mod filter;
mod fsutil;
pub mod grpc;
mod journal;
pub mod meta;
pub mod metrics;
pub(crate) mod park;
pub mod pop;
pub mod produce;
pub mod receipt;
pub mod replica;
pub mod routes;
mod server;
mod task;
mod testutil;
pub mod timer;
pub mod txn;
mod wake;
mod wire;

pub use auth::AuthConfig;
pub use closing::Closing;
pub use dedup::DedupConfig;
pub use error::{BrokerError, Result};
pub use filter::{Filter, SqlFilter, TagFilter};
pub use meta::{GroupConfig, MessageType, Permission, Registry, RegistryLimits, TopicConfig};
pub use pop::{Delivery, Pop, PopConfig, QueueStats};
pub use receipt::{Receipt, ReceiptCodec, ReceiptError};
pub use server::{Broker, BrokerConfig};
