//! Tern's gRPC protocols, as Rust types and tonic services.
//!
//! The `.proto` files under `protocol/proto/` are compiled at build time
//! (by `protox`, so no system `protoc` is needed, and `tonic-prost-build`).
//! Both the server side (a trait to implement, plus a tower service that
//! wraps it) and the client side are generated for every service.
//!
//! - [`v2`]: the RocketMQ 5 gRPC protocol, package `apache.rocketmq.v2`
//!   (protocol release v2.1.2). These are Tern's own `.proto` files, but
//!   every message, field number, type, enum value and RPC matches the
//!   public definitions, so the official RocketMQ 5 client SDKs can talk to
//!   a server built on [`v2::messaging_service_server::MessagingService`].
//!   Its 17 RPCs are served at `/apache.rocketmq.v2.MessagingService/<Rpc>`.
//!   The package also holds the reference proxy's small `Admin` service
//!   (log level), kept for completeness.
//! - [`admin`]: Tern's own administration API, package `tern.admin.v1`,
//!   service `TernAdmin`: topics, consumer groups (with per-queue lag) and
//!   cluster status. Used by the CLI and the operator through `tern-client`.
//! - [`nameserver`]: Tern's name server protocol, package
//!   `tern.nameserver.v1`, service `TernNameserver`: brokers register their
//!   topic and group tables (streamed in chunks) and heartbeat; routes and
//!   the live brokers can be queried.
//! - [`settings`]: the settings a server answers a client's Telemetry
//!   handshake with, as pure functions shared by the broker and the name
//!   server.
//! - [`status`]: RocketMQ status values and the client-id header check
//!   every `MessagingService` RPC starts with.
//! - [`endpoints`]: RocketMQ endpoints of a `host:port` address.
//! - [`convert`]: a topic's message type and permission (the
//!   `tern-model` enums) to and from the admin and RocketMQ enums.
//! - [`telemetry`]: the server side of the Telemetry stream, answering
//!   each client's settings.
//!
//! [`FILE_DESCRIPTOR_SET`] holds the encoded descriptors of all of the above
//! (and the well-known types they import), e.g. for gRPC server reflection.
//!
//! Status codes: most RocketMQ RPCs answer with gRPC status OK and put the
//! outcome in the response body, as a [`v2::Status`] whose `code` is a
//! [`v2::Code`] (for example `v2::Code::TopicNotFound`, 40402).

#![forbid(unsafe_code)]

/// The RocketMQ 5 gRPC protocol (`apache.rocketmq.v2`): messages, enums,
/// `MessagingService` and `Admin`, with their servers and clients.
///
/// Generated code. Enum values lose the prefix that repeats the enum's
/// name, and read as Rust names: `Code::Ok`, `Code::TopicNotFound`,
/// `Permission::ReadWrite`, `AddressScheme::IPv4`.
// Generated code: the stream items ReceiveMessageResponse and
// PullMessageResponse are oneofs whose `message` variant is much larger than
// the others. Boxing it would cost an allocation per delivered message and
// change the generated API, so the lint is allowed here, on this module only.
#[allow(clippy::large_enum_variant)]
pub mod v2 {
    tonic::include_proto!("apache.rocketmq.v2");
}

/// Tern's own packages, nested as their names are, since the generated
/// code of one names the other by a relative path.
mod tern {
    pub mod admin {
        pub mod v1 {
            tonic::include_proto!("tern.admin.v1");
        }
    }
    pub mod nameserver {
        pub mod v1 {
            tonic::include_proto!("tern.nameserver.v1");
        }
    }
    pub mod replication {
        pub mod v1 {
            tonic::include_proto!("tern.replication.v1");
        }
    }
}

/// Replication between a broker group's replicas (`tern.replication.v1`):
/// each call carries one Raft message encoded by `tern-replication`.
pub use tern::replication::v1 as replication;

/// Tern's administration API (`tern.admin.v1`): `TernAdmin` with its server
/// and client.
pub use tern::admin::v1 as admin;

/// Tern's name server protocol (`tern.nameserver.v1`): `TernNameserver`
/// with its server and client.
pub use tern::nameserver::v1 as nameserver;

pub mod convert;
pub mod endpoints;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod status;
pub mod telemetry;

/// Encoded `google.protobuf.FileDescriptorSet` of every `.proto` file in
/// this crate and of the well-known types they import, without source
/// comments.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tern_protocol_descriptor.bin"));
