//! ReceiveMessage: protobuf in, [`crate::consume::Consume::receive`],
//! one stream item per delivered message out.

use std::time::Duration;

use tern_protocol::v2::{
    Code, FilterType, ReceiveMessageRequest, ReceiveMessageResponse, Status,
    receive_message_response::Content,
};
use tonic::metadata::MetadataMap;

use super::Messaging;
use super::convert::{duration_ms, group_name, message_out, timestamp, topic_name};
use super::status::{Client, ok};
use crate::consume::{Receive, polling_time};
use crate::filter::{Filter, SqlFilter, TagFilter};

/// The stream items of one receive.
pub(super) type Items = Vec<ReceiveMessageResponse>;

fn item(content: Content) -> ReceiveMessageResponse {
    ReceiveMessageResponse {
        content: Some(content),
    }
}

impl Messaging {
    /// Receives for `req`: `status OK`, one item per message and a
    /// `delivery_timestamp`; a single `MESSAGE_NOT_FOUND` status if
    /// nothing arrived within the long-polling time; a single status on
    /// any failure.
    pub(super) async fn receive(
        &self,
        c: &Client,
        req: ReceiveMessageRequest,
        deadline: Option<Duration>,
    ) -> Items {
        match self.try_receive(c, req, deadline).await {
            Ok(items) => items,
            Err(status) => vec![item(Content::Status(status))],
        }
    }

    async fn try_receive(
        &self,
        c: &Client,
        req: ReceiveMessageRequest,
        deadline: Option<Duration>,
    ) -> Result<Items, Status> {
        let group = group_name(c, req.group.as_ref())?;
        let mq = req.message_queue.unwrap_or_default();
        let topic = topic_name(c, mq.topic.as_ref())?;
        let filter = filter(c, req.filter_expression.as_ref())?;
        let asked = req.long_polling_timeout.as_ref().map(millis);
        let r = Receive {
            client: c.id.clone(),
            group,
            topic,
            filter,
            batch: usize::try_from(req.batch_size).unwrap_or(0),
            invisible_ms: req.invisible_duration.as_ref().map(duration_ms),
            auto_renew: req.auto_renew,
            poll: polling_time(asked, deadline).map_err(|e| c.error(&e))?,
        };
        let got = self
            .shared
            .consume
            .receive(r)
            .await
            .map_err(|e| c.error(&e))?;
        if got.deliveries.is_empty() {
            return Err(c.status(Code::MessageNotFound, "no new message"));
        }
        let mut items = Vec::with_capacity(got.deliveries.len() + 2);
        items.push(item(Content::Status(ok())));
        for d in got.deliveries {
            items.push(item(Content::Message(message_out(d, got.at_ms))));
        }
        items.push(item(Content::DeliveryTimestamp(timestamp(got.at_ms))));
        Ok(items)
    }
}

/// A protobuf duration as a [`Duration`] (negative: zero).
pub(super) fn millis(d: &prost_types::Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration_ms(d)).unwrap_or(0))
}

/// The filter of a request: its tag expression (`*` when none is given
/// or it is blank) or its SQL92 expression; `ILLEGAL_FILTER_EXPRESSION`
/// naming the problem if it does not parse.
pub(super) fn filter(
    c: &Client,
    f: Option<&tern_protocol::v2::FilterExpression>,
) -> Result<Filter, Status> {
    let Some(f) = f else {
        return Ok(Filter::ALL);
    };
    let parsed = if f.r#type == FilterType::Sql as i32 {
        SqlFilter::parse(&f.expression).map(Filter::Sql)
    } else {
        TagFilter::parse(&f.expression).map(Filter::Tag)
    };
    parsed.map_err(|e| {
        tracing::debug!(client = %c.id, error = %e, "refused a filter expression");
        c.status(Code::IllegalFilterExpression, e.to_string())
    })
}

/// The time left before the client's `grpc-timeout`, if it sent one.
pub(super) fn grpc_deadline(md: &MetadataMap) -> Option<Duration> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    if v.len() < 2 {
        return None;
    }
    let (n, unit) = v.split_at(v.len() - 1);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeout() {
        let mut md = MetadataMap::new();
        assert_eq!(grpc_deadline(&md), None);
        md.insert("grpc-timeout", "40000m".parse().unwrap());
        assert_eq!(grpc_deadline(&md), Some(Duration::from_secs(40)));
        md.insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(grpc_deadline(&md), Some(Duration::from_secs(3)));
        md.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(grpc_deadline(&md), None);
    }
}
