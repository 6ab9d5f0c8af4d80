//! Domain types shared by every Tern crate: validated topic and group names,
//! messages as producers hand them over, the limits that apply to them, and
//! a topic's message type and permission.
//!
//! This crate does no I/O (it reads only the system clock, for [`now_ms`]). Values are validated once, when they are built
//! (`TopicName::new`, `Message::validate`), so the layers beyond the network
//! edge can rely on them.
#![forbid(unsafe_code)]

mod message;
mod name;
mod topic;

pub use message::{KIND_MASK, Message, MessageError, MessageKind, now_ms, system, tag_hash};
pub use name::{GroupName, NameError, TopicName};
pub use topic::{MessageType, Permission, UnknownName};

/// Largest message body accepted by default (4 MiB, as RocketMQ).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
