//! The Tern broker: the server that RocketMQ 5 gRPC SDKs talk to.
//!
//! This crate is a placeholder; nothing in it runs yet. It will hold:
//!
//! - the `apache.rocketmq.v2.MessagingService` gRPC service (route and
//!   assignment queries, send, receive, ack, change invisible duration,
//!   heartbeat, the telemetry stream), which turns protobuf requests into
//!   validated `tern-model` values at the edge and maps errors to RocketMQ
//!   status codes in one place;
//! - the message path over `tern-store`: appending sent messages to the commit
//!   log and serving consumers from the per-queue indexes;
//! - consumer groups: subscriptions, per-queue consumer offsets and their
//!   persistence, and the assignment of queues to clients;
//! - receipt handles for pop-style consumption: issuing them, tracking
//!   invisibility deadlines, redelivery, and retry and dead-letter topics;
//! - an admin service for managing topics and consumer groups, used by
//!   `tern-client` and the operator;
//! - metrics describing traffic, lag and storage.
#![forbid(unsafe_code)]
