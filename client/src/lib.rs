//! A Rust client for Tern, used by the `tern` command-line tool.
//!
//! - [`AdminClient`]: Tern's admin API (`tern.admin.v1.TernAdmin`):
//!   create, update, describe, list and delete topics and consumer groups,
//!   a group's lag per queue, cluster status, and finding stored messages
//!   by id, key or store time; users and their access rules.
//! - [`MessagingClient`]: a small client of the RocketMQ 5 messaging
//!   service (`apache.rocketmq.v2.MessagingService`): send, receive and
//!   acknowledge. It is meant for tools and tests; applications should use
//!   an official RocketMQ 5 SDK.
//!
//! Both take an access point as `host:port` (optionally `http://host:port`;
//! several separated by `;` are tried in order, see [`Endpoints`]), connect
//! within a timeout, and put a timeout on every call. Both return plain
//! Rust values, checked when they arrive ([`Topic`], [`GroupDetails`],
//! [`ReceivedMessage`]...), never protobuf types. Every failure is a
//! [`ClientError`] that reads as one line with the status the server gave.
//!
//! For a broker with authentication on, both sign every request with a
//! user's [`Credentials`] (`with_credentials`), as the RocketMQ SDKs do.
#![forbid(unsafe_code)]

mod admin;
mod credentials;
mod endpoint;
mod error;
mod message_id;
mod messages;
mod messaging;
mod route;
mod types;
mod users;
mod wire;

pub use admin::AdminClient;
pub use credentials::{AUTHORIZATION_HEADER, Credentials, DATE_TIME_HEADER};
pub use endpoint::{DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoints, error_chain};
pub use error::{ClientError, code_name, grpc_code_name};
pub use message_id::MessageIdGenerator;
pub use messages::{OutgoingMessage, ReceiveOptions, ReceivedMessage, SendReceipt};
pub use messaging::{CLIENT_ID_HEADER, LANGUAGE_HEADER, MessagingClient, PROTOCOL_HEADER};
pub use tern_model::{GroupName, MessageType, NameError, Permission, TopicName, UnknownName};
pub use types::{
    BrokerStatus, ClusterStatus, Group, GroupDetails, GroupSpec, MessageQuery, MessageQueryResult,
    QueueLag, QueueRange, ReplicaProgress, ReplicaStatus, StoreStats, StoredMessage, Topic,
    TopicDetails, TopicLag, TopicSpec,
};
pub use users::{AccessRule, Action, CreatedUser, Decision, ResourceKind, User, UserKind};
