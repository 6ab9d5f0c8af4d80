//! [`ClientError`], the one error type of this crate.

use tern_model::{NameError, UnknownName};
use tern_protocol::v2::Code;

/// Why a call to Tern failed.
///
/// Every variant renders as one line naming what was attempted and, for
/// failures the broker reported, its status code and message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint text is not `host:port` (optionally `http://host:port`,
    /// several separated by `;`).
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The text given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No endpoint accepted a connection.
    #[error("cannot connect to {endpoints}: {reason}")]
    Unreachable {
        /// The endpoints tried, as given.
        endpoints: String,
        /// What the last attempt reported.
        reason: String,
    },

    /// A topic or group name is invalid; nothing was sent.
    #[error(transparent)]
    InvalidName(#[from] NameError),

    /// An argument is out of range; nothing was sent.
    #[error("{0}")]
    InvalidArgument(String),

    /// The admin service answered with a gRPC error status, or the call
    /// failed on the way (timeout, connection lost).
    #[error("{action}: {}: {message}", grpc_code_name(*.code))]
    Grpc {
        /// What was being done, e.g. `creating topic orders`.
        action: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },

    /// The messaging service answered with a RocketMQ status other than
    /// OK.
    #[error("{action}: {} ({}): {message}", code_name(*.code), .code)]
    Broker {
        /// What was being done, e.g. `sending to topic orders`.
        action: String,
        /// The RocketMQ status code (`apache.rocketmq.v2.Code`), e.g. 40402.
        code: i32,
        /// The status message.
        message: String,
    },

    /// The answer did not have the shape the protocol promises.
    #[error("{action}: unexpected response: {detail}")]
    BadResponse {
        /// What was being done.
        action: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

/// A message type or permission name that names none of them, as
/// [`ClientError::InvalidArgument`].
impl From<UnknownName> for ClientError {
    fn from(e: UnknownName) -> Self {
        Self::InvalidArgument(e.to_string())
    }
}

impl ClientError {
    /// A [`ClientError::Grpc`] from a failed call.
    pub(crate) fn grpc(action: impl Into<String>, status: &tonic::Status) -> Self {
        let message = if status.message().is_empty() {
            status.code().description().to_owned()
        } else {
            status.message().to_owned()
        };
        Self::Grpc {
            action: action.into(),
            code: status.code(),
            message,
        }
    }

    /// A [`ClientError::BadResponse`].
    pub(crate) fn bad_response(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::BadResponse {
            action: action.into(),
            detail: detail.into(),
        }
    }

    /// The RocketMQ status code, for [`ClientError::Broker`] errors.
    pub fn rocketmq_code(&self) -> Option<Code> {
        match self {
            Self::Broker { code, .. } => Code::try_from(*code).ok(),
            _ => None,
        }
    }

    /// The gRPC status code, for [`ClientError::Grpc`] errors.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        match self {
            Self::Grpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The canonical name of a gRPC status code, e.g. `NOT_FOUND`.
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The protocol name of a RocketMQ status code, e.g. `TOPIC_NOT_FOUND`.
pub fn code_name(code: i32) -> &'static str {
    Code::try_from(code).map_or("UNKNOWN_CODE", |c| c.as_str_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_the_status() {
        let e = ClientError::grpc(
            "describing topic orders",
            &tonic::Status::not_found("topic orders does not exist"),
        );
        assert_eq!(
            e.to_string(),
            "describing topic orders: NOT_FOUND: topic orders does not exist"
        );
        assert_eq!(e.grpc_code(), Some(tonic::Code::NotFound));
        let e = ClientError::Broker {
            action: "sending to topic orders".into(),
            code: Code::TopicNotFound as i32,
            message: "topic orders does not exist".into(),
        };
        assert_eq!(
            e.to_string(),
            "sending to topic orders: TOPIC_NOT_FOUND (40402): topic orders does not exist"
        );
        assert_eq!(e.rocketmq_code(), Some(Code::TopicNotFound));
    }
}
