//! Offset-based consumption at the edge: PullMessage, UpdateOffset,
//! GetOffset and QueryOffset (see [`crate::consume`] for what they do).

use std::time::Duration;

use tern_protocol::v2::{
    Code, GetOffsetRequest, MessageQueue, PullMessageRequest, PullMessageResponse,
    QueryOffsetPolicy, QueryOffsetRequest, Status, UpdateOffsetRequest,
    pull_message_response::Content,
};
use tern_store::StoredMessage;

use super::Messaging;
use super::convert::{group_name, message_out, now_ms, topic_name};
use super::receive::{filter, millis};
use super::status::{Client, ok};
use crate::consume::{OffsetPolicy, Pull, Pulled, pull_polling_time};
use crate::pop::Delivery;

fn item(c: Content) -> PullMessageResponse {
    PullMessageResponse { content: Some(c) }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The topic and queue id a request's message queue names.
fn queue_of(c: &Client, mq: Option<&MessageQueue>) -> Result<(tern_model::TopicName, i64), Status> {
    let mq = mq.ok_or_else(|| c.status(Code::BadRequest, "message_queue is required"))?;
    Ok((topic_name(c, mq.topic.as_ref())?, i64::from(mq.id)))
}

impl Messaging {
    /// PullMessage: `status`, the messages, then `next_offset`. Nothing
    /// new within the long-polling time: `MESSAGE_NOT_FOUND` and
    /// `next_offset`. An offset outside the stored range: `ILLEGAL_OFFSET`
    /// and the nearest valid `next_offset`. Other failures: one status.
    pub(super) async fn pull(
        &self,
        c: &Client,
        req: PullMessageRequest,
        deadline: Option<Duration>,
    ) -> Vec<PullMessageResponse> {
        match self.try_pull(c, req, deadline).await {
            Ok(items) => items,
            Err(s) => vec![item(Content::Status(s))],
        }
    }

    async fn try_pull(
        &self,
        c: &Client,
        req: PullMessageRequest,
        deadline: Option<Duration>,
    ) -> Result<Vec<PullMessageResponse>, Status> {
        let group = group_name(c, req.group.as_ref())?;
        let (topic, queue) = queue_of(c, req.message_queue.as_ref())?;
        let p = Pull {
            group,
            topic,
            queue,
            offset: req.offset,
            batch: usize::try_from(req.batch_size).unwrap_or(0),
            filter: filter(c, req.filter_expression.as_ref())?,
            poll: pull_polling_time(req.long_polling_timeout.as_ref().map(millis), deadline),
        };
        let offset = p.offset;
        let pulled = self.shared.consume.pull(p).await.map_err(|e| c.error(&e))?;
        Ok(match pulled {
            Pulled::Messages { messages, next } => {
                let now = now_ms();
                let mut items = Vec::with_capacity(messages.len() + 2);
                items.push(item(Content::Status(ok())));
                items.extend(
                    messages
                        .into_iter()
                        .map(|m| item(Content::Message(pulled_out(m, now)))),
                );
                items.push(item(Content::NextOffset(as_i64(next))));
                items
            }
            Pulled::OutOfRange { queue, next } => vec![
                item(Content::Status(c.status(
                    Code::IllegalOffset,
                    format!("offset {offset} is outside the stored range of queue {queue}; pull from {next}"),
                ))),
                item(Content::NextOffset(as_i64(next))),
            ],
            Pulled::Nothing { next } => vec![
                item(Content::Status(c.status(Code::MessageNotFound, "no new message"))),
                item(Content::NextOffset(as_i64(next))),
            ],
        })
    }

    pub(super) async fn set_offset(&self, c: &Client, req: UpdateOffsetRequest) -> Status {
        let target = group_name(c, req.group.as_ref())
            .and_then(|g| Ok((g, queue_of(c, req.message_queue.as_ref())?)));
        let (group, (topic, queue)) = match target {
            Ok(t) => t,
            Err(s) => return s,
        };
        match self
            .shared
            .consume
            .set_offset(group, &topic, queue, req.offset)
            .await
        {
            Ok(()) => ok(),
            Err(e) => c.error(&e),
        }
    }

    pub(super) fn read_offset(&self, c: &Client, req: &GetOffsetRequest) -> Result<i64, Status> {
        let group = group_name(c, req.group.as_ref())?;
        let (topic, queue) = queue_of(c, req.message_queue.as_ref())?;
        self.shared
            .consume
            .offset(&group, &topic, queue)
            .map(as_i64)
            .map_err(|e| c.error(&e))
    }

    pub(super) async fn find_offset(
        &self,
        c: &Client,
        req: QueryOffsetRequest,
    ) -> Result<i64, Status> {
        let (topic, queue) = queue_of(c, req.message_queue.as_ref())?;
        let policy = match QueryOffsetPolicy::try_from(req.query_offset_policy) {
            Ok(QueryOffsetPolicy::Beginning) => OffsetPolicy::Beginning,
            Ok(QueryOffsetPolicy::End) => OffsetPolicy::End,
            Ok(QueryOffsetPolicy::Timestamp) => {
                let ts = req
                    .timestamp
                    .ok_or_else(|| c.status(Code::BadRequest, "TIMESTAMP needs a timestamp"))?;
                OffsetPolicy::Timestamp(
                    ts.seconds
                        .saturating_mul(1000)
                        .saturating_add(i64::from(ts.nanos / 1_000_000)),
                )
            }
            Err(_) => {
                return Err(c.status(
                    Code::BadRequest,
                    format!("unknown query offset policy {}", req.query_offset_policy),
                ));
            }
        };
        self.shared
            .consume
            .find_offset(&topic, queue, policy)
            .await
            .map(as_i64)
            .map_err(|e| c.error(&e))
    }
}

/// A pulled message: as delivered, without a receipt handle or
/// invisibility (nothing is leased).
fn pulled_out(m: StoredMessage, now: i64) -> tern_protocol::v2::Message {
    let mut out = message_out(
        Delivery {
            message: m,
            receipt: String::new(),
            attempt: 1,
            invisible_until_ms: now,
        },
        now,
    );
    if let Some(sp) = out.system_properties.as_mut() {
        sp.receipt_handle = None;
        sp.invisible_duration = None;
        sp.delivery_attempt = None;
    }
    out
}
