//! The Tern broker: the server that RocketMQ 5 gRPC SDKs talk to.
//!
//! What exists today is the broker's domain core, plain blocking Rust with
//! no network code:
//!
//! - [`meta`]: the registry of topics (queue count, message type,
//!   permission) and consumer groups (FIFO flag, retry limit), validated
//!   at construction and persisted as JSON;
//! - [`receipt`]: receipt handles, opaque strings naming one delivery,
//!   signed with HMAC-SHA256 under a per-broker secret kept in the data
//!   directory;
//! - [`filter`]: RocketMQ tag filter expressions (`*`, `a || b`);
//! - [`pop`]: POP-style consumption per (group, topic, queue): receive
//!   with invisibility, redelivery with rising attempt numbers, ack,
//!   change of invisibility, dead-lettering to `%DLQ%<group>`, committed
//!   offsets in the store, and a journal that keeps all of it across a
//!   restart;
//! - [`error`]: [`BrokerError`], the crate's one error enum, whose
//!   variants the gRPC edge maps to RocketMQ status codes.
//!
//! Still to come, on top of this core:
//!
//! - the `apache.rocketmq.v2.MessagingService` gRPC service (routes and
//!   assignments, send, receive with long polling, ack, change invisible
//!   duration, dead-letter forwarding, heartbeat, the telemetry stream),
//!   turning protobuf requests into validated values at the edge and
//!   mapping [`BrokerError`] to status codes in one place;
//! - the send path (validation of message types against topics, delay and
//!   transaction messages), FIFO ordering by message group rather than by
//!   queue, and renewal of invisibility for push consumers;
//! - an admin service for topics and groups, used by `tern-client` and the
//!   operator, and metrics of traffic, lag and storage.
#![forbid(unsafe_code)]

mod codec;
pub mod error;
pub mod filter;
mod fsutil;
pub mod meta;
pub mod pop;
pub mod receipt;

pub use error::{BrokerError, Result};
pub use filter::TagFilter;
pub use meta::{GroupConfig, MessageType, Permission, Registry, TopicConfig};
pub use pop::{Delivery, Pop, PopConfig, QueueStats};
pub use receipt::{Receipt, ReceiptCodec, ReceiptError};
