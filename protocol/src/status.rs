//! RocketMQ [`Status`] values and the client-id check that every
//! `MessagingService` RPC starts with, shared by the broker and the name
//! server.

use tonic::metadata::MetadataMap;

use crate::v2::{Code, Status};

/// Metadata header naming the client; required on every call.
pub const CLIENT_ID_HEADER: &str = "x-mq-client-id";

/// A status with `code` and `message`.
pub fn status(code: Code, message: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: message.into(),
    }
}

/// `OK`.
pub fn ok() -> Status {
    status(Code::Ok, "OK")
}

/// The client id in `md`'s [`CLIENT_ID_HEADER`], trimmed;
/// `CLIENT_ID_REQUIRED` if it is missing, not text, or blank.
pub fn client_id(md: &MetadataMap) -> Result<String, Status> {
    let id = md
        .get(CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if id.is_empty() {
        return Err(status(
            Code::ClientIdRequired,
            format!("the {CLIENT_ID_HEADER} metadata header is required"),
        ));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tonic::metadata::MetadataValue;

    use super::*;

    fn md(id: Option<&str>) -> MetadataMap {
        let mut md = MetadataMap::new();
        if let Some(id) = id {
            md.insert(CLIENT_ID_HEADER, MetadataValue::try_from(id).unwrap());
        }
        md
    }

    #[test]
    fn statuses() {
        assert_eq!((ok().code, ok().message.as_str()), (Code::Ok as i32, "OK"));
        let s = status(Code::TopicNotFound, "no topic t");
        assert_eq!((s.code, s.message.as_str()), (40402, "no topic t"));
    }

    #[test]
    fn client_id_is_required() {
        assert_eq!(client_id(&md(Some(" host@1@a "))).unwrap(), "host@1@a");
        for bad in [None, Some(""), Some("   ")] {
            let s = client_id(&md(bad)).unwrap_err();
            assert_eq!(s.code, Code::ClientIdRequired as i32, "{bad:?}");
            assert!(s.message.contains(CLIENT_ID_HEADER));
        }
    }
}
