//! A topic's [`MessageType`] and [`Permission`] (from `tern-model`) to and
//! from their protobuf forms: the admin API's enums ([`admin::MessageType`],
//! [`admin::Permission`]) and RocketMQ's ([`v2::Permission`], the
//! [`v2::MessageType`]s a topic accepts).
//!
//! Every crate converts them here. What an unset (`UNSPECIFIED`, 0) field
//! means depends on the message, so decoding reports it as `None` and
//! leaves the choice to the caller.

use std::fmt;

use tern_model::{MessageType, Permission};

use crate::{admin, v2};

impl From<MessageType> for admin::MessageType {
    fn from(t: MessageType) -> Self {
        match t {
            MessageType::Normal => Self::Normal,
            MessageType::Fifo => Self::Fifo,
            MessageType::Delay => Self::Delay,
            MessageType::Transaction => Self::Transaction,
            MessageType::Mixed => Self::Mixed,
        }
    }
}

impl From<Permission> for admin::Permission {
    fn from(p: Permission) -> Self {
        match p {
            Permission::ReadWrite => Self::ReadWrite,
            Permission::Read => Self::Read,
            Permission::Write => Self::Write,
        }
    }
}

impl From<Permission> for v2::Permission {
    fn from(p: Permission) -> Self {
        match p {
            Permission::ReadWrite => Self::ReadWrite,
            Permission::Read => Self::Read,
            Permission::Write => Self::Write,
        }
    }
}

/// An enum field holding a number that names none of its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownValue {
    /// What the field holds, e.g. `message type`.
    pub what: &'static str,
    /// The number it holds.
    pub value: i32,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {}", self.what, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// The message type an admin `message_type` field holds: `None` for
/// `MESSAGE_TYPE_UNSPECIFIED`.
pub fn message_type(value: i32) -> Result<Option<MessageType>, UnknownValue> {
    match admin::MessageType::try_from(value) {
        Ok(admin::MessageType::Unspecified) => Ok(None),
        Ok(admin::MessageType::Normal) => Ok(Some(MessageType::Normal)),
        Ok(admin::MessageType::Fifo) => Ok(Some(MessageType::Fifo)),
        Ok(admin::MessageType::Delay) => Ok(Some(MessageType::Delay)),
        Ok(admin::MessageType::Transaction) => Ok(Some(MessageType::Transaction)),
        Ok(admin::MessageType::Mixed) => Ok(Some(MessageType::Mixed)),
        Err(_) => Err(UnknownValue {
            what: "message type",
            value,
        }),
    }
}

/// The permission an admin `permission` field holds: `None` for
/// `PERMISSION_UNSPECIFIED`.
pub fn permission(value: i32) -> Result<Option<Permission>, UnknownValue> {
    match admin::Permission::try_from(value) {
        Ok(admin::Permission::Unspecified) => Ok(None),
        Ok(admin::Permission::ReadWrite) => Ok(Some(Permission::ReadWrite)),
        Ok(admin::Permission::Read) => Ok(Some(Permission::Read)),
        Ok(admin::Permission::Write) => Ok(Some(Permission::Write)),
        Err(_) => Err(UnknownValue {
            what: "permission",
            value,
        }),
    }
}

/// The RocketMQ message types a topic of type `t` accepts, as a route's
/// `MessageQueue.accept_message_types` lists them.
pub fn accepted_types(t: MessageType) -> Vec<i32> {
    use v2::MessageType as M;
    let all = match t {
        MessageType::Normal => vec![M::Normal],
        MessageType::Fifo => vec![M::Fifo],
        MessageType::Delay => vec![M::Delay],
        MessageType::Transaction => vec![M::Transaction],
        MessageType::Mixed => vec![M::Normal, M::Fifo, M::Delay, M::Transaction],
    };
    all.into_iter().map(|m| m as i32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_values_survive_the_round_trip() {
        for t in MessageType::ALL {
            assert_eq!(
                message_type(admin::MessageType::from(t) as i32),
                Ok(Some(t))
            );
        }
        for p in Permission::ALL {
            assert_eq!(permission(admin::Permission::from(p) as i32), Ok(Some(p)));
        }
        assert_eq!((message_type(0), permission(0)), (Ok(None), Ok(None)));
        let err = message_type(99).unwrap_err();
        assert_eq!(err.to_string(), "unknown message type 99");
        assert_eq!(
            permission(-1).unwrap_err().to_string(),
            "unknown permission -1"
        );
    }

    #[test]
    fn rocketmq_values() {
        assert_eq!(v2::Permission::from(Permission::Read), v2::Permission::Read);
        assert_eq!(
            v2::Permission::from(Permission::Write),
            v2::Permission::Write
        );
        assert_eq!(
            v2::Permission::from(Permission::ReadWrite),
            v2::Permission::ReadWrite
        );
        assert_eq!(accepted_types(MessageType::Fifo), [2]);
        assert_eq!(accepted_types(MessageType::Mixed), [1, 2, 3, 4]);
    }
}
