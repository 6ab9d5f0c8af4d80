//! ReceiveMessage: POP-style receive with long polling.

use std::time::{Duration, Instant};

use tern_protocol::v2::{
    Code, FilterType, ReceiveMessageRequest, ReceiveMessageResponse, Status,
    receive_message_response::Content,
};
use tonic::metadata::MetadataMap;

use super::convert::{duration_ms, group_name, message_out, now_ms, timestamp, topic_name};
use super::status::{Client, ok};
use super::{DEFAULT_INVISIBLE, MAX_LONG_POLLING, Messaging, blocking};
use crate::filter::TagFilter;
use crate::meta::GroupConfig;

/// Pause between two tries of a long poll.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Part of the client's deadline kept for the answer to reach it.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Most messages one receive returns.
const MAX_BATCH: usize = 1024;

/// The stream items of one receive.
pub(super) type Items = Vec<ReceiveMessageResponse>;

fn item(content: Content) -> ReceiveMessageResponse {
    ReceiveMessageResponse {
        content: Some(content),
    }
}

fn failed(status: Status) -> Items {
    vec![item(Content::Status(status))]
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
            Err(status) => failed(status),
        }
    }

    async fn try_receive(
        &self,
        c: &Client,
        req: ReceiveMessageRequest,
        deadline: Option<Duration>,
    ) -> Result<Items, Status> {
        let started = Instant::now();
        let sh = &self.shared;
        let group = group_name(c, req.group.as_ref())?;
        let mq = req.message_queue.unwrap_or_default();
        let topic = topic_name(c, mq.topic.as_ref())?;
        let topic = sh.registry.topic(topic.as_str()).map_err(|e| c.error(&e))?;
        let registry = sh.registry.clone();
        let group = blocking(move || registry.ensure_group(GroupConfig::with_defaults(group)?))
            .await
            .map_err(|e| c.error(&e))?;
        let filter = filter(c, req.filter_expression.as_ref())?;
        let max = usize::try_from(req.batch_size)
            .unwrap_or(0)
            .clamp(1, MAX_BATCH);
        let invisible_ms = match &req.invisible_duration {
            Some(d) if duration_ms(d) > 0 => duration_ms(d),
            Some(d) => {
                return Err(c.status(
                    Code::IllegalInvisibleTime,
                    format!(
                        "invisible duration must be positive, not {} ms",
                        duration_ms(d)
                    ),
                ));
            }
            None => i64::try_from(DEFAULT_INVISIBLE.as_millis()).unwrap_or(60_000),
        };
        let queue = u32::try_from(mq.id).ok();
        let mut poll = req
            .long_polling_timeout
            .as_ref()
            .map_or(MAX_LONG_POLLING, |d| {
                Duration::from_millis(u64::try_from(duration_ms(d)).unwrap_or(0))
            })
            .min(MAX_LONG_POLLING);
        if let Some(d) = deadline {
            poll = poll.min(d.saturating_sub(DEADLINE_MARGIN));
        }
        loop {
            let (pop, g, t, f) = (sh.pop.clone(), group.clone(), topic.clone(), filter.clone());
            let now = now_ms();
            let got = blocking(move || pop.receive(&g, &t, queue, max, invisible_ms, &f, now))
                .await
                .map_err(|e| c.error(&e))?;
            if !got.is_empty() {
                let mut items = Vec::with_capacity(got.len() + 2);
                items.push(item(Content::Status(ok())));
                items.extend(
                    got.into_iter()
                        .map(|d| item(Content::Message(message_out(d, now)))),
                );
                items.push(item(Content::DeliveryTimestamp(timestamp(now))));
                return Ok(items);
            }
            if started.elapsed() + POLL_INTERVAL > poll {
                return Err(c.status(Code::MessageNotFound, "no new message"));
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = self.closed() => {
                    return Err(c.status(Code::MessageNotFound, "the broker is shutting down"));
                }
            }
        }
    }
}

/// The tag filter of a request; `*` when none is given.
fn filter(
    c: &Client,
    f: Option<&tern_protocol::v2::FilterExpression>,
) -> Result<TagFilter, Status> {
    let Some(f) = f else {
        return TagFilter::parse("*").map_err(|e| c.error(&e));
    };
    if f.r#type == FilterType::Sql as i32 {
        return Err(c.status(
            Code::IllegalFilterExpression,
            "SQL92 filter expressions are not supported yet; use a TAG expression",
        ));
    }
    let expr = if f.expression.trim().is_empty() {
        "*"
    } else {
        f.expression.as_str()
    };
    TagFilter::parse(expr).map_err(|e| c.status(Code::IllegalFilterExpression, e.to_string()))
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
