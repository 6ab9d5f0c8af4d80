//! A topic's two enumerated settings: which messages it accepts
//! ([`MessageType`]) and what clients may do with it ([`Permission`]).
//!
//! Each has two spellings, and neither may change, because files and
//! scripts hold them:
//!
//! - serde: upper snake case (`NORMAL`, `READ_WRITE`), as the broker's
//!   metadata log and configuration files store them;
//! - text ([`fmt::Display`], [`FromStr`], `as_str`): the lower-case names
//!   of the command line and of the CLI's JSON output (`normal`,
//!   `read-write`); parsing ignores ASCII case.
//!
//! Their protobuf forms are converted in `tern_protocol::convert`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MessageKind;

/// What kind of messages a topic accepts (RocketMQ's `MessageType`).
/// The default, [`MessageType::Normal`], is what a topic created without a
/// type gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    /// Plain messages.
    #[default]
    Normal,
    /// Messages delivered in order within their message group.
    Fifo,
    /// Messages delivered at a given time.
    Delay,
    /// Messages committed or rolled back by a transaction.
    Transaction,
    /// All four kinds above.
    Mixed,
}

impl MessageType {
    /// Every value, in protocol order.
    pub const ALL: [Self; 5] = [
        Self::Normal,
        Self::Fifo,
        Self::Delay,
        Self::Transaction,
        Self::Mixed,
    ];

    /// The lower-case name used on the command line and in the CLI's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Fifo => "fifo",
            Self::Delay => "delay",
            Self::Transaction => "transaction",
            Self::Mixed => "mixed",
        }
    }

    /// Whether a topic of this type accepts a message of kind `kind`.
    pub fn accepts(self, kind: MessageKind) -> bool {
        match self {
            Self::Mixed => true,
            Self::Normal => kind == MessageKind::Normal,
            Self::Fifo => kind == MessageKind::Fifo,
            Self::Delay => kind == MessageKind::Delay,
            Self::Transaction => kind == MessageKind::Transaction,
        }
    }
}

/// What clients may do with a topic's queues. The default,
/// [`Permission::ReadWrite`], is what a topic created without a permission
/// gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    /// Send and receive.
    #[default]
    ReadWrite,
    /// Receive only.
    Read,
    /// Send only.
    Write,
}

impl Permission {
    /// Every value.
    pub const ALL: [Self; 3] = [Self::ReadWrite, Self::Read, Self::Write];

    /// The name used on the command line and in the CLI's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadWrite => "read-write",
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Whether clients may receive from the topic.
    pub fn readable(self) -> bool {
        matches!(self, Self::ReadWrite | Self::Read)
    }

    /// Whether clients may send to the topic.
    pub fn writable(self) -> bool {
        matches!(self, Self::ReadWrite | Self::Write)
    }
}

/// A name that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of {expected}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    expected: String,
}

macro_rules! text_enum {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        given: s.to_owned(),
                        expected: Self::ALL.map(Self::as_str).join(", "),
                    })
            }
        }
    };
}

text_enum!(MessageType, "message type");
text_enum!(Permission, "permission");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for t in MessageType::ALL {
            assert_eq!(t.as_str().parse::<MessageType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        assert_eq!("FIFO".parse::<MessageType>(), Ok(MessageType::Fifo));
        assert_eq!(
            "Read-Write".parse::<Permission>(),
            Ok(Permission::ReadWrite)
        );
        let err = "batch".parse::<MessageType>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown message type `batch`; expected one of normal, fifo, delay, transaction, mixed"
        );
        assert!("read_write".parse::<Permission>().is_err());
    }

    #[test]
    fn serde_uses_the_metadata_spelling() {
        let json = serde_json::to_string(&(MessageType::Transaction, Permission::ReadWrite));
        assert_eq!(json.unwrap(), r#"["TRANSACTION","READ_WRITE"]"#);
        let back: (MessageType, Permission) = serde_json::from_str(r#"["MIXED","WRITE"]"#).unwrap();
        assert_eq!(back, (MessageType::Mixed, Permission::Write));
        assert!(serde_json::from_str::<MessageType>(r#""normal""#).is_err());
    }

    #[test]
    fn permissions_and_types() {
        assert!(Permission::ReadWrite.readable() && Permission::ReadWrite.writable());
        assert!(!Permission::Write.readable() && !Permission::Read.writable());
        assert!(MessageType::Mixed.accepts(MessageKind::Transaction));
        assert!(!MessageType::Normal.accepts(MessageKind::Fifo));
        assert!(MessageType::Delay.accepts(MessageKind::Delay));
        assert_eq!(
            (MessageType::default(), Permission::default()),
            (MessageType::Normal, Permission::ReadWrite)
        );
    }
}
