//! The one place that turns broker errors and refused requests into
//! RocketMQ [`Status`] values.
//!
//! Codes the crates.io `rocketmq` 5.0.0 client does not know (it panics on
//! them) are replaced by older, more general codes when the client says
//! its language is RUST and does not declare a protocol version of 2.1 or
//! later (see [`Client::legacy`]). The plain status constructors and the
//! client-id check are `tern_protocol::status`, shared with the name
//! server.

use tern_model::MessageError;
pub use tern_protocol::status::CLIENT_ID_HEADER;
pub(crate) use tern_protocol::status::{ok, status};
use tern_protocol::v2::{Code, Status};
use tonic::Request;

use crate::error::BrokerError;

/// Metadata header naming the client's SDK language.
pub const LANGUAGE_HEADER: &str = "x-mq-language";
/// Metadata header with the protocol version the client was built
/// against (`2.0.0` for the crates.io `rocketmq` 5.0.0 client).
pub const PROTOCOL_VERSION_HEADER: &str = "x-mq-protocol-version";

/// Whether a client built against protocol `version` (`major.minor...`)
/// knows the codes added after 2.0: any version from 2.1 on.
fn knows_newer_codes(version: &str) -> bool {
    let mut parts = version.trim().split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= (2, 1),
        _ => false,
    }
}

/// Who is calling, from the request metadata.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: String,
    /// A client whose code enum predates 40019, 40020, 40404, 41302, 42901
    /// and 42902 (the Rust SDK): it gets older codes instead.
    pub legacy: bool,
}

impl Client {
    /// Reads the caller from `req`'s metadata; `CLIENT_ID_REQUIRED` if the
    /// client id is missing or empty.
    pub fn of<T>(req: &Request<T>) -> Result<Self, Status> {
        let md = req.metadata();
        let header = |name| md.get(name).and_then(|v| v.to_str().ok());
        let legacy = header(LANGUAGE_HEADER).is_some_and(|l| l.eq_ignore_ascii_case("RUST"))
            && !header(PROTOCOL_VERSION_HEADER).is_some_and(knows_newer_codes);
        Ok(Self {
            id: tern_protocol::status::client_id(md)?,
            legacy,
        })
    }

    /// `code`, or the older code that stands for it for a legacy client.
    pub fn code(&self, code: Code) -> Code {
        if !self.legacy {
            return code;
        }
        match code {
            Code::MessageBodyEmpty => Code::BadRequest,
            Code::IllegalOffset | Code::IllegalLiteTopic => Code::BadRequest,
            Code::OffsetNotFound => Code::NotFound,
            Code::LiteTopicQuotaExceeded | Code::LiteSubscriptionQuotaExceeded => {
                Code::TooManyRequests
            }
            c => c,
        }
    }

    /// A status with `code` as this client can take it.
    pub fn status(&self, code: Code, message: impl Into<String>) -> Status {
        status(self.code(code), message)
    }

    /// The status that answers `err`, for this client.
    pub fn error(&self, err: &BrokerError) -> Status {
        self.status(code_of(err), err.to_string())
    }
}

/// The overall status of per-entry results: the common one if every entry
/// has the same code, else `MULTIPLE_RESULTS`.
pub(crate) fn overall<'a>(entries: impl IntoIterator<Item = &'a Status>) -> Status {
    let mut it = entries.into_iter();
    let Some(first) = it.next() else {
        return ok();
    };
    if it.all(|s| s.code == first.code) {
        first.clone()
    } else {
        status(Code::MultipleResults, "entries have different results")
    }
}

/// The RocketMQ code of a broker error.
fn code_of(err: &BrokerError) -> Code {
    match err {
        BrokerError::TopicNotFound(_) => Code::TopicNotFound,
        BrokerError::GroupNotFound(_) => Code::ConsumerGroupNotFound,
        // Not TOO_MANY_REQUESTS: that is flow control, which SDKs retry
        // at once (the Java push consumer after 20 ms), and the limit does
        // not lift by waiting; FORBIDDEN makes them back off (1 s) and
        // report it, with the limit named in the message.
        BrokerError::Forbidden(_) | BrokerError::LimitReached(_) => Code::Forbidden,
        BrokerError::WrongMessageType(_) => Code::MessagePropertyConflictWithType,
        BrokerError::Unsupported(_) => Code::Unsupported,
        BrokerError::InvalidTransactionId(_) => Code::InvalidTransactionId,
        BrokerError::TransactionEnded(_) => Code::NotFound,
        BrokerError::PollingTime(_) => Code::IllegalPollingTime,
        BrokerError::InvisibleTime(_) => Code::IllegalInvisibleTime,
        BrokerError::IllegalOffset(_) => Code::IllegalOffset,
        BrokerError::OffsetNotFound(_) => Code::OffsetNotFound,
        BrokerError::Precondition(_) => Code::PreconditionFailed,
        BrokerError::MessageNotFound(_) => Code::MessageNotFound,
        BrokerError::InvalidReceiptHandle(_) => Code::InvalidReceiptHandle,
        BrokerError::BodyTooLarge { .. } => Code::MessageBodyTooLarge,
        BrokerError::InvalidMessage(m) => message_code(m),
        BrokerError::DiskFull(_) | BrokerError::TooManyRequests(_) => Code::TooManyRequests,
        BrokerError::NotLeader(_) => Code::HaNotAvailable,
        BrokerError::TopicExists(_)
        | BrokerError::GroupExists(_)
        | BrokerError::QueueShrink { .. }
        | BrokerError::InvalidName(_)
        | BrokerError::Invalid(_) => Code::BadRequest,
        _ => Code::InternalError,
    }
}

fn message_code(err: &MessageError) -> Code {
    match err {
        MessageError::EmptyBody => Code::MessageBodyEmpty,
        MessageError::BodyTooLarge { .. } => Code::MessageBodyTooLarge,
        MessageError::EmptyMessageId => Code::IllegalMessageId,
        MessageError::FieldTooLong { field, .. } | MessageError::EmptyField { field } => {
            match *field {
                "message id" => Code::IllegalMessageId,
                "tag" => Code::IllegalMessageTag,
                "key" => Code::IllegalMessageKey,
                "property name" => Code::IllegalMessagePropertyKey,
                _ => Code::MessagePropertiesTooLarge,
            }
        }
        MessageError::TooMany { what: "keys", .. } => Code::IllegalMessageKey,
        MessageError::TooMany { .. } => Code::MessagePropertiesTooLarge,
        _ => Code::BadRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::ReceiptError;

    fn client(legacy: bool) -> Client {
        Client {
            id: "c".into(),
            legacy,
        }
    }

    #[test]
    fn errors_map_to_codes() {
        let c = client(false);
        let code = |e: BrokerError| c.error(&e).code;
        assert_eq!(
            code(BrokerError::TopicNotFound("t".into())),
            Code::TopicNotFound as i32
        );
        assert_eq!(
            code(BrokerError::GroupNotFound("g".into())),
            Code::ConsumerGroupNotFound as i32
        );
        assert_eq!(code(ReceiptError::Stale.into()), 40013);
        assert_eq!(
            code(BrokerError::DiskFull("x".into())),
            Code::TooManyRequests as i32
        );
        assert_eq!(
            code(MessageError::EmptyBody.into()),
            Code::MessageBodyEmpty as i32
        );
        assert_eq!(
            code(BrokerError::LimitReached("x".into())),
            Code::Forbidden as i32
        );
        assert_eq!(
            code(BrokerError::Failed("x".into())),
            Code::InternalError as i32
        );
    }

    #[test]
    fn protocol_versions() {
        for (v, newer) in [
            ("2.0.0", false),
            ("2.0", false),
            ("1.9", false),
            ("2.1.2", true),
            ("3.0", true),
            ("x", false),
            ("", false),
        ] {
            assert_eq!(knows_newer_codes(v), newer, "{v}");
        }
    }

    #[test]
    fn domain_refusals_map_to_their_codes() {
        let (c, rust) = (client(false), client(true));
        let cases = [
            (
                BrokerError::WrongMessageType("x".into()),
                Code::MessagePropertyConflictWithType,
            ),
            (BrokerError::Unsupported("x".into()), Code::Unsupported),
            (
                BrokerError::InvalidTransactionId("x".into()),
                Code::InvalidTransactionId,
            ),
            (BrokerError::TransactionEnded("x".into()), Code::NotFound),
            (
                BrokerError::PollingTime("x".into()),
                Code::IllegalPollingTime,
            ),
            (
                BrokerError::InvisibleTime("x".into()),
                Code::IllegalInvisibleTime,
            ),
            (BrokerError::IllegalOffset("x".into()), Code::IllegalOffset),
            (
                BrokerError::OffsetNotFound("x".into()),
                Code::OffsetNotFound,
            ),
            (
                BrokerError::Precondition("x".into()),
                Code::PreconditionFailed,
            ),
        ];
        for (e, code) in cases {
            let s = c.error(&e);
            assert_eq!(s.code, code as i32, "{e:?}");
            assert_eq!(s.message, "x", "the message is the domain's own");
        }
        // Codes the Rust SDK predates become older ones.
        let offset = rust.error(&BrokerError::IllegalOffset("x".into()));
        assert_eq!(offset.code, Code::BadRequest as i32);
        let missing = rust.error(&BrokerError::OffsetNotFound("x".into()));
        assert_eq!(missing.code, Code::NotFound as i32);
    }

    #[test]
    fn legacy_clients_get_older_codes() {
        let e: BrokerError = MessageError::EmptyBody.into();
        assert_eq!(client(true).error(&e).code, Code::BadRequest as i32);
        assert_eq!(client(true).code(Code::OffsetNotFound), Code::NotFound);
        assert_eq!(client(true).code(Code::TopicNotFound), Code::TopicNotFound);
    }

    #[test]
    fn overall_status() {
        let a = ok();
        let b = status(Code::BadRequest, "x");
        assert_eq!(overall([&a, &a]).code, Code::Ok as i32);
        assert_eq!(overall([&a, &b]).code, Code::MultipleResults as i32);
        assert_eq!(overall([&b, &b]).code, Code::BadRequest as i32);
    }
}
