//! The broker's one error enum. Each variant is a distinct answer the gRPC
//! edge can map to a RocketMQ status code; the mapping lives there, in one
//! place.

use std::io;
use std::path::PathBuf;

use tern_model::{MessageError, NameError};
use tern_store::StoreError;

/// Everything the broker core can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// No such topic in the registry (TOPIC_NOT_FOUND).
    #[error("topic {0} does not exist")]
    TopicNotFound(String),

    /// A topic of that name is already registered.
    #[error("topic {0} already exists")]
    TopicExists(String),

    /// No such consumer group in the registry (CONSUMER_GROUP_NOT_FOUND).
    #[error("consumer group {0} does not exist")]
    GroupNotFound(String),

    /// A group of that name is already registered.
    #[error("consumer group {0} already exists")]
    GroupExists(String),

    /// A topic's queue count may grow but never shrink: consumers and
    /// offsets refer to the queues that exist.
    #[error("topic {topic} has {current} queues; the count cannot shrink to {requested}")]
    QueueShrink {
        topic: String,
        current: u32,
        requested: u32,
    },

    /// The topic's permission forbids the operation (FORBIDDEN).
    #[error("{0}")]
    Forbidden(String),

    /// A message of a kind its topic does not take, such as a delayed
    /// message sent to a FIFO topic (MESSAGE_PROPERTY_CONFLICT_WITH_TYPE).
    #[error("{0}")]
    WrongMessageType(String),

    /// A feature this broker does not offer as configured, such as
    /// transactions on a broker without them (UNSUPPORTED).
    #[error("{0}")]
    Unsupported(String),

    /// A transaction id this broker did not issue, or one that names
    /// another message or topic than the request (INVALID_TRANSACTION_ID).
    #[error("{0}")]
    InvalidTransactionId(String),

    /// A transaction that is no longer pending: committed, rolled back or
    /// resolved by default already (NOT_FOUND).
    #[error("{0}")]
    TransactionEnded(String),

    /// A receive whose long-polling time cannot be honoured: the caller's
    /// deadline leaves too little of it (ILLEGAL_POLLING_TIME).
    #[error("{0}")]
    PollingTime(String),

    /// An invisible duration that is not positive (ILLEGAL_INVISIBLE_TIME).
    #[error("{0}")]
    InvisibleTime(String),

    /// An offset outside what a queue holds, or negative (ILLEGAL_OFFSET).
    #[error("{0}")]
    IllegalOffset(String),

    /// A group with no stored offset in the queue asked about
    /// (OFFSET_NOT_FOUND).
    #[error("{0}")]
    OffsetNotFound(String),

    /// A request the broker's state does not allow now, such as moving an
    /// offset that POP consumption owns (PRECONDITION_FAILED).
    #[error("{0}")]
    Precondition(String),

    /// A receipt handle that is malformed, forged, or no longer current
    /// (INVALID_RECEIPT_HANDLE).
    #[error("invalid receipt handle: {0}")]
    InvalidReceiptHandle(#[from] ReceiptError),

    /// The message a request names is not (or no longer) there
    /// (MESSAGE_NOT_FOUND): a delayed message already delivered or
    /// recalled, a transaction already ended.
    #[error("{0}")]
    MessageNotFound(String),

    /// A topic or group name that breaks the naming rules.
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),

    /// Any other bad input (BAD_REQUEST or the matching ILLEGAL_* code).
    #[error("invalid request: {0}")]
    Invalid(String),

    /// A message body above the configured limit (MESSAGE_BODY_TOO_LARGE).
    #[error("message body is {len} bytes; the limit is {max}")]
    BodyTooLarge { len: usize, max: usize },

    /// A message that fails validation for another reason.
    #[error("invalid message: {0}")]
    InvalidMessage(MessageError),

    /// The disk is full; reads go on, writes are refused until space is
    /// freed.
    #[error("disk full: {0}")]
    DiskFull(String),

    /// The broker is overloaded; the client should back off and retry
    /// (TOO_MANY_REQUESTS).
    #[error("too many requests: {0}")]
    TooManyRequests(String),

    /// Creating a topic or group would pass a configured limit
    /// (`max_topics`, `max_groups`); what exists is still served. FORBIDDEN
    /// for RocketMQ clients, RESOURCE_EXHAUSTED for the admin API.
    #[error("limit reached: {0}")]
    LimitReached(String),

    /// Any other storage engine error.
    #[error("storage error: {0}")]
    Store(#[source] StoreError),

    /// A broker file (metadata, journal, key) is damaged.
    #[error("corrupt broker file {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The gRPC port's TLS could not be set up (a certificate file that
    /// cannot be read, a key that does not match).
    #[error("TLS: {0}")]
    Tls(#[from] tern_tls::TlsError),

    /// A write reached a replica that is not its group's leader.
    #[error("{0}")]
    NotLeader(String),

    /// An internal failure that leaves a component unusable (a poisoned
    /// lock, a failed journal write).
    #[error("broker failure: {0}")]
    Failed(String),
}

/// Why a receipt handle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Not a handle this broker could have issued: bad encoding, wrong
    /// length or version, impossible fields.
    #[error("malformed receipt handle: {0}")]
    Malformed(&'static str),
    /// Well-formed, but the tag does not match: forged, altered, or
    /// issued by another broker.
    #[error("receipt handle signature does not match")]
    Forged,
    /// Genuine but no longer current: the message was acknowledged,
    /// redelivered, or its invisibility was changed since.
    #[error("receipt handle is stale: the delivery it names is no longer current")]
    Stale,
    /// Genuine, but issued to another consumer group or for another topic
    /// than the request names.
    #[error("receipt handle was issued to group {group} for topic {topic}, not to this request's")]
    NotOwner { group: String, topic: String },
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// Store errors that have their own broker answer (a full disk, a body
/// over the limit, an invalid message) are lifted into those variants;
/// the rest are wrapped.
impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DiskFull { detail } => Self::DiskFull(detail),
            StoreError::InvalidMessage(MessageError::BodyTooLarge { len, max }) => {
                Self::BodyTooLarge { len, max }
            }
            StoreError::InvalidMessage(m) => Self::InvalidMessage(m),
            other => Self::Store(other),
        }
    }
}

impl From<MessageError> for BrokerError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::BodyTooLarge { len, max } => Self::BodyTooLarge { len, max },
            other => Self::InvalidMessage(other),
        }
    }
}

/// Attaches a path to an I/O error, mapping ENOSPC and EDQUOT to
/// [`BrokerError::DiskFull`].
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BrokerError {
    move |source| {
        let path = path.into();
        if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) {
            BrokerError::DiskFull(format!("{}: {source}", path.display()))
        } else {
            BrokerError::Io { path, source }
        }
    }
}

pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> BrokerError {
    BrokerError::Corrupt {
        path: path.into(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_classified() {
        let e: BrokerError = StoreError::DiskFull { detail: "x".into() }.into();
        assert!(matches!(e, BrokerError::DiskFull(_)));
        let e: BrokerError =
            StoreError::InvalidMessage(MessageError::BodyTooLarge { len: 5, max: 4 }).into();
        assert!(matches!(e, BrokerError::BodyTooLarge { len: 5, max: 4 }));
        let e: BrokerError = StoreError::Closed.into();
        assert!(matches!(e, BrokerError::Store(StoreError::Closed)));
    }
}
